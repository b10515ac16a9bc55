package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/client"
	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/lineage"
	"github.com/provlog/provlog/log/server"
	"github.com/provlog/provlog/log/vault"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// Tokens of the sensitive-value harness, one per role.
const (
	svAppender = "pl_sv-appender" // appender, acme and globex
	svReader   = "pl_sv-reader"   // reader, acme and globex
	svAuditor  = "pl_sv-auditor"  // auditor, acme and globex
	svAdmin    = "pl_sv-admin"    // admin, every tenant
)

// svPolicy: acme's pii goes to auditors and admins and is shredded one day
// after its key retires; its confidential values go to admins only and are
// archived; extensions.customer_email is sensitive whatever the event says.
// globex keeps its values.
const svPolicy = `{
  "default": {"reveal_to": ["auditor", "admin"]},
  "tenants": {
    "acme": {
      "sensitive_fields": {"extensions.customer_email": "pii"},
      "classifications": {
        "pii": {"retain_days": 1, "then": "shred"},
        "confidential": {"reveal_to": ["admin"], "retain_days": 1, "then": "archive"}
      }
    }
  }
}`

type vclock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *vclock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *vclock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// svHarness is a provlogd in process with a vault and a lineage index.
type svHarness struct {
	dir, keyFile string
	clock        *vclock
	policy       *vault.Policy
	ledger       *ledger.Ledger
	store        lineage.Store
	index        *lineage.Index
	vault        *vault.Vault
	srv          *server.Server
	conn         *grpc.ClientConn
	log          pb.LogServiceClient
	lineage      pb.LineageServiceClient
	verifier     note.Verifier
	cancel       context.CancelFunc
	indexDone    chan struct{}
}

func startSV(t testing.TB, dir, keyFile string, clock *vclock) *svHarness {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &svHarness{dir: dir, keyFile: keyFile, clock: clock}
	signer, vkey, err := ledger.LoadOrCreateKeys(dir, "", testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if h.verifier, err = note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	h.ledger, err = ledger.Open(t.Context(), ledger.Config{
		Dir: dir, Signer: signer, Verifier: h.verifier, CheckpointInterval: checkpointInterval,
		BatchMaxSize: 256, BatchMaxAge: 10 * time.Millisecond, FollowInterval: 50 * time.Millisecond, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.store, err = lineage.OpenPebbleStore(filepath.Join(dir, "lineage"), logger); err != nil {
		t.Fatal(err)
	}
	if h.index, err = lineage.Open(t.Context(), h.store, h.ledger.Reader(), lineage.Options{Logger: logger, PollInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	km, err := vault.LoadMasterKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(t.TempDir(), "policy.json")
	os.WriteFile(pf, []byte(svPolicy), 0o600)
	if h.policy, err = vault.ParsePolicy(pf); err != nil {
		t.Fatal(err)
	}
	if h.vault, err = vault.Open(vault.Config{Dir: filepath.Join(dir, "vault"), Keys: km, Now: clock.now, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	tokens := &auth.Tokens{}
	both := []string{"acme", "globex"}
	tokens.Add(svAppender, &auth.Identity{Name: "token:appender", Roles: []auth.Role{auth.RoleAppender}, Tenants: both})
	tokens.Add(svReader, &auth.Identity{Name: "token:reader", Roles: []auth.Role{auth.RoleReader}, Tenants: both})
	tokens.Add(svAuditor, &auth.Identity{Name: "token:auditor", Roles: []auth.Role{auth.RoleAuditor}, Tenants: both})
	tokens.Add(svAdmin, &auth.Identity{Name: "admin", Roles: []auth.Role{auth.RoleAdmin}, Tenants: []string{auth.AllTenants}})
	h.srv, err = server.New(t.Context(), server.Config{
		Ledger: h.ledger, Lineage: h.index, Auth: tokens, Logger: logger, PublishTimeout: 10 * time.Second,
		Now: func() time.Time { return testNow }, Vault: h.vault, VaultPolicy: h.policy,
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h.srv.GRPC.Serve(lis)
	h.srv.SetServing(true)
	if h.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	h.log, h.lineage = pb.NewLogServiceClient(h.conn), pb.NewLineageServiceClient(h.conn)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.indexDone = cancel, make(chan struct{})
	go func() { defer close(h.indexDone); h.index.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *svHarness) stop(t testing.TB) {
	if h.srv == nil {
		return
	}
	h.conn.Close()
	h.srv.GRPC.Stop()
	h.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.ledger.Close(ctx); err != nil {
		t.Errorf("ledger.Close: %v", err)
	}
	h.cancel()
	<-h.indexDone
	h.store.Close()
	if err := h.vault.Close(); err != nil {
		t.Errorf("vault.Close: %v", err)
	}
	h.srv = nil
}

// published waits for a checkpoint covering every leaf and for the lineage
// index to reach it; it returns the checkpoint.
func (h *svHarness) published(t *testing.T) []byte {
	t.Helper()
	want, err := h.ledger.Reader().IntegratedSize(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		raw, cp, err := h.ledger.Checkpoint(t.Context())
		if err == nil && cp.Size >= want {
			if err := h.index.CatchUp(t.Context()); err != nil {
				t.Fatal(err)
			}
			return raw
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covering %d leaves", want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *svHarness) entry(t *testing.T, token string, index uint64) *pb.GetEntryResponse {
	t.Helper()
	r, err := h.log.GetEntry(withToken(t.Context(), token), &pb.GetEntryRequest{Index: index})
	if err != nil {
		t.Fatalf("GetEntry(%d): %v", index, err)
	}
	return r
}

// The values of the test. Long and distinctive, so that finding them in a
// file cannot be chance.
const (
	emailValue  = "alice.sensitive-7f3a@example.com"
	phoneValue  = "+33-6-SENSITIVE-1234-5678"
	amountValue = "AMOUNT-SENSITIVE-1250000.00"
	extValue    = "bob.policy-marked-9c2e@example.com"
	globexValue = "globex-SENSITIVE-carol@example.net"
)

func sensitiveEvent(t *testing.T, tenant, id string) *pb.ProvenanceEvent {
	ev := readEvent(t, id)
	ev.Tenant = tenant
	if tenant == "globex" {
		ev.Sensitive = []*pb.SensitiveValue{{Name: "contact.email", Classification: "pii", Value: globexValue}}
		return ev
	}
	ev.Sensitive = []*pb.SensitiveValue{
		{Name: "contact.email", Classification: "pii", Value: emailValue},
		{Name: "contact.phone", Classification: "pii", Value: phoneValue},
		{Name: "deal.amount", Classification: "confidential", Value: amountValue},
	}
	ev.Extensions["customer_email"] = extValue
	return ev
}

// checkOpening verifies a revealed value against the commitment in the
// leaf bytes, decoded here, not taken from the server's decoded entry.
func checkOpening(t *testing.T, leaf []byte, r *pb.SensitiveReveal, want string) {
	t.Helper()
	le, err := event.DecodeLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	var c []byte
	for _, s := range le.GetEvent().GetSensitive() {
		if s.GetName() == r.GetName() {
			c = s.GetCommitment()
		}
	}
	if r.GetStatus() != pb.SensitiveStatus_SENSITIVE_STATUS_REVEALED || r.GetValue() != want {
		t.Fatalf("%s: status %v value %q, want revealed %q", r.GetName(), r.GetStatus(), r.GetValue(), want)
	}
	if !event.VerifyCommitment(c, r.GetSalt(), []byte(r.GetValue())) {
		t.Errorf("%s: the revealed value does not open the leaf's commitment", r.GetName())
	}
}

func byName(rs []*pb.SensitiveReveal) map[string]*pb.SensitiveReveal {
	m := make(map[string]*pb.SensitiveReveal)
	for _, r := range rs {
		m[r.GetName()] = r
	}
	return m
}

func newKeyFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vault-master.key")
	if err := vault.CreateMasterKeyFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSensitiveValues: appended sensitive values are nowhere in the data
// directory, auditors read them and verify them against the leaf, readers
// see them redacted, in entries and in lineage, before and after a
// restart; re-sending is idempotent.
func TestSensitiveValues(t *testing.T) {
	dir, key := t.TempDir(), newKeyFile(t)
	clock := &vclock{t: testNow}
	h := startSV(t, dir, key, clock)
	ctx := withToken(t.Context(), svAppender)

	ev := sensitiveEvent(t, "acme", uniqueID(t, "one"))
	first, err := h.log.Append(ctx, &pb.AppendRequest{Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	// Same event again: a duplicate, at the same index.
	again, err := h.log.Append(ctx, &pb.AppendRequest{Event: sensitiveEvent(t, "acme", ev.GetEventId())})
	if err != nil || !again.GetDuplicate() || again.GetIndex() != first.GetIndex() {
		t.Fatalf("re-sent event: %v, %v; want a duplicate of %d", again, err, first.GetIndex())
	}
	// Same id, another value: a conflict.
	changed := sensitiveEvent(t, "acme", ev.GetEventId())
	changed.Sensitive[0].Value = "someone-else@example.com"
	_, err = h.log.Append(ctx, &pb.AppendRequest{Event: changed})
	grpcCode(t, err, codes.AlreadyExists)
	// A batch: another acme event and a globex one.
	batch, err := h.log.AppendBatch(ctx, &pb.AppendBatchRequest{Events: []*pb.ProvenanceEvent{
		sensitiveEvent(t, "acme", uniqueID(t, "two")), sensitiveEvent(t, "globex", uniqueID(t, "three")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range batch.GetResults() {
		if r.GetError() != nil {
			t.Fatalf("batch: %v", r.GetError())
		}
	}
	// Invalid sensitive input is refused, naming the field.
	bad := sensitiveEvent(t, "acme", uniqueID(t, "bad"))
	bad.Sensitive[1].KeyId = "acme/pii/9"
	_, err = h.log.Append(ctx, &pb.AppendRequest{Event: bad})
	grpcCode(t, err, codes.InvalidArgument, "sensitive[1].key_id")

	h.published(t)
	check := func(t *testing.T) {
		idx := first.GetIndex()
		// Auditor: pii in clear, verified against the leaf; confidential
		// (admins only) redacted. The policy-marked extension is gone from
		// the event and is a sensitive value.
		a := h.entry(t, svAuditor, idx)
		if _, ok := a.GetEntry().GetEvent().GetExtensions()["customer_email"]; ok {
			t.Error("extensions.customer_email is in the leaf")
		}
		got := byName(a.GetSensitive())
		// The SDK's check, from the leaf bytes alone.
		le, err := event.DecodeLeaf(a.GetLeaf())
		if err != nil {
			t.Fatal(err)
		}
		if vals, err := client.VerifySensitive(le, a.GetSensitive()); err != nil || vals["contact.email"] != emailValue || len(vals) != 3 {
			t.Errorf("client.VerifySensitive = %v, %v", vals, err)
		}
		checkOpening(t, a.GetLeaf(), got["contact.email"], emailValue)
		checkOpening(t, a.GetLeaf(), got["contact.phone"], phoneValue)
		checkOpening(t, a.GetLeaf(), got["extensions.customer_email"], extValue)
		if r := got["deal.amount"]; r.GetStatus() != pb.SensitiveStatus_SENSITIVE_STATUS_REDACTED || r.GetDisplay() != "[REDACTED: confidential]" || r.GetValue() != "" || r.GetSalt() != nil {
			t.Errorf("auditor sees confidential: %v", r)
		}
		// Admin: everything.
		checkOpening(t, a.GetLeaf(), byName(h.entry(t, svAdmin, idx).GetSensitive())["deal.amount"], amountValue)
		// REST, as a reader: the JSON says redacted and holds no value.
		for tok, want := range map[string]bool{svReader: false, svAuditor: true} {
			req := httptest.NewRequest("GET", fmt.Sprintf("/v1/entries/%d", idx), nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			h.srv.HTTPHandler().ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != 200 || strings.Contains(body, emailValue) != want || strings.Contains(body, "[REDACTED: pii]") == want {
				t.Errorf("GET /v1/entries/%d as %s: %d %s", idx, tok, rec.Code, body)
			}
		}
		// Reader: all redacted, no value, no salt.
		for _, r := range h.entry(t, svReader, idx).GetSensitive() {
			if r.GetStatus() != pb.SensitiveStatus_SENSITIVE_STATUS_REDACTED || r.GetDisplay() != "[REDACTED: "+r.GetClassification()+"]" || r.GetValue() != "" || r.GetSalt() != nil {
				t.Errorf("reader sees %v", r)
			}
		}
		// Lineage: the activity node carries the same view.
		for _, tc := range []struct {
			token  string
			masked bool
		}{{svReader, true}, {svAdmin, false}} {
			tr, err := h.lineage.Trace(withToken(t.Context(), tc.token), &pb.TraceRequest{Tenant: "acme", Start: &pb.TraceRequest_EventId{EventId: ev.GetEventId()}, Direction: pb.Direction_DIRECTION_BOTH})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, n := range tr.GetNodes() {
				if n.GetKind() != pb.NodeKind_NODE_KIND_ACTIVITY || n.GetEventId() != ev.GetEventId() {
					continue
				}
				found = true
				if n.GetMasked() != tc.masked || len(n.GetSensitive()) != 4 {
					t.Errorf("trace node for %s: masked %v, %d values", tc.token, n.GetMasked(), len(n.GetSensitive()))
				}
				for _, r := range n.GetSensitive() {
					if tc.masked && r.GetValue() != "" {
						t.Errorf("reader's trace shows %s", r.GetName())
					}
					if !tc.masked && r.GetStatus() != pb.SensitiveStatus_SENSITIVE_STATUS_REVEALED {
						t.Errorf("admin's trace hides %s", r.GetName())
					}
				}
			}
			if !found {
				t.Errorf("trace has no activity for the event")
			}
		}
	}
	t.Run("before restart", check)
	h.stop(t)
	h = startSV(t, dir, key, clock)
	h.published(t)
	t.Run("after restart", check)
	h.stop(t)

	// Nothing under the data directory holds a value in clear: tiles,
	// entry bundles, the dedupe index, the lineage index, the vault.
	scanForPlaintext(t, dir, emailValue, phoneValue, amountValue, extValue, globexValue)
}

func scanForPlaintext(t *testing.T, dir string, values ...string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, v := range values {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds %q in clear", p, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Errorf("scanned only %d files", files)
	}
}

// TestSensitiveWithoutVault: a log with no vault refuses sensitive values.
func TestSensitiveWithoutVault(t *testing.T) {
	h := startHarness(t, "")
	ev := readEvent(t, uniqueID(t, "x"))
	ev.Sensitive = []*pb.SensitiveValue{{Name: "n", Classification: "pii", Value: "v"}}
	_, err := h.client.Append(withToken(t.Context(), adminToken), &pb.AppendRequest{Event: ev})
	grpcCode(t, err, codes.FailedPrecondition, "event.sensitive", "no vault")
}

// verifyLog checks, with x/mod's tlog only, every leaf's inclusion proof to
// the latest checkpoint and, when from > 0, the consistency of the
// checkpoint of size from with it. It returns the leaf hashes.
func (h *svHarness) verifyLog(t *testing.T, fromSize int64, fromRoot tlog.Hash) []tlog.Hash {
	t.Helper()
	raw := h.published(t)
	size, root := openCheckpoint(t, h.verifier, raw)
	ctx := withToken(t.Context(), svAuditor)
	var hashes []tlog.Hash
	for i := range size {
		p, err := h.log.GetInclusionProof(ctx, &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_Index{Index: uint64(i)}, TreeSize: uint64(size)})
		if err != nil {
			t.Fatal(err)
		}
		e := h.entry(t, svAdmin, uint64(i))
		lh := tlog.RecordHash(e.GetLeaf())
		if err := tlog.CheckRecord(proofHashes(t, p.GetProof()), size, root, i, lh); err != nil {
			t.Errorf("leaf %d: inclusion proof does not verify: %v", i, err)
		}
		hashes = append(hashes, lh)
	}
	if fromSize > 0 {
		c, err := h.log.GetConsistencyProof(ctx, &pb.GetConsistencyProofRequest{FromSize: uint64(fromSize), ToSize: uint64(size)})
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(proofHashes(t, c.GetProof()), size, root, fromSize, fromRoot); err != nil {
			t.Errorf("consistency %d -> %d does not verify: %v", fromSize, size, err)
		}
	}
	return hashes
}

func proofHashes(t *testing.T, proof [][]byte) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(proof))
	for i, p := range proof {
		if len(p) != tlog.HashSize {
			t.Fatalf("proof hash of %d bytes", len(p))
		}
		out[i] = tlog.Hash(p)
	}
	return out
}

// TestRetentionShred: a retention run shreds acme's old pii and archives
// its old confidential values; reads then say erased, when and under
// which policy; the erasures are events in the log; every proof still
// verifies and no earlier leaf changed; lineage still traces; newer acme
// values and globex are untouched.
func TestRetentionShred(t *testing.T) {
	dir, key := t.TempDir(), newKeyFile(t)
	clock := &vclock{t: testNow}
	h := startSV(t, dir, key, clock)
	ctx := withToken(t.Context(), svAppender)
	appendOne := func(ev *pb.ProvenanceEvent) uint64 {
		t.Helper()
		r, err := h.log.Append(ctx, &pb.AppendRequest{Event: ev})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetIndex()
	}
	oldEv := sensitiveEvent(t, "acme", uniqueID(t, "old"))
	oldIdx := appendOne(oldEv)
	globexIdx := appendOne(sensitiveEvent(t, "globex", uniqueID(t, "globex")))
	cp1 := h.published(t)
	size1, root1 := openCheckpoint(t, h.verifier, cp1)
	before := h.verifyLog(t, 0, tlog.Hash{})

	run := func() {
		t.Helper()
		if err := server.RunRetention(t.Context(), h.ledger, h.vault, h.policy, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			t.Fatal(err)
		}
	}
	clock.add(25 * time.Hour) // the first keys retire; nothing is due yet
	run()
	if es := h.vault.Erasures(); len(es) != 0 {
		t.Fatalf("erased too early: %+v", es)
	}
	newIdx := appendOne(sensitiveEvent(t, "acme", uniqueID(t, "new"))) // under generation 2
	clock.add(24 * time.Hour)
	erasedAt := clock.now()
	run()
	es := h.vault.Erasures()
	if len(es) != 2 {
		t.Fatalf("erasures %+v, want acme/pii/1 and acme/confidential/1", es)
	}
	h.published(t)

	// The old acme values: erased, saying when and under which policy.
	a := byName(h.entry(t, svAdmin, oldIdx).GetSensitive())
	for name, want := range map[string]struct {
		status pb.SensitiveStatus
		policy string
	}{
		"contact.email":             {pb.SensitiveStatus_SENSITIVE_STATUS_SHREDDED, "acme/pii:shred-after-1d"},
		"contact.phone":             {pb.SensitiveStatus_SENSITIVE_STATUS_SHREDDED, "acme/pii:shred-after-1d"},
		"extensions.customer_email": {pb.SensitiveStatus_SENSITIVE_STATUS_SHREDDED, "acme/pii:shred-after-1d"},
		"deal.amount":               {pb.SensitiveStatus_SENSITIVE_STATUS_ARCHIVED, "acme/confidential:archive-after-1d"},
	} {
		r := a[name]
		if r.GetStatus() != want.status || r.GetPolicy() != want.policy || !r.GetErasedTime().AsTime().Equal(erasedAt) || r.GetValue() != "" {
			t.Errorf("%s after retention: %v", name, r)
		}
		if d := r.GetDisplay(); !strings.HasPrefix(d, "[ERASED: "+r.GetClassification()+", "+map[pb.SensitiveStatus]string{pb.SensitiveStatus_SENSITIVE_STATUS_SHREDDED: "shredded", pb.SensitiveStatus_SENSITIVE_STATUS_ARCHIVED: "archived"}[want.status]+" at ") {
			t.Errorf("%s display %q", name, r.GetDisplay())
		}
	}
	// Newer acme values and globex: untouched.
	checkOpening(t, h.entry(t, svAuditor, newIdx).GetLeaf(), byName(h.entry(t, svAuditor, newIdx).GetSensitive())["contact.email"], emailValue)
	g := h.entry(t, svAuditor, globexIdx)
	checkOpening(t, g.GetLeaf(), g.GetSensitive()[0], globexValue)

	// Each erasure is an event in the log, in its tenant.
	for _, e := range es {
		if !e.Logged {
			t.Fatalf("erasure not logged: %+v", e)
		}
		le := h.entry(t, svAdmin, e.LogIndex).GetEntry()
		ev := le.GetEvent()
		if ev.GetEventId() != "vault-erasure:"+e.KeyID || ev.GetTenant() != "acme" || le.GetSubmitter() != server.RetentionSubmitter ||
			ev.GetExtensions()["provlog.erasure.policy"] != e.Policy || ev.GetExtensions()["provlog.erasure.action"] != string(e.Action) {
			t.Errorf("erasure event at %d: %v", e.LogIndex, le)
		}
	}
	// Running again erases and logs nothing more.
	sizeAfter := h.verifyLog(t, size1, root1)
	run()
	if again := h.verifyLog(t, size1, root1); len(again) != len(sizeAfter) {
		t.Errorf("second retention run added %d leaves", len(again)-len(sizeAfter))
	}
	// Every earlier leaf is unchanged, and every proof verifies (above).
	for i, lh := range before {
		if sizeAfter[i] != lh {
			t.Errorf("leaf %d changed", i)
		}
	}
	// Lineage still traces the erased event, its values marked erased.
	tr, err := h.lineage.Trace(withToken(t.Context(), svAuditor), &pb.TraceRequest{Tenant: "acme", Start: &pb.TraceRequest_EventId{EventId: oldEv.GetEventId()}, Direction: pb.Direction_DIRECTION_BOTH})
	if err != nil {
		t.Fatal(err)
	}
	var activity *pb.LineageNode
	for _, n := range tr.GetNodes() {
		if n.GetEventId() == oldEv.GetEventId() {
			activity = n
		}
	}
	if activity == nil || len(tr.GetEdges()) == 0 || !activity.GetMasked() {
		t.Fatalf("trace of the erased event: %v", tr)
	}
	for _, r := range activity.GetSensitive() {
		if r.GetStatus() == pb.SensitiveStatus_SENSITIVE_STATUS_REVEALED {
			t.Errorf("trace reveals erased %s", r.GetName())
		}
	}
	// The log can no longer tell a re-sent erased event from a changed
	// one: a conflict.
	_, err = h.log.Append(ctx, &pb.AppendRequest{Event: sensitiveEvent(t, "acme", oldEv.GetEventId())})
	grpcCode(t, err, codes.AlreadyExists)

	h.stop(t)
	scanForPlaintext(t, dir, emailValue, phoneValue, amountValue, extValue, globexValue)
}
