package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/formats/log"
)

// AlertKind says what a monitor caught.
type AlertKind string

// Alert kinds. Each is evidence of misbehaviour when both checkpoints in
// the alert verify under the policy (UnverifiableCheckpoint is the
// exception: it says the log served something that does not verify).
const (
	// AlertInconsistent: the new checkpoint does not extend the last
	// verified one (a failed consistency proof, or the same size with
	// another root).
	AlertInconsistent AlertKind = "inconsistent"
	// AlertShrank: the new checkpoint is smaller than the last verified one.
	AlertShrank AlertKind = "shrank"
	// AlertSplitView: a witness holds a checkpoint of this log that is not
	// consistent with the log's.
	AlertSplitView AlertKind = "split-view"
	// AlertUnverifiableCheckpoint: /log/checkpoint does not satisfy the
	// policy (bad signature or no witness quorum).
	AlertUnverifiableCheckpoint AlertKind = "unverifiable-checkpoint"
)

// Alert is an inconsistency a Monitor found, with the two checkpoints as
// evidence: signed notes that anyone can check with the log's key.
type Alert struct {
	Kind AlertKind `json:"kind"`
	// Message says what does not hold, in words.
	Message string `json:"message"`
	// Source is "log" or "witness NAME": where New came from.
	Source string `json:"source"`
	// Old is the last verified checkpoint (or the log's, for split views);
	// New the one that contradicts it. Both are signed notes.
	Old string `json:"old_checkpoint"`
	New string `json:"new_checkpoint"`
}

func (a Alert) Error() string { return fmt.Sprintf("%s (%s): %s", a.Kind, a.Source, a.Message) }

// Monitor follows a log's /log/checkpoint: it verifies each new checkpoint
// against the policy and, by a consistency proof, against the last
// verified one, which it keeps in StateFile so that a restart (or a cron
// run with Once) picks up where it left off. With CompareWitnesses it also
// fetches each policy witness's latest cosigned checkpoint of the log
// (GET URL/<hex sha256(origin)>/checkpoint, as provwitness serves it) and
// checks it is consistent with the log's.
type Monitor struct {
	Client *Client
	// StateFile holds the last verified checkpoint; "" keeps it in memory.
	StateFile string
	// CompareWitnesses enables the witness comparison.
	CompareWitnesses bool
	// Interval between polls in Run; 10s when zero.
	Interval time.Duration
	// OnCheckpoint is called with each newly verified checkpoint.
	OnCheckpoint func(cp *log.Checkpoint, raw []byte)

	last    *log.Checkpoint
	lastRaw []byte
	loaded  bool
}

// Last is the last verified checkpoint, nil if none.
func (m *Monitor) Last() (*log.Checkpoint, []byte) { return m.last, m.lastRaw }

func (m *Monitor) load() error {
	if m.loaded || m.StateFile == "" {
		m.loaded = true
		return nil
	}
	raw, err := os.ReadFile(m.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		m.loaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("couldn't read the monitor state: %w", err)
	}
	// The state is a checkpoint this monitor verified: the log's signature
	// is enough (the witness policy may have changed since).
	cp, _, _, err := log.ParseCheckpoint(raw, m.Client.policy.logKey.Name(), m.Client.policy.logKey)
	if err != nil {
		return fmt.Errorf("the monitor state %s does not hold a checkpoint of this log: %w", m.StateFile, err)
	}
	m.last, m.lastRaw, m.loaded = cp, raw, true
	return nil
}

func (m *Monitor) save(raw []byte) error {
	if m.StateFile == "" {
		return nil
	}
	tmp := m.StateFile + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("couldn't write the monitor state: %w", err)
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, m.StateFile)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("couldn't write the monitor state: %w", err)
	}
	if d, err := os.Open(filepath.Dir(m.StateFile)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Once polls the log once. It returns the alerts found (the state is not
// advanced past an alert) or an error when the log or a witness could
// not be reached.
func (m *Monitor) Once(ctx context.Context) ([]Alert, error) {
	if err := m.load(); err != nil {
		return nil, err
	}
	raw, err := m.Client.tiles.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := m.Client.policy.VerifyCheckpoint(raw)
	if err != nil {
		return []Alert{{Kind: AlertUnverifiableCheckpoint, Source: "log", Message: err.Error(), Old: string(m.lastRaw), New: string(raw)}}, nil
	}
	if m.last != nil {
		if a, err := m.compare(ctx, m.last, m.lastRaw, cp, raw, "log"); err != nil || a != nil {
			return alerts(a), err
		}
	}
	var out []Alert
	if m.CompareWitnesses {
		for _, w := range m.Client.policy.Witnesses() {
			if w.URL == "" {
				continue
			}
			wraw, err := fetchWitnessCheckpoint(ctx, m.Client.tiles.hc, w.URL, cp.Origin)
			if errors.Is(err, ErrNotFound) {
				continue // the witness has not cosigned this log yet
			}
			if err != nil {
				return out, fmt.Errorf("witness %s: %w", w.Name, err)
			}
			// The witness's copy must be signed by the log; its own
			// cosignature is not needed to prove a split view.
			wcp, _, _, err := log.ParseCheckpoint(wraw, m.Client.policy.logKey.Name(), m.Client.policy.logKey)
			if err != nil {
				return out, fmt.Errorf("witness %s serves a checkpoint that is not the log's: %w", w.Name, err)
			}
			var a *Alert
			if wcp.Size <= cp.Size {
				a, err = m.compare(ctx, wcp, wraw, cp, raw, "witness "+w.Name)
				if err != nil {
					return out, err
				}
			} else {
				// The witness is ahead of what the log published (it
				// cosigns before the log publishes): compare if the log
				// can prove it already, else at the next poll.
				a, err = m.compare(ctx, cp, raw, wcp, wraw, "witness "+w.Name)
				if err != nil {
					continue
				}
			}
			if a != nil {
				a.Kind = AlertSplitView
				out = append(out, *a)
			}
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	if m.last == nil || cp.Size != m.last.Size {
		if err := m.save(raw); err != nil {
			return nil, err
		}
		if m.OnCheckpoint != nil {
			m.OnCheckpoint(cp, raw)
		}
	}
	m.last, m.lastRaw = cp, raw
	return nil, nil
}

func alerts(a *Alert) []Alert {
	if a == nil {
		return nil
	}
	return []Alert{*a}
}

// compare checks that newer extends older; an inconsistency is an alert,
// a failure to get a proof an error.
func (m *Monitor) compare(ctx context.Context, older *log.Checkpoint, olderRaw []byte, newer *log.Checkpoint, newerRaw []byte, source string) (*Alert, error) {
	alert := func(kind AlertKind, msg string) *Alert {
		return &Alert{Kind: kind, Source: source, Message: msg, Old: string(olderRaw), New: string(newerRaw)}
	}
	switch {
	case newer.Size < older.Size:
		return alert(AlertShrank, fmt.Sprintf("the log shrank from %d to %d leaves", older.Size, newer.Size)), nil
	case newer.Size == older.Size && !bytes.Equal(newer.Hash, older.Hash):
		return alert(AlertInconsistent, fmt.Sprintf("two checkpoints of size %d with different root hashes", newer.Size)), nil
	case newer.Size == older.Size:
		return nil, nil
	}
	err := m.Client.ProveConsistency(ctx, older, newer)
	if errors.Is(err, ErrVerification) {
		return alert(AlertInconsistent, err.Error()), nil
	}
	return nil, err
}

// Run polls every Interval until ctx ends or an alert is found, which it
// returns as the error (an Alert); onAlert, when set, is told first. A
// poll that fails to reach the log is reported to onError (if set) and
// retried at the next tick.
func (m *Monitor) Run(ctx context.Context, onError func(error)) error {
	iv := m.Interval
	if iv <= 0 {
		iv = 10 * time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		as, err := m.Once(ctx)
		if len(as) > 0 {
			return as[0]
		}
		if err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// fetchWitnessCheckpoint GETs a witness's latest cosigned checkpoint of
// origin.
func fetchWitnessCheckpoint(ctx context.Context, hc *http.Client, base, origin string) ([]byte, error) {
	h := sha256.Sum256([]byte(origin))
	u := strings.TrimRight(base, "/") + "/" + hex.EncodeToString(h[:]) + "/checkpoint"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := readAllLimit(resp.Body, maxCheckpointBytes)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return b, nil
	case http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: %w", u, ErrNotFound)
	}
	return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
}
