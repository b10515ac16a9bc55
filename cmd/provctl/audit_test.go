package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/client"
	"github.com/provlog/provlog/log/authorship"
	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/lineage"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// memSource serves synthetic leaves as entry bundles.
type memSource struct{ leaves [][]byte }

func (s memSource) IntegratedSize(context.Context) (uint64, error) { return uint64(len(s.leaves)), nil }

func (s memSource) ReadEntryBundle(_ context.Context, index uint64, p uint8) ([]byte, error) {
	n := 256
	if p != 0 {
		n = int(p)
	}
	var b []byte
	for _, l := range s.leaves[index*256 : index*256+uint64(n)] {
		b = binary.BigEndian.AppendUint16(b, uint16(len(l)))
		b = append(b, l...)
	}
	return b, nil
}

// digestServer is a LineageService whose index digests agree with good
// below badFrom and differ from badFrom on.
type digestServer struct {
	pb.UnimplementedLineageServiceServer
	good    *lineage.Index
	size    uint64
	badFrom uint64
}

func (s *digestServer) GetIndexDigest(ctx context.Context, req *pb.GetIndexDigestRequest) (*pb.GetIndexDigestResponse, error) {
	at := req.GetTreeSize()
	if at == 0 {
		at = s.size
	}
	d, err := s.good.DigestAt(ctx, at)
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if at >= s.badFrom {
		d = sha256.Sum256(d[:])
	}
	return &pb.GetIndexDigestResponse{TreeSize: at, Digest: d[:], Watermark: s.size}, nil
}

// TestCompareIndexNamesFirstDifference: a server whose lineage index
// departs from a rebuild at some size is caught, and the first 256 leaves
// where the digests part are named.
func TestCompareIndexNamesFirstDifference(t *testing.T) {
	base, err := readEvent("../../testdata/events/02-crm-export-read-contacts.json")
	if err != nil {
		t.Fatal(err)
	}
	var src memSource
	for i := range 1100 {
		ev := proto.Clone(base).(*pb.ProvenanceEvent)
		ev.EventId = fmt.Sprintf("evt-%d", i)
		ev.Workflow.StepId = fmt.Sprintf("step-%d", i%7)
		_, leaf, err := event.NewLeaf(ev, time.Date(2026, 11, 27, 0, 0, 0, i, time.UTC), "test")
		if err != nil {
			t.Fatal(err)
		}
		src.leaves = append(src.leaves, leaf)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := lineage.OpenPebbleStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ix, err := lineage.Open(t.Context(), store, src, lineage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}

	srv := &digestServer{good: ix, size: 1100}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterLineageServiceServer(gs, srv)
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	_, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.ParsePolicy(vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Addr: l.Addr().String(), HTTP: "http://127.0.0.1:1"}, p, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	for _, tc := range []struct {
		badFrom uint64
		code    int
		want    string
	}{
		{1 << 62, exitVerified, ""},
		{600, exitFailed, "the first difference is among leaves 512..767"},
		{1100, exitFailed, "the first difference is among leaves 1024..1099"},
		{256, exitFailed, "the first difference is among leaves 0..255"},
	} {
		srv.badFrom = tc.badFrom
		rep := &auditReport{}
		var failure error
		code := compareIndex(t.Context(), c, ix, 1100, time.Second, rep, func(err error) int { failure = err; return exitCode(err) })
		if code != tc.code || tc.want != "" && (failure == nil || !strings.Contains(failure.Error(), tc.want)) {
			t.Errorf("server bad from %d: exit %d (%v), want %d saying %q", tc.badFrom, code, failure, tc.code, tc.want)
		}
	}
}

// TestVerifySubmitter: audit verifies each signature with the key of the
// history rebuilt from the log's key events valid at the event's time, and
// with a --submitter-key naming it; a signature no key verifies fails.
func TestVerifySubmitter(t *testing.T) {
	base, err := readEvent("../../testdata/events/02-crm-export-read-contacts.json")
	if err != nil {
		t.Fatal(err)
	}
	evTime := base.GetEventTime().AsTime()
	newKey := func() (ed25519.PublicKey, ed25519.PrivateKey) {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return pub, priv
	}
	pub1, priv1 := newKey()
	pub2, priv2 := newKey()
	_, other := newKey()
	admin := &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "admin"}
	// The log's key events: k1 registered before the event, rotated to k2
	// an hour after it; k3 revoked an hour before the event.
	pub3, priv3 := newKey()
	keyEvents := []*pb.ProvenanceEvent{
		authorship.KeyRegisterEvent("acme", "k1", pub1, evTime.Add(-24*time.Hour), evTime.Add(-24*time.Hour), admin),
		authorship.KeyRotateEvent("acme", "k1", "k2", pub2, evTime.Add(time.Hour), admin),
		authorship.KeyRegisterEvent("acme", "k3", pub3, evTime.Add(-24*time.Hour), evTime.Add(-24*time.Hour), admin),
		authorship.KeyRevokeEvent("acme", "k3", evTime.Add(-time.Hour), evTime, "leaked", admin),
	}
	keys := authorship.NewKeyHistory()
	for i, ev := range keyEvents {
		if err := keys.ApplyEvent(ev, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	signed := func(keyID string, priv ed25519.PrivateKey, at time.Time) *pb.ProvenanceEvent {
		ev := proto.Clone(base).(*pb.ProvenanceEvent)
		ev.EventTime = timestamppb.New(at)
		if err := authorship.Sign(ev, keyID, priv); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	for _, tc := range []struct {
		name      string
		ev        *pb.ProvenanceEvent
		given     map[string]ed25519.PublicKey
		wantSrc   string
		wantError error
	}{
		{"log key", signed("k1", priv1, evTime), nil, "log", nil},
		{"log key and the same given key", signed("k1", priv1, evTime), map[string]ed25519.PublicKey{"k1": pub1}, "log+submitter-key", nil},
		{"given key disagrees with the log", signed("k1", priv1, evTime), map[string]ed25519.PublicKey{"k1": pub2}, "", authorship.ErrBadSignature},
		{"rotated key after the rotation", signed("k1", priv1, evTime.Add(2*time.Hour)), nil, "", authorship.ErrKeyNotValid},
		{"new key after the rotation", signed("k2", priv2, evTime.Add(2*time.Hour)), nil, "log", nil},
		{"new key before the rotation", signed("k2", priv2, evTime), nil, "", authorship.ErrKeyNotValid},
		{"revoked key before the revocation", signed("k3", priv3, evTime.Add(-2*time.Hour)), nil, "log", nil},
		{"revoked key after the revocation", signed("k3", priv3, evTime), nil, "", authorship.ErrKeyNotValid},
		{"forged", signed("k1", other, evTime), nil, "", authorship.ErrBadSignature},
		{"unknown key", signed("k9", other, evTime), nil, "", authorship.ErrUnknownKey},
		{"key only given", signed("k9", priv1, evTime), map[string]ed25519.PublicKey{"k9": pub1}, "submitter-key", nil},
		{"key only given, wrong", signed("k9", other, evTime), map[string]ed25519.PublicKey{"k9": pub1}, "", authorship.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := verifySubmitter(keys, tc.given, tc.ev)
			if tc.wantError != nil {
				if !errors.Is(err, tc.wantError) {
					t.Fatalf("err = %v, want %v", err, tc.wantError)
				}
				return
			}
			if err != nil || r.Source != tc.wantSrc || r.Status != "verified" {
				t.Fatalf("got %+v, %v; want source %q", r, err, tc.wantSrc)
			}
		})
	}
}
