package ledger

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const testOrigin = "provlog.test/ledger"

// testTime is the event time of every test event.
var testTime = time.Date(2026, 11, 26, 2, 0, 41, 907_000_000, time.UTC)

// testConfig is a Config for dir with short intervals, keys made (or
// reused) in dir.
func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	signer, vkey, err := LoadOrCreateKeys(dir, "", testOrigin)
	if err != nil {
		t.Fatalf("LoadOrCreateKeys: %v", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("NewVerifier(%q): %v", vkey, err)
	}
	return Config{
		Dir:                dir,
		Signer:             signer,
		Verifier:           verifier,
		CheckpointInterval: 100 * time.Millisecond,
		BatchMaxSize:       256,
		BatchMaxAge:        10 * time.Millisecond,
		FollowInterval:     50 * time.Millisecond,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// openLedger opens a Ledger in dir; it is closed at cleanup unless the test
// closed it first.
func openLedger(t testing.TB, dir string, mod func(*Config)) *Ledger {
	t.Helper()
	cfg := testConfig(t, dir)
	if mod != nil {
		mod(&cfg)
	}
	l, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func closeLedger(t testing.TB, l *Ledger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// testEvent is a small valid READ event.
func testEvent(tenant, id string) *pb.ProvenanceEvent {
	return &pb.ProvenanceEvent{
		SchemaVersion: 1,
		EventId:       id,
		Tenant:        tenant,
		Operation:     pb.Operation_OPERATION_READ,
		EventTime:     timestamppb.New(testTime),
		Actor:         &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "svc-n8n@acme.example"},
		Workflow:      &pb.Workflow{Platform: "n8n", RunId: "run-7f3a9c", StepId: id},
		Inputs: []*pb.Asset{{
			Uri:    "crm://acme-crm/contacts",
			Digest: "sha256:4a3f7c6b499f99ebfd0387d56e4978cc1cc7ffa78606476a7447c278b9053a3f",
			Fields: []string{"email"},
		}},
	}
}

// variant is ev with a different body under the same (tenant, event id).
func variant(ev *pb.ProvenanceEvent) *pb.ProvenanceEvent {
	ev.Rationale = "a different body"
	return ev
}

func subsOf(evs ...*pb.ProvenanceEvent) []Submission {
	subs := make([]Submission, len(evs))
	for i, ev := range evs {
		subs[i] = Submission{Event: ev, Submitter: "test"}
	}
	return subs
}

// appendAll appends evs in one call and fails the test on any error.
func appendAll(t testing.TB, l *Ledger, evs ...*pb.ProvenanceEvent) []Result {
	t.Helper()
	res := l.Append(t.Context(), subsOf(evs...))
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("Append #%d (%s): %v", i, evs[i].GetEventId(), r.Err)
		}
	}
	return res
}

func integratedSize(t testing.TB, l *Ledger) uint64 {
	t.Helper()
	n, err := l.Reader().IntegratedSize(t.Context())
	if err != nil {
		t.Fatalf("IntegratedSize: %v", err)
	}
	return n
}

// awaitSize waits until a published checkpoint covers size leaves.
func awaitSize(t testing.TB, l *Ledger, size uint64) {
	t.Helper()
	if size == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := l.AwaitPublished(ctx, size-1); err != nil {
		t.Fatalf("AwaitPublished(%d): %v", size-1, err)
	}
}

// indexSnapshot is everything the index store says about the given events
// and leaves, for comparing two stores through the indexStore interface.
type indexSnapshot struct {
	Watermark uint64
	Records   map[string]record // by event id
	Leaves    map[string]uint64 // by leaf hash, hex
}

func snapshotIndex(t *testing.T, s indexStore, tenant string, ids []string, leafHashes [][32]byte) indexSnapshot {
	t.Helper()
	wm, err := s.Watermark()
	if err != nil {
		t.Fatalf("Watermark: %v", err)
	}
	snap := indexSnapshot{Watermark: wm, Records: map[string]record{}, Leaves: map[string]uint64{}}
	for _, id := range ids {
		r, ok, err := s.Lookup(dedupeKey(tenant, id))
		if err != nil {
			t.Fatalf("Lookup(%s): %v", id, err)
		}
		if ok {
			snap.Records[id] = r
		}
	}
	for _, h := range leafHashes {
		idx, ok, err := s.LookupLeaf(h)
		if err != nil {
			t.Fatalf("LookupLeaf(%x): %v", h, err)
		}
		if ok {
			snap.Leaves[hex.EncodeToString(h[:])] = idx
		}
	}
	return snap
}

// indexPath is where Open keeps the index store of dir.
func indexPath(dir string) string { return filepath.Join(dir, "index") }

// openIndexStore opens the index store at path as Open does. It is the one
// place these tests name the store implementation.
func openIndexStore(t *testing.T, path string) indexStore {
	t.Helper()
	s, err := openPebbleStore(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("opening the index store: %v", err)
	}
	return s
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

func eventsFor(tenant string, ids []string) []*pb.ProvenanceEvent {
	evs := make([]*pb.ProvenanceEvent, len(ids))
	for i, id := range ids {
		evs[i] = testEvent(tenant, id)
	}
	return evs
}
