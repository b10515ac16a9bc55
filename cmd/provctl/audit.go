package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/provlog/provlog/client"
	"github.com/provlog/provlog/log/authorship"
	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/lineage"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type signatureReport struct {
	Index  uint64 `json:"index"`
	KeyID  string `json:"key_id"`
	Status string `json:"status"` // verified
	// Source is where the verifying key came from: "log" (the key
	// history rebuilt from the log's key events), "submitter-key" (given
	// with --submitter-key), or "log+submitter-key" (both agree).
	Source string `json:"source"`
}

type auditReport struct {
	Verified     bool              `json:"verified"`
	Origin       string            `json:"origin"`
	TreeSize     uint64            `json:"tree_size"`
	RootHash     string            `json:"root_hash"`
	Leaves       uint64            `json:"leaves_checked"`
	Signatures   []signatureReport `json:"signatures"`
	KeyEvents    int               `json:"key_events"`
	Keys         int               `json:"keys"`
	IndexSize    uint64            `json:"index_digest_size,omitempty"`
	IndexDigest  string            `json:"index_digest,omitempty"`
	ServerDigest string            `json:"server_index_digest,omitempty"`
	IndexNote    string            `json:"index_note,omitempty"`
	FirstBad     *uint64           `json:"first_bad_index,omitempty"`
	Error        string            `json:"error,omitempty"`
	Seconds      float64           `json:"seconds"`
}

func cmdAudit(e *env, args []string) int {
	f := newFlags(e, "audit", "[flags]",
		"Replays the whole log from its tlog-tiles (/log/) up to the latest checkpoint:\nthe checkpoint is verified against the log key and witness policy, every\nhash tile against the checkpoint (x/mod/sumdb/tlog), every leaf against the\ntiles; every leaf decodes and validates (log/event); the submitter key history\nis rebuilt from the log's own key events (KEY_REGISTER, KEY_ROTATE,\nKEY_REVOKE, log/authorship) as they are replayed, and every submitter\nsignature must verify with its tenant's key valid at the event's time, or\nwith a key given by --submitter-key; a key given that way is checked too;\nthe lineage index is rebuilt from the leaves into a temporary store and its\ndigest compared with the server's (GetIndexDigest). The first bad leaf is\nnamed and the exit code is 1. Progress with rate and ETA goes to stderr.", "text", "json")
	f.connFlags()
	var keys multiFlag
	f.Var(&keys, "submitter-key", "a submitter's verifier key, or a file holding one (NAME+HASH+KEY, NAME being the signature's key_id), trusted beside the log's key history; repeatable")
	noIndex := f.Bool("skip-index", false, "do not rebuild and compare the lineage index")
	indexWait := f.Duration("index-wait", 30*time.Second, "how long to wait for the server's lineage index to reach the checkpoint")
	if code, ok := f.parse(args, 0, 0); !ok {
		return code
	}
	verifiers := map[string]ed25519.PublicKey{}
	for _, k := range keys {
		name, pub, err := parseSubmitterVKey(k)
		if err != nil {
			fmt.Fprintln(e.stderr, "provctl:", err)
			return exitUsage
		}
		verifiers[name] = pub
	}
	c, err := f.dial(client.Options{})
	if err != nil {
		return f.fail(err)
	}
	defer c.Close()
	start := time.Now()
	rep := &auditReport{Signatures: []signatureReport{}}
	code := audit(e, c, verifiers, !*noIndex, *indexWait, rep)
	rep.Seconds = time.Since(start).Seconds()
	rep.Verified = code == exitVerified
	if f.json() {
		writeJSON(e.stdout, rep)
		return code
	}
	w := e.stdout
	if rep.Origin != "" {
		fmt.Fprintf(w, "audit of %s at the checkpoint of size %d (root %s)\n", rep.Origin, rep.TreeSize, rep.RootHash)
		fmt.Fprintf(w, "  leaves checked: %d of %d\n", rep.Leaves, rep.TreeSize)
		counts := map[string]int{}
		for _, s := range rep.Signatures {
			counts[s.Status]++
		}
		fromLog := 0
		for _, s := range rep.Signatures {
			if strings.HasPrefix(s.Source, "log") {
				fromLog++
			}
		}
		fmt.Fprintf(w, "  submitter signatures: %d present, %d verified, %d of them with the log's key history\n", len(rep.Signatures), counts["verified"], fromLog)
		fmt.Fprintf(w, "  key history rebuilt from the log: %d key events, %d keys\n", rep.KeyEvents, rep.Keys)
		if rep.IndexDigest != "" {
			fmt.Fprintf(w, "  lineage index at size %d: rebuilt %s, server %s\n", rep.IndexSize, rep.IndexDigest, rep.ServerDigest)
		}
		if rep.IndexNote != "" {
			fmt.Fprintf(w, "  lineage index: %s\n", rep.IndexNote)
		}
	}
	switch {
	case code == exitVerified:
		fmt.Fprintln(w, "verified: every leaf is committed to by the checkpoint, decodes and validates; every submitter signature verifies; the lineage index matches a rebuild")
	case rep.FirstBad != nil:
		fmt.Fprintf(w, "FAILED at leaf %d: %s\n", *rep.FirstBad, rep.Error)
	default:
		fmt.Fprintf(w, "FAILED: %s\n", rep.Error)
	}
	return code
}

func audit(e *env, c *client.Client, verifiers map[string]ed25519.PublicKey, withIndex bool, indexWait time.Duration, rep *auditReport) int {
	failed := func(err error) int {
		rep.Error = err.Error()
		var le *client.LeafError
		if errors.As(err, &le) {
			i := le.Index
			rep.FirstBad = &i
			rep.Error = le.Reason
			if le.Err != nil {
				rep.Error += ": " + le.Err.Error()
			}
		}
		if code := exitCode(err); code != exitFailed {
			fmt.Fprintln(e.stderr, "provctl:", describe(err))
			return code
		}
		return exitFailed
	}
	cp, _, err := c.Checkpoint(e.ctx)
	if err != nil {
		return failed(err)
	}
	rep.Origin, rep.TreeSize, rep.RootHash = cp.Origin, cp.Size, fmt.Sprintf("%x", cp.Hash)

	var ix *lineage.Index
	src := &auditSource{}
	if withIndex {
		dir, err := os.MkdirTemp("", "provctl-audit-")
		if err != nil {
			return failed(err)
		}
		defer os.RemoveAll(dir)
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		store, err := lineage.OpenPebbleStore(dir, quiet)
		if err != nil {
			return failed(err)
		}
		defer store.Close()
		if ix, err = lineage.Open(e.ctx, store, src, lineage.Options{Logger: quiet}); err != nil {
			return failed(err)
		}
	}

	keys := authorship.NewKeyHistory()
	defer func() { rep.Keys = len(keys.All()) }()
	prog := newProgress(e.stderr, "audit", "leaves", cp.Size)
	var bundle bytes.Buffer
	err = c.Tiles().Replay(e.ctx, cp, func(i uint64, leaf []byte) error {
		le, err := event.DecodeLeaf(leaf)
		if err != nil {
			return &client.LeafError{Index: i, Reason: "the leaf does not decode", Err: err}
		}
		ev := le.GetEvent()
		if err := event.ValidateSealed(ev, le.GetReceivedTime().AsTime()); err != nil {
			return &client.LeafError{Index: i, Reason: fmt.Sprintf("event %q does not validate", ev.GetEventId()), Err: err}
		}
		if err := keys.ApplyEvent(ev, i); err != nil {
			return &client.LeafError{Index: i, Reason: fmt.Sprintf("key event %q does not apply to the key history rebuilt from the log", ev.GetEventId()), Err: err}
		}
		if authorship.IsKeyOperation(ev.GetOperation()) {
			rep.KeyEvents++
		}
		if ev.GetSignature() != nil {
			r, err := verifySubmitter(keys, verifiers, ev)
			if err != nil {
				return &client.LeafError{Index: i, Reason: fmt.Sprintf("event %q: submitter signature by %q does not verify", ev.GetEventId(), ev.GetSignature().GetKeyId()), Err: err}
			}
			r.Index = i
			rep.Signatures = append(rep.Signatures, r)
		}
		bundle.Write(binary.BigEndian.AppendUint16(nil, uint16(len(leaf))))
		bundle.Write(leaf)
		rep.Leaves = i + 1
		return nil
	}, func(done uint64) {
		prog.update(done)
		if ix != nil {
			src.set(done, bundle.Bytes())
			if err := ix.CatchUp(e.ctx); err != nil {
				fmt.Fprintln(e.stderr, "provctl: rebuilding the lineage index:", err)
			}
		}
		bundle.Reset()
	})
	prog.done()
	if err != nil {
		return failed(err)
	}
	if ix == nil {
		rep.IndexNote = "not compared (--skip-index)"
		return exitVerified
	}
	if cp.Size == 0 {
		rep.IndexNote = "the log is empty"
		return exitVerified
	}
	if ix.Watermark() != cp.Size {
		return failed(fmt.Errorf("the rebuilt lineage index stopped at %d of %d leaves", ix.Watermark(), cp.Size))
	}
	return compareIndex(e.ctx, c, ix, cp.Size, indexWait, rep, failed)
}

// compareIndex compares the rebuilt index's digest with the server's at
// the checkpoint's size (or, if the server recorded none there, at the
// largest multiple of 256 below it), and on a difference finds the first
// multiple of 256 where the digests differ.
func compareIndex(ctx context.Context, c *client.Client, ix *lineage.Index, size uint64, wait time.Duration, rep *auditReport, failed func(error) int) int {
	lc := c.LineageService()
	deadline := time.Now().Add(wait)
	for {
		r, err := lc.GetIndexDigest(c.Context(ctx), &pb.GetIndexDigestRequest{})
		if err != nil {
			return failed(fmt.Errorf("GetIndexDigest: %w", err))
		}
		if r.GetWatermark() >= size {
			break
		}
		if time.Now().After(deadline) {
			rep.IndexNote = fmt.Sprintf("not compared: the server's index is at %d of %d leaves after %v", r.GetWatermark(), size, wait)
			return failed(errors.New(rep.IndexNote))
		}
		time.Sleep(200 * time.Millisecond)
	}
	serverAt := func(s uint64) ([]byte, error) {
		r, err := lc.GetIndexDigest(c.Context(ctx), &pb.GetIndexDigestRequest{TreeSize: s})
		if err != nil {
			return nil, err
		}
		return r.GetDigest(), nil
	}
	at := size
	theirs, err := serverAt(at)
	if status.Code(err) == codes.NotFound && size >= 256 {
		at = size / 256 * 256
		theirs, err = serverAt(at)
	}
	if err != nil {
		return failed(fmt.Errorf("GetIndexDigest at %d: %w", at, err))
	}
	ours, err := ix.DigestAt(ctx, at)
	if err != nil {
		return failed(err)
	}
	rep.IndexSize, rep.IndexDigest, rep.ServerDigest = at, fmt.Sprintf("%x", ours), fmt.Sprintf("%x", theirs)
	if bytes.Equal(ours[:], theirs) {
		return exitVerified
	}
	// Binary search the first multiple of 256 where they differ.
	lo, hi := uint64(0), (at+255)/256 // digests agree at lo*256 (0: empty), differ at hi
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		o, err := ix.DigestAt(ctx, mid*256)
		if err != nil {
			break
		}
		t, err := serverAt(mid * 256)
		if err != nil {
			break
		}
		if bytes.Equal(o[:], t) {
			lo = mid
		} else {
			hi = mid
		}
	}
	first := lo * 256
	return failed(&client.LeafError{Index: first, Reason: fmt.Sprintf("the server's lineage index differs from a rebuild from the log: digests at size %d differ (rebuilt %x, server %x); the first difference is among leaves %d..%d",
		at, ours, theirs, first, min(hi*256, at)-1)})
}

// verifySubmitter verifies ev's submitter signature with every key that
// names it: the tenant's key in the history rebuilt from the log, valid at
// the event's time, and a key given with --submitter-key under that key
// id. At least one must exist, and each that exists must verify.
func verifySubmitter(keys *authorship.KeyHistory, verifiers map[string]ed25519.PublicKey, ev *pb.ProvenanceEvent) (signatureReport, error) {
	s := ev.GetSignature()
	r := signatureReport{KeyID: s.GetKeyId(), Status: "verified"}
	var sources []string
	err := keys.Verify(ev)
	switch {
	case err == nil:
		sources = append(sources, "log")
	case !errors.Is(err, authorship.ErrUnknownKey):
		return r, fmt.Errorf("with the log's key history: %w", err)
	}
	if pub, ok := verifiers[s.GetKeyId()]; ok {
		msg, err := event.SigningPayload(ev)
		if err != nil {
			return r, err
		}
		if !ed25519.Verify(pub, msg, s.GetSignature()) {
			return r, fmt.Errorf("with the --submitter-key %q: %w", s.GetKeyId(), authorship.ErrBadSignature)
		}
		sources = append(sources, "submitter-key")
	}
	if len(sources) == 0 {
		return r, fmt.Errorf("tenant %q has no key %q in the log's key history, and no --submitter-key names it: %w", ev.GetTenant(), s.GetKeyId(), authorship.ErrUnknownKey)
	}
	r.Source = strings.Join(sources, "+")
	return r, nil
}

// auditSource is the lineage.Source of the rebuild: the verified bundle
// being replayed.
type auditSource struct {
	mu     sync.Mutex
	size   uint64
	bundle []byte
}

func (s *auditSource) set(size uint64, bundle []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size, s.bundle = size, bytes.Clone(bundle)
}

func (s *auditSource) IntegratedSize(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, nil
}

func (s *auditSource) ReadEntryBundle(_ context.Context, index uint64, p uint8) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.size == 0 || index != (s.size-1)/256 {
		return nil, fmt.Errorf("entry bundle %d is not the one being replayed", index)
	}
	return s.bundle, nil
}

// parseSubmitterVKey reads a note verifier key (Ed25519, type 0x01), given
// or in a file.
func parseSubmitterVKey(s string) (string, ed25519.PublicKey, error) {
	if b, err := os.ReadFile(s); err == nil {
		s = strings.TrimSpace(string(b))
	}
	parts := strings.SplitN(s, "+", 3)
	if len(parts) != 3 {
		return "", nil, fmt.Errorf("--submitter-key %q: want NAME+HASH+KEY or a file holding it", s)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x01 {
		return "", nil, fmt.Errorf("--submitter-key %q: not an Ed25519 note verifier key", s)
	}
	return parts[0], ed25519.PublicKey(raw[1:]), nil
}
