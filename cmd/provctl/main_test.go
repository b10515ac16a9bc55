package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// The golden receipt in testdata/receipts is a real REST Append response
// from provlogd for testdata/events/02-crm-export-read-contacts.json.
const (
	goldenReceipt = "../../testdata/receipts/append-response.json"
	goldenKey     = "../../testdata/receipts/log.pub"
	goldenEvent   = "../../testdata/events/02-crm-export-read-contacts.json"
	otherEvent    = "../../testdata/events/03-crm-export-read-consents.json"
)

func TestVerifyReceipt(t *testing.T) {
	raw, err := os.ReadFile(goldenReceipt)
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(f func(r *pb.Receipt)) string {
		var resp pb.AppendResponse
		if err := protojson.Unmarshal(raw, &resp); err != nil {
			t.Fatal(err)
		}
		f(resp.Receipt)
		b, err := protojson.Marshal(&resp)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "r.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"golden", []string{"--log-key", goldenKey, goldenReceipt}, exitVerified, "verified: event \"n8n:run-7f3a9c:read-contacts\""},
		{"golden with its event", []string{"--log-key", goldenKey, "--event", goldenEvent, goldenReceipt}, exitVerified, "verified"},
		{"another event", []string{"--log-key", goldenKey, "--event", otherEvent, goldenReceipt}, exitFailed, "does not hold this event"},
		{"wrong key", []string{"--log-key", "localhost/provlog+5626b225+ASA4MuvaoML0plh/7sqRSrKpn0NcqkWyTO8WaAMqtYC6", goldenReceipt}, exitFailed, "checkpoint"},
		{"tampered leaf", []string{"--log-key", goldenKey, tamper(func(r *pb.Receipt) { r.Leaf = flip(r.Leaf, len(r.Leaf)-1) })}, exitFailed, "FAILED"},
		{"tampered checkpoint", []string{"--log-key", goldenKey, tamper(func(r *pb.Receipt) { r.Checkpoint = flip(r.Checkpoint, 20) })}, exitFailed, "checkpoint"},
		{"wrong index", []string{"--log-key", goldenKey, tamper(func(r *pb.Receipt) { r.Index = 5 })}, exitFailed, "outside"},
		{"no args", nil, exitUsage, ""},
		{"missing file", []string{"--log-key", goldenKey, "/nonexistent"}, exitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"verify", "receipt"}, tc.args...), strings.NewReader(""), &out, &errb)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout %q does not contain %q", out.String(), tc.wantOut)
			}
		})
	}
}
