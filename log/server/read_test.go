package server_test

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// TestGetEntryTenantIsolation: a reader limited to tenant "other" gets its
// own tenant's entries, and NotFound, exactly as for an entry that does
// not exist, for anyone else's.
func TestGetEntryTenantIsolation(t *testing.T) {
	h := startHarness(t, "")
	acmeEv := readEvent(t, uniqueID(t, "acme"))
	acmeIdx := h.mustAppend(t, acmeEv, pb.WaitFor_WAIT_FOR_SEQUENCED).GetIndex()
	otherEv := readEvent(t, uniqueID(t, "other"))
	otherEv.Tenant = "other"
	otherIdx := h.mustAppend(t, otherEv, pb.WaitFor_WAIT_FOR_PUBLISHED).GetIndex()
	size := h.publishedSize(t)

	// Own tenant: the entry, raw and decoded.
	resp, err := h.client.GetEntry(withToken(t.Context(), readerToken), &pb.GetEntryRequest{Index: otherIdx})
	if err != nil {
		t.Fatalf("reader GetEntry(own tenant): %v", err)
	}
	if !proto.Equal(resp.GetEntry().GetEvent(), otherEv) || resp.GetEntry().GetSubmitter() != "admin" || resp.GetIndex() != otherIdx {
		t.Errorf("GetEntry(%d) = %v, want the other-tenant event submitted by admin", otherIdx, resp)
	}
	if h := tlog.RecordHash(resp.GetLeaf()); string(h[:]) != string(resp.GetLeafHash()) {
		t.Errorf("leaf_hash %x, want tlog.RecordHash(leaf) %x", resp.GetLeafHash(), h)
	}
	var rest pb.GetEntryResponse
	h.rest(t, http.MethodGet, fmt.Sprintf("/v1/entries/%d", otherIdx), readerToken, nil).decode(t, &rest)
	if diff := cmp.Diff(resp.GetLeaf(), rest.GetLeaf()); diff != "" {
		t.Errorf("REST leaf differs from gRPC (-grpc +rest):\n%s", diff)
	}

	// Foreign tenant: NotFound, the same answer as for no entry at all.
	_, err = h.client.GetEntry(withToken(t.Context(), readerToken), &pb.GetEntryRequest{Index: acmeIdx})
	foreign := grpcCode(t, err, codes.NotFound)
	_, err = h.client.GetEntry(withToken(t.Context(), readerToken), &pb.GetEntryRequest{Index: size})
	missing := grpcCode(t, err, codes.NotFound)
	if foreign.Message() != missing.Message() {
		t.Errorf("a foreign entry (%q) is told apart from a missing one (%q)", foreign.Message(), missing.Message())
	}
	rf := restCode(t, h.rest(t, http.MethodGet, fmt.Sprintf("/v1/entries/%d", acmeIdx), readerToken, nil), codes.NotFound)
	rm := restCode(t, h.rest(t, http.MethodGet, fmt.Sprintf("/v1/entries/%d", size), readerToken, nil), codes.NotFound)
	if rf != rm {
		t.Errorf("REST: a foreign entry (%+v) is told apart from a missing one (%+v)", rf, rm)
	}

	// The admin reads everything.
	resp, err = h.client.GetEntry(withToken(t.Context(), adminToken), &pb.GetEntryRequest{Index: acmeIdx})
	if err != nil || !proto.Equal(resp.GetEntry().GetEvent(), acmeEv) {
		t.Errorf("admin GetEntry(%d) = %v, %v", acmeIdx, resp, err)
	}
}

// TestProofAPI checks GetCheckpoint, GetInclusionProof (by index and by
// leaf hash) and GetConsistencyProof with x/mod only.
func TestProofAPI(t *testing.T) {
	h := startHarness(t, "")
	var first *pb.AppendResponse
	for i := range 5 {
		r := h.mustAppend(t, readEvent(t, uniqueID(t, fmt.Sprint(i))), pb.WaitFor_WAIT_FOR_SEQUENCED)
		if i == 0 {
			first = h.mustAppend(t, readEvent(t, uniqueID(t, "0")), pb.WaitFor_WAIT_FOR_PUBLISHED)
			if !first.GetDuplicate() || first.GetIndex() != r.GetIndex() {
				t.Fatalf("re-append of the first event: %v", first)
			}
		}
	}
	oldSize, oldRoot := openCheckpoint(t, h.verifier, first.GetReceipt().GetCheckpoint())
	h.publishedSize(t)

	ctx := withToken(t.Context(), adminToken)
	cp, err := h.client.GetCheckpoint(ctx, &pb.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	size, root := openCheckpoint(t, h.verifier, cp.GetCheckpoint())
	if cp.GetOrigin() != testOrigin || cp.GetSize() != uint64(size) || string(cp.GetRootHash()) != string(root[:]) || size != 5 {
		t.Errorf("GetCheckpoint = %v, want origin %s size 5 root %x", cp, testOrigin, root)
	}
	// /log/checkpoint serves the same bytes, without a token.
	if r := h.rest(t, http.MethodGet, "/log/checkpoint", "", nil); r.status != http.StatusOK || string(r.body) != string(cp.GetCheckpoint()) {
		t.Errorf("/log/checkpoint = %d %q, want 200 and GetCheckpoint's bytes", r.status, r.body)
	}

	for _, req := range []*pb.GetInclusionProofRequest{
		{Leaf: &pb.GetInclusionProofRequest_Index{Index: first.GetIndex()}},
		{Leaf: &pb.GetInclusionProofRequest_LeafHash{LeafHash: first.GetLeafHash()}},
	} {
		p, err := h.client.GetInclusionProof(ctx, req)
		if err != nil {
			t.Fatalf("GetInclusionProof(%v): %v", req, err)
		}
		if p.GetIndex() != first.GetIndex() || p.GetTreeSize() != uint64(size) || string(p.GetLeafHash()) != string(first.GetLeafHash()) {
			t.Errorf("GetInclusionProof(%v) = %v", req, p)
		}
		ps, pr := openCheckpoint(t, h.verifier, p.GetCheckpoint())
		if err := tlog.CheckRecord(hashes(t, p.GetProof()), ps, pr, int64(p.GetIndex()), tlog.Hash(p.GetLeafHash())); err != nil {
			t.Errorf("GetInclusionProof(%v) does not verify: %v", req, err)
		}
	}
	// At an explicit, older size: no checkpoint, and the proof is for that
	// size's root, which the receipt's checkpoint gives.
	p, err := h.client.GetInclusionProof(ctx, &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_Index{Index: first.GetIndex()}, TreeSize: uint64(oldSize)})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetCheckpoint() != nil {
		t.Error("inclusion proof at an explicit size carries a checkpoint")
	}
	if err := tlog.CheckRecord(hashes(t, p.GetProof()), oldSize, oldRoot, int64(first.GetIndex()), tlog.Hash(first.GetLeafHash())); err != nil {
		t.Errorf("inclusion proof at size %d does not verify: %v", oldSize, err)
	}

	c, err := h.client.GetConsistencyProof(ctx, &pb.GetConsistencyProofRequest{FromSize: uint64(oldSize)})
	if err != nil {
		t.Fatal(err)
	}
	cs, cr := openCheckpoint(t, h.verifier, c.GetCheckpoint())
	if c.GetFromSize() != uint64(oldSize) || c.GetToSize() != uint64(cs) {
		t.Errorf("GetConsistencyProof = %v", c)
	}
	if err := tlog.CheckTree(hashes(t, c.GetProof()), cs, cr, oldSize, oldRoot); err != nil {
		t.Errorf("consistency %d -> %d does not verify: %v", oldSize, cs, err)
	}
	// The REST mapping gives the same proof.
	var rc pb.GetConsistencyProofResponse
	h.rest(t, http.MethodGet, fmt.Sprintf("/v1/proofs/consistency?fromSize=%d&toSize=%d", oldSize, cs), adminToken, nil).decode(t, &rc)
	if diff := cmp.Diff(c.GetProof(), rc.GetProof()); diff != "" {
		t.Errorf("REST consistency proof differs (-grpc +rest):\n%s", diff)
	}
}

func hashes(t *testing.T, proof [][]byte) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(proof))
	for i, p := range proof {
		if len(p) != tlog.HashSize {
			t.Fatalf("proof element %d is %d bytes", i, len(p))
		}
		out[i] = tlog.Hash(p)
	}
	return out
}

// TestHTTPEndpoints: /log/ is public, /v1/ and /metrics need a token with
// the right permission, /healthz follows SetServing.
func TestHTTPEndpoints(t *testing.T) {
	h := startHarness(t, "")
	var leaves [][]byte
	var evs []*pb.ProvenanceEvent
	for i := range 3 {
		evs = append(evs, readEvent(t, uniqueID(t, fmt.Sprint(i))))
		r := h.mustAppend(t, evs[i], pb.WaitFor_WAIT_FOR_PUBLISHED)
		leaves = append(leaves, r.GetReceipt().GetLeaf())
	}
	size := h.publishedSize(t)
	if size != 3 {
		t.Fatalf("published size %d, want 3", size)
	}

	for _, tc := range []struct {
		path   string
		token  string
		status int
	}{
		{"/log/checkpoint", "", http.StatusOK},
		{"/log/tile/0/000.p/3", "", http.StatusOK},
		{"/log/tile/entries/000.p/3", "", http.StatusOK},
		{"/log/tile/0/000", "", http.StatusNotFound}, // not full yet
		{"/log/tile/entries/001.p/1", "", http.StatusNotFound},
		{"/log/tile/0/x", "", http.StatusBadRequest},
		{"/log/checkpoint", "pl_garbage", http.StatusOK}, // a bad token does not matter on public paths
		{"/v1/checkpoint", "", http.StatusUnauthorized},
		{"/v1/checkpoint", "pl_garbage", http.StatusUnauthorized},
		{"/v1/checkpoint", readerToken, http.StatusForbidden}, // proofs need the proof permission
		{"/v1/checkpoint", adminToken, http.StatusOK},
		{"/v1/entries/0", "", http.StatusUnauthorized},
		{"/v1/proofs/consistency?fromSize=1", "", http.StatusUnauthorized},
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "pl_garbage", http.StatusUnauthorized},
		{"/metrics", acmeToken, http.StatusForbidden},
		{"/metrics", readerToken, http.StatusForbidden}, // metrics name identities of every tenant: auditors and admins only
		{"/metrics", adminToken, http.StatusOK},
		{"/healthz", "", http.StatusOK},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/")+"/"+tokenName(tc.token), func(t *testing.T) {
			r := h.rest(t, http.MethodGet, tc.path, tc.token, nil)
			if r.status != tc.status {
				t.Fatalf("GET %s = %d %s, want %d", tc.path, r.status, r.body, tc.status)
			}
			if tc.status == http.StatusUnauthorized && tc.path == "/metrics" && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("tiles hold the log", func(t *testing.T) {
		// The entry bundle is the leaves, each with a 2-byte length.
		b := h.rest(t, http.MethodGet, "/log/tile/entries/000.p/3", "", nil).body
		var got [][]byte
		for len(b) >= 2 {
			n := int(binary.BigEndian.Uint16(b))
			if len(b) < 2+n {
				t.Fatalf("truncated entry bundle")
			}
			got = append(got, b[2:2+n])
			b = b[2+n:]
		}
		if diff := cmp.Diff(leaves, got); diff != "" || len(b) != 0 {
			t.Errorf("entry bundle (-receipts +bundle):\n%s", diff)
		}
		// The level-0 tile is the leaf hashes, and they hash up to the
		// checkpoint's root.
		tile := h.rest(t, http.MethodGet, "/log/tile/0/000.p/3", "", nil).body
		if len(tile) != 3*tlog.HashSize {
			t.Fatalf("tile of %d bytes, want %d", len(tile), 3*tlog.HashSize)
		}
		var stored []tlog.Hash
		reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				out[i] = stored[x]
			}
			return out, nil
		})
		for i, leaf := range leaves {
			if h := tlog.RecordHash(leaf); string(h[:]) != string(tile[i*32:(i+1)*32]) {
				t.Errorf("tile hash %d is not the leaf's", i)
			}
			hs, err := tlog.StoredHashes(int64(i), leaf, reader)
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, hs...)
		}
		root, err := tlog.TreeHash(3, reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, cpRoot := openCheckpoint(t, h.verifier, h.rest(t, http.MethodGet, "/log/checkpoint", "", nil).body); cpRoot != root {
			t.Errorf("checkpoint root %x, want %x from the tiles", cpRoot, root)
		}
	})

	t.Run("metrics count appends", func(t *testing.T) {
		// One invalid event through Append, one through AppendBatch, one
		// duplicate.
		bad := readEvent(t, uniqueID(t, "bad"))
		bad.Tenant = ""
		_, err := h.client.Append(withToken(t.Context(), adminToken), &pb.AppendRequest{Event: bad})
		grpcCode(t, err, codes.InvalidArgument)
		if _, err := h.client.AppendBatch(withToken(t.Context(), adminToken), &pb.AppendBatchRequest{Events: []*pb.ProvenanceEvent{bad, evs[0]}}); err != nil {
			t.Fatal(err)
		}
		body := string(h.rest(t, http.MethodGet, "/metrics", adminToken, nil).body)
		for _, want := range []string{
			`provlog_appends_total{result="new"} 3`,
			`provlog_appends_total{result="duplicate"} 1`,
			`provlog_appends_total{result="invalid"} 2`,
		} {
			if !strings.Contains(body, want+"\n") {
				t.Errorf("/metrics lacks %s:\n%s", want, grepLines(body, "provlog_appends_total"))
			}
		}
	})

	t.Run("health", func(t *testing.T) {
		hc := healthpb.NewHealthClient(h.conn)
		check := func(want healthpb.HealthCheckResponse_ServingStatus, wantHTTP int) {
			t.Helper()
			for _, svc := range []string{"", pb.LogService_ServiceDesc.ServiceName} {
				r, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
				if err != nil || r.GetStatus() != want {
					t.Errorf("health %q without a token = %v, %v; want %v", svc, r, err, want)
				}
			}
			if r := h.rest(t, http.MethodGet, "/healthz", "", nil); r.status != wantHTTP {
				t.Errorf("/healthz = %d, want %d", r.status, wantHTTP)
			}
		}
		check(healthpb.HealthCheckResponse_SERVING, http.StatusOK)
		h.srv.SetServing(false)
		check(healthpb.HealthCheckResponse_NOT_SERVING, http.StatusServiceUnavailable)
		h.srv.SetServing(true)
		check(healthpb.HealthCheckResponse_SERVING, http.StatusOK)
	})
}

func tokenName(tok string) string {
	switch tok {
	case "":
		return "no-token"
	case adminToken:
		return "admin"
	case acmeToken:
		return "acme-appender"
	case readerToken:
		return "other-reader"
	}
	return "bad-token"
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
