package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// watermarkServer is a LineageService whose index is at watermark.
type watermarkServer struct {
	pb.UnimplementedLineageServiceServer
	watermark uint64
}

func (s *watermarkServer) GetIndexDigest(context.Context, *pb.GetIndexDigestRequest) (*pb.GetIndexDigestResponse, error) {
	return &pb.GetIndexDigestResponse{Watermark: s.watermark}, nil
}

// TestWhileIndexLags: a lookup that found nothing is asked again while the
// lineage index is behind the log's checkpoint, and once more when it has
// caught up, since the index may have caught up between the first answer
// and the look at its watermark; only then is NotFound the answer.
func TestWhileIndexLags(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	const size = 5
	root := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cp, err := note.Sign(&note.Note{Text: fmt.Sprintf("example.com/log\n%d\n%s\n", size, root)}, signer)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/log/checkpoint" {
			http.NotFound(w, r)
			return
		}
		w.Write(cp)
	}))
	t.Cleanup(hs.Close)

	for _, tc := range []struct {
		name      string
		watermark uint64
		foundAt   int // the call that finds it (1 = the first); 0: never
		wantCalls int
		wantErr   codes.Code
	}{
		{name: "found at once", watermark: size, foundAt: 1, wantCalls: 1, wantErr: codes.OK},
		{name: "index caught up after the first call", watermark: size, foundAt: 2, wantCalls: 2, wantErr: codes.OK},
		{name: "caught up and still not there", watermark: size, foundAt: 0, wantCalls: 2, wantErr: codes.NotFound},
		{name: "index behind, found later", watermark: size - 1, foundAt: 3, wantCalls: 3, wantErr: codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			gs := grpc.NewServer()
			pb.RegisterLineageServiceServer(gs, &watermarkServer{watermark: tc.watermark})
			go gs.Serve(l)
			t.Cleanup(gs.Stop)
			p, err := client.ParsePolicy(vkey, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, err := client.New(client.Config{Addr: l.Addr().String(), HTTP: hs.URL}, p, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })

			calls := 0
			err = whileIndexLags(&env{ctx: t.Context()}, c, 5*time.Second, func() error {
				calls++
				if calls == tc.foundAt {
					return nil
				}
				return status.Error(codes.NotFound, "no such event")
			})
			if status.Code(err) != tc.wantErr || calls != tc.wantCalls {
				t.Errorf("after %d calls: %v; want %d calls and %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
}
