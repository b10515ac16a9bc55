package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/ledger/awstest"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/tessera"
)

func openMySQL(t *testing.T, dsn string) *mysqlStore {
	t.Helper()
	s, err := openMySQLIndexStore(t.Context(), dsn, 4)
	if err != nil {
		t.Fatalf("openMySQLIndexStore: %v", err)
	}
	return s
}

// TestMySQLIndexStore runs the index store checks of the embedded store
// against the MySQL one, on the test MariaDB.
func TestMySQLIndexStore(t *testing.T) {
	dsn := awstest.NewDatabase(t)
	indexStoreConformance(t, func() indexStore { return openMySQL(t, dsn) })
}

// TestMySQLClaims checks the claim protocol between two stores standing
// for two frontends on one database.
func TestMySQLClaims(t *testing.T) {
	dsn := awstest.NewDatabase(t)
	a, b := openMySQL(t, dsn), openMySQL(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := t.Context()
	key, d := dedupeKey("acme", "ev-1"), [32]byte{1}

	claimKey := func(s *mysqlStore, key string, want claimState) (record, claimInfo) {
		t.Helper()
		st, r, info, err := s.Claim(ctx, key, d)
		if err != nil || st != want {
			t.Fatalf("Claim = %v, %v; want state %v", st, err, want)
		}
		return r, info
	}
	claim := func(s *mysqlStore, want claimState) (record, claimInfo) {
		t.Helper()
		return claimKey(s, key, want)
	}
	claim(a, claimed)
	if _, info := claim(b, claimBusy); info.owner != a.owner || info.stale {
		t.Fatalf("busy claim info = %+v, want owner %s, not stale", info, a.owner)
	}
	// An unsettled claim is not a record.
	if _, ok, err := b.Lookup(key); ok || err != nil {
		t.Fatalf("Lookup of a claimed key = %v, %v; want nothing", ok, err)
	}
	// Unclaim hands it over.
	if err := a.Unclaim(ctx, key); err != nil {
		t.Fatal(err)
	}
	claim(b, claimed)
	rec := record{Key: key, Index: 7, LeafHash: [32]byte{7}, Digest: d}
	if err := b.Settle(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := claim(a, claimDone); got != rec {
		t.Fatalf("Claim of a settled key = %+v, want %+v", got, rec)
	}
	// Unclaim of a settled key keeps it.
	if err := b.Unclaim(ctx, key); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := a.Lookup(key); err != nil || !ok || got != rec {
		t.Fatalf("Lookup after a late Unclaim = %+v, %v, %v", got, ok, err)
	}
	// The follower's record of a claimed key settles it, and the lowest
	// index wins over a later Settle.
	key2 := dedupeKey("acme", "ev-2")
	if st, _, _, err := a.Claim(ctx, key2, d); err != nil || st != claimed {
		t.Fatalf("Claim ev-2 = %v, %v", st, err)
	}
	if err := b.Commit([]record{{Key: key2, Index: 3, LeafHash: [32]byte{3}, Digest: d}}, 4); err != nil {
		t.Fatal(err)
	}
	if err := a.Settle(ctx, record{Key: key2, Index: 9, LeafHash: [32]byte{9}, Digest: d}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := a.Lookup(key2); err != nil || !ok || got.Index != 3 {
		t.Fatalf("Lookup ev-2 = %+v, %v, %v; want index 3", got, ok, err)
	}
	// A stale claim: only dropped past the lease.
	key3 := dedupeKey("acme", "ev-3")
	a.lease, b.lease = 200*time.Millisecond, 200*time.Millisecond
	if st, _, _, err := a.Claim(ctx, key3, d); err != nil || st != claimed {
		t.Fatalf("Claim ev-3 = %v, %v", st, err)
	}
	_, info := claimKey(b, key3, claimBusy)
	if dropped, err := b.DropStale(ctx, key3, info); err != nil || dropped {
		t.Fatalf("DropStale of a fresh claim = %v, %v; want kept", dropped, err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, info = claimKey(b, key3, claimBusy); !info.stale {
		t.Fatalf("claim older than the lease not stale: %+v", info)
	}
	if dropped, err := b.DropStale(ctx, key3, info); err != nil || !dropped {
		t.Fatalf("DropStale of a stale claim = %v, %v; want dropped", dropped, err)
	}
	claimKey(b, key3, claimed)
}

// awsConfig is a Ledger config on tessera's AWS driver with a fresh
// database and bucket; dir holds only the keys.
func awsConfig(t *testing.T, dir, dsn, bucket string, st awstest.S3) func(*Config) {
	return func(c *Config) {
		c.AWS = &AWSConfig{DSN: dsn, Endpoint: st.Endpoint, Bucket: bucket, MaxOpenConns: 8}
		c.CheckpointInterval = AWSMinCheckpointInterval
		c.FollowInterval = 100 * time.Millisecond
	}
}

// TestAWSTwoFrontends runs two Ledgers, as two frontends, on one database
// and bucket. Both append the same events concurrently (and some of their
// own): each (tenant, event id) gets one leaf, both answer the same index
// for it, and a different body is refused with that index.
func TestAWSTwoFrontends(t *testing.T) {
	st := awstest.Store(t)
	dsn, bucket := awstest.NewDatabase(t), st.NewBucket(t)
	st.SetEnv(t)
	dir := t.TempDir()
	l1 := openLedger(t, dir, awsConfig(t, dir, dsn, bucket, st))
	l2 := openLedger(t, dir, awsConfig(t, dir, dsn, bucket, st))

	const shared, own = 200, 50
	type answer struct {
		id  string
		res Result
	}
	var mu sync.Mutex
	answers := map[*Ledger][]answer{}
	var wg sync.WaitGroup
	for _, l := range []*Ledger{l1, l2} {
		for g := range 4 {
			wg.Go(func() {
				var evs []*pb.ProvenanceEvent
				for i := g; i < shared; i += 4 {
					evs = append(evs, testEvent("acme", fmt.Sprintf("shared-%03d", i)))
				}
				for i := g; i < own; i += 4 {
					evs = append(evs, testEvent("acme", fmt.Sprintf("own-%p-%03d", l, i)))
				}
				// In batches of 10, as a client would send them.
				for len(evs) > 0 {
					n := min(10, len(evs))
					res := l.Append(t.Context(), subsOf(evs[:n]...))
					mu.Lock()
					for i, r := range res {
						answers[l] = append(answers[l], answer{evs[i].GetEventId(), r})
					}
					mu.Unlock()
					evs = evs[n:]
				}
			})
		}
	}
	wg.Wait()

	index := map[string]uint64{}
	leaves := map[uint64]string{}
	for l, as := range answers {
		for _, a := range as {
			if a.res.Err != nil {
				t.Fatalf("frontend %p: %s: %v", l, a.id, a.res.Err)
			}
			if prev, ok := index[a.id]; ok && prev != a.res.Index {
				t.Fatalf("%s answered at %d and at %d", a.id, prev, a.res.Index)
			}
			index[a.id] = a.res.Index
			if prev, ok := leaves[a.res.Index]; ok && prev != a.id {
				t.Fatalf("index %d answered for %s and %s", a.res.Index, prev, a.id)
			}
			leaves[a.res.Index] = a.id
		}
	}
	want := uint64(shared + 2*own)
	if uint64(len(index)) != want {
		t.Fatalf("%d distinct event ids answered, want %d", len(index), want)
	}
	awaitSize(t, l1, want)
	awaitSize(t, l2, want)
	for _, l := range []*Ledger{l1, l2} {
		if got := integratedSize(t, l); got != want {
			t.Fatalf("log holds %d leaves, want %d: an event was appended twice", got, want)
		}
	}
	// Either frontend reads every leaf and proves it.
	_, cp, err := l2.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for id, idx := range index {
		for _, l := range []*Ledger{l1, l2} {
			leaf, err := l.Entry(t.Context(), idx)
			if err != nil {
				t.Fatalf("Entry(%d): %v", idx, err)
			}
			e, err := event.DecodeLeaf(leaf)
			if err != nil || e.GetEvent().GetEventId() != id {
				t.Fatalf("leaf %d holds %q (%v), want %s", idx, e.GetEvent().GetEventId(), err, id)
			}
			if _, _, _, err := l.InclusionProof(t.Context(), idx, cp.Size); err != nil {
				t.Fatalf("InclusionProof(%d): %v", idx, err)
			}
		}
	}
	// A different body under a shared id is refused by either, naming the
	// index.
	for _, l := range []*Ledger{l1, l2} {
		res := l.Append(t.Context(), subsOf(variant(testEvent("acme", "shared-007"))))
		var ce *ConflictError
		if !errors.As(res[0].Err, &ce) || ce.Index != index["shared-007"] {
			t.Fatalf("variant of shared-007: %+v, want a conflict at %d", res[0], index["shared-007"])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l1.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMapTesseraErr: the AWS driver's pushback (ErrPushbackIntegration,
// once 4096 entries are outstanding) is ErrPushback to the service edge,
// which answers Unavailable with RetryInfo; any other sequencing failure
// (a database that is down) is ErrUnavailable.
func TestMapTesseraErr(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"integration pushback", tessera.ErrPushbackIntegration, ErrPushback},
		{"wrapped integration pushback", fmt.Errorf("assign: %w", tessera.ErrPushbackIntegration), ErrPushback},
		{"antispam pushback", tessera.ErrPushbackAntispam, ErrPushback},
		{"database down", errors.New("failed to begin Tx: dial tcp 127.0.0.1:3306: connection refused"), ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mapTesseraErr(tc.err); !errors.Is(got, tc.want) {
				t.Errorf("mapTesseraErr(%v) = %v, want errors.Is %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestMySQLSettleMany: settling keeps the lowest index, as the follower's
// records do, and settles claims.
func TestMySQLSettleMany(t *testing.T) {
	dsn := awstest.NewDatabase(t)
	s := openMySQL(t, dsn)
	defer s.Close()
	k1, k2 := dedupeKey("acme", "a"), dedupeKey("acme", "b")
	out, err := s.ClaimMany(t.Context(), []string{k1, k2}, [][32]byte{{1}, {2}})
	if err != nil || out[0].state != claimed || out[1].state != claimed {
		t.Fatalf("ClaimMany = %+v, %v", out, err)
	}
	if err := s.Commit([]record{{Key: k2, Index: 1, LeafHash: [32]byte{1}, Digest: [32]byte{2}}}, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.SettleMany(t.Context(), []record{{Key: k1, Index: 5, LeafHash: [32]byte{5}, Digest: [32]byte{1}}, {Key: k2, Index: 6, LeafHash: [32]byte{6}, Digest: [32]byte{2}}}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]uint64{k1: 5, k2: 1} {
		if r, ok, err := s.Lookup(k); err != nil || !ok || r.Index != want {
			t.Errorf("Lookup(%q) = %+v, %v, %v; want index %d", k, r, ok, err, want)
		}
	}
}
