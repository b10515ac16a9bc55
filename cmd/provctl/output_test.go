package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

const (
	goldenBundle    = "../../client/testdata/bundles/trace.json"
	goldenBundleKey = "../../client/testdata/bundles/log.pub"
)

// TestOutputGolden pins provctl's human and JSON output on fixed inputs:
// the golden receipt and the golden evidence bundle.
func TestOutputGolden(t *testing.T) {
	tampered := filepath.Join(t.TempDir(), "tampered.json")
	b, err := os.ReadFile(goldenBundle)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(tampered, []byte(strings.Replace(string(b), `"EDGE_KIND_INPUT"`, `"EDGE_KIND_OUTPUT"`, 1)), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"verify-receipt.txt", []string{"verify", "receipt", "--log-key", goldenKey, goldenReceipt}, exitVerified},
		{"verify-receipt.json", []string{"verify", "receipt", "-o", "json", "--log-key", goldenKey, goldenReceipt}, exitVerified},
		{"verify-receipt-other-event.txt", []string{"verify", "receipt", "--log-key", goldenKey, "--event", otherEvent, goldenReceipt}, exitFailed},
		{"verify-bundle.txt", []string{"verify", "bundle", "--log-key", goldenBundleKey, goldenBundle}, exitVerified},
		{"verify-bundle.json", []string{"verify", "bundle", "-o", "json", "--log-key", goldenBundleKey, goldenBundle}, exitVerified},
		{"verify-bundle-self.txt", []string{"bundle", "verify", goldenBundle}, exitVerified},
		{"verify-bundle-tampered.txt", []string{"bundle", "verify", "--log-key", goldenBundleKey, tampered}, exitFailed},
		{"verify-bundle-tampered.json", []string{"bundle", "verify", "-o", "json", "--log-key", goldenBundleKey, tampered}, exitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := provctl(t, nil, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errs)
			}
			golden(t, "output/"+tc.name, strings.ReplaceAll(out+errs, tampered, "TAMPERED"))
		})
	}
}

// TestTraceRenderGolden pins the tree and DOT renderings of the golden
// bundle's trace.
func TestTraceRenderGolden(t *testing.T) {
	b, err := os.ReadFile(goldenBundle)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := client.VerifyBundle(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := vb.Entries[vb.Bundle.Leaves[0].Index].GetEvent()
	for _, tc := range []struct {
		name string
		req  *pb.TraceRequest
	}{
		{"trace-event-upstream", &pb.TraceRequest{Start: &pb.TraceRequest_EventId{EventId: ev.GetEventId()}, Direction: pb.Direction_DIRECTION_UPSTREAM}},
		{"trace-asset-both", &pb.TraceRequest{Start: &pb.TraceRequest_Asset{Asset: &pb.AssetRef{Uri: ev.GetInputs()[0].GetUri()}}, Direction: pb.Direction_DIRECTION_BOTH}},
	} {
		var sb strings.Builder
		writeTree(&sb, tc.req, vb.Trace)
		golden(t, "output/"+tc.name+".txt", sb.String())
	}
	var sb strings.Builder
	writeDOT(&sb, vb.Trace)
	golden(t, "output/trace.dot", sb.String())
}
