package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Log is a log the witness is configured to witness.
type Log struct {
	// Origin is the checkpoint origin line that identifies the log.
	Origin string
	// Verifiers are the log's trusted public keys; a checkpoint needs a
	// valid signature from at least one of them.
	Verifiers []note.Verifier
}

// Config configures a Witness.
type Config struct {
	// Signer makes the witness's cosignatures. It must produce
	// c2sp.org/tlog-cosignature signatures, e.g. a signer from
	// github.com/transparency-dev/formats/note.NewSignerForCosignatureV1.
	Signer note.Signer
	// Logs are the logs to witness. Origins must be unique.
	Logs []Log
	// Store persists the cosigned state and fork evidence.
	Store Store
	// Logger receives request outcomes and fork alerts. Nil: slog.Default().
	Logger *slog.Logger
	// Registerer receives the witness's metrics. Nil: not registered.
	Registerer prometheus.Registerer
	// Now is the clock used to date evidence. Nil: time.Now.
	Now func() time.Time
}

// Witness verifies and cosigns checkpoints. Its methods are safe for
// concurrent use.
type Witness struct {
	signer  note.Signer
	store   Store
	logger  *slog.Logger
	now     func() time.Time
	metrics *metrics
	logs    map[string]*logState // by origin; fixed after New
	byHash  map[string]*logState // by hex SHA-256 of the origin
}

type logState struct {
	origin    string
	verifiers note.Verifiers
	// mu serialises add-checkpoint for this log, from reading the stored
	// state to persisting the new one, so that no race can cosign two
	// forks or roll the state back.
	mu sync.Mutex
}

// New returns a Witness for cfg.
func New(cfg Config) (*Witness, error) {
	if cfg.Signer == nil {
		return nil, errors.New("witness: no signer")
	}
	if cfg.Store == nil {
		return nil, errors.New("witness: no store")
	}
	w := &Witness{
		signer:  cfg.Signer,
		store:   cfg.Store,
		logger:  cfg.Logger,
		now:     cfg.Now,
		metrics: newMetrics(cfg.Registerer),
		logs:    make(map[string]*logState),
		byHash:  make(map[string]*logState),
	}
	if w.logger == nil {
		w.logger = slog.Default()
	}
	if w.now == nil {
		w.now = time.Now
	}
	for _, l := range cfg.Logs {
		if l.Origin == "" || strings.Contains(l.Origin, "\n") {
			return nil, fmt.Errorf("witness: invalid origin %q", l.Origin)
		}
		if _, dup := w.logs[l.Origin]; dup {
			return nil, fmt.Errorf("witness: origin %q configured twice", l.Origin)
		}
		if len(l.Verifiers) == 0 {
			return nil, fmt.Errorf("witness: log %q has no verifier keys", l.Origin)
		}
		type id struct {
			name string
			hash uint32
		}
		seen := make(map[id]bool)
		for _, v := range l.Verifiers {
			k := id{v.Name(), v.KeyHash()}
			if seen[k] {
				return nil, fmt.Errorf("witness: log %q has two keys named %q with key ID %08x", l.Origin, k.name, k.hash)
			}
			seen[k] = true
		}
		ls := &logState{origin: l.Origin, verifiers: note.VerifierList(l.Verifiers...)}
		w.logs[l.Origin] = ls
		// Zero series exist from the start, so increase() sees the first fork.
		for _, k := range []string{KindRootMismatch, KindBadProof} {
			w.metrics.forks.WithLabelValues(l.Origin, k)
		}
		w.byHash[originHash(l.Origin)] = ls
	}
	return w, nil
}

// originHash is the lowercase hex SHA-256 of origin, which names the log in
// the monitoring URL.
func originHash(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

var emptyRoot = rfc6962.DefaultHasher.EmptyRoot()

// AddCheckpoint verifies signed, a checkpoint note, and that it is
// consistent with the latest checkpoint cosigned for its log, of size
// oldSize, by the consistency proof; then it durably records it and returns
// the witness's cosignature line(s), each "— name base64\n".
//
// Errors wrap ErrMalformed, ErrUnknownOrigin, ErrUntrusted,
// ErrInconsistent, or are a *ConflictError; anything else is internal.
func (w *Witness) AddCheckpoint(ctx context.Context, oldSize uint64, consistency [][]byte, signed []byte) ([]byte, error) {
	origin, err := noteOrigin(signed)
	if err != nil {
		return nil, err
	}
	ls, ok := w.logs[origin]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownOrigin, origin)
	}
	n, err := note.Open(signed, ls.verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, fmt.Errorf("%w: %w", ErrUntrusted, err)
		}
		return nil, fmt.Errorf("%w: checkpoint note: %w", ErrMalformed, err)
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		return nil, err
	}
	if oldSize > cp.Size {
		return nil, fmt.Errorf("%w: old size %d is larger than the checkpoint size %d", ErrMalformed, oldSize, cp.Size)
	}
	for _, h := range consistency {
		if len(h) != hashSize {
			return nil, fmt.Errorf("%w: consistency proof hash of %d bytes", ErrMalformed, len(h))
		}
	}

	ls.mu.Lock()
	defer ls.mu.Unlock()

	var held *Cosigned
	switch c, err := w.store.Latest(ctx, origin); {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("couldn't read witnessed state of %q: %w", origin, err)
	default:
		held = &c
	}
	heldSize, heldHash := uint64(0), emptyRoot
	if held != nil {
		heldSize, heldHash = held.Size, held.Hash
	}

	if oldSize != heldSize {
		// The client is out of date, but a checkpoint of the size we hold
		// with another root is a fork whatever it claims as old size.
		if held != nil && cp.Size == held.Size && !bytes.Equal(cp.Hash, held.Hash) {
			w.recordFork(ctx, Evidence{
				Origin: origin, Kind: KindRootMismatch, Cosigned: held.Note,
				Submitted: signed, OldSize: oldSize, Proof: consistency,
				Detail: fmt.Sprintf("size %d has root %x, witnessed root %x", cp.Size, cp.Hash, held.Hash),
			})
		}
		return nil, &ConflictError{Size: heldSize}
	}
	if cp.Size == 0 && !bytes.Equal(cp.Hash, emptyRoot) {
		return nil, fmt.Errorf("%w: size 0 checkpoint has root %x, not the empty tree's", ErrInconsistent, cp.Hash)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, heldSize, cp.Size, consistency, heldHash, cp.Hash); err != nil {
		switch {
		case held != nil && heldSize == cp.Size && !bytes.Equal(heldHash, cp.Hash):
			err = fmt.Errorf("size %d has root %x, witnessed root %x", cp.Size, cp.Hash, heldHash)
			w.recordFork(ctx, Evidence{
				Origin: origin, Kind: KindRootMismatch, Cosigned: held.Note,
				Submitted: signed, OldSize: oldSize, Proof: consistency, Detail: err.Error(),
			})
		case held != nil && heldSize > 0 && heldSize < cp.Size:
			w.recordFork(ctx, Evidence{
				Origin: origin, Kind: KindBadProof, Cosigned: held.Note,
				Submitted: signed, OldSize: oldSize, Proof: consistency,
				Detail: fmt.Sprintf("consistency proof from size %d to %d: %v", heldSize, cp.Size, err),
			})
		}
		return nil, fmt.Errorf("%w: %w", ErrInconsistent, err)
	}

	// Sign the checkpoint text; the cosignature lines are what note.Sign
	// appends after the text and the blank line.
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return nil, fmt.Errorf("couldn't cosign checkpoint of %q: %w", origin, err)
	}
	cosig := cosigned[len(n.Text)+1:]
	served := bytes.NewBuffer(make([]byte, 0, len(cosigned)+len(signed)))
	served.WriteString(n.Text)
	served.WriteString("\n")
	for _, s := range n.Sigs {
		fmt.Fprintf(served, "— %s %s\n", s.Name, s.Base64)
	}
	served.Write(cosig)
	next := Cosigned{Origin: origin, Size: cp.Size, Hash: cp.Hash, Note: served.Bytes()}
	if err := w.store.Replace(ctx, held, next); err != nil {
		return nil, fmt.Errorf("couldn't persist cosigned checkpoint of %q: %w", origin, err)
	}
	w.metrics.cosignatures.WithLabelValues(origin).Inc()
	w.logger.Info("cosigned checkpoint", "origin", origin, "old_size", oldSize, "size", cp.Size)
	return cosig, nil
}

// recordFork stores, logs and counts fork evidence. Failing to store it is
// logged, not returned: the request is refused either way.
func (w *Witness) recordFork(ctx context.Context, e Evidence) {
	e.Time = w.now().UTC()
	w.metrics.forks.WithLabelValues(e.Origin, e.Kind).Inc()
	w.logger.Error("FORK DETECTED: log signed a checkpoint inconsistent with the witnessed one",
		"origin", e.Origin, "kind", e.Kind, "detail", e.Detail, "old_size", e.OldSize,
		"cosigned", string(e.Cosigned), "submitted", string(e.Submitted))
	if err := w.store.AddEvidence(ctx, e); err != nil {
		w.logger.Error("couldn't store fork evidence", "origin", e.Origin, "err", err)
	}
}

// Latest returns the latest checkpoint cosigned for origin, with the log
// signatures the witness verified and its cosignature. Errors wrap
// ErrUnknownOrigin or ErrNotFound if there is no such checkpoint.
func (w *Witness) Latest(ctx context.Context, origin string) ([]byte, error) {
	if _, ok := w.logs[origin]; !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownOrigin, origin)
	}
	c, err := w.store.Latest(ctx, origin)
	if err != nil {
		return nil, fmt.Errorf("couldn't read cosigned checkpoint of %q: %w", origin, err)
	}
	return c.Note, nil
}
