package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
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

// provctl runs the command in-process with an environment holding only
// vars, and returns its exit code, stdout and stderr.
func provctl(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	return provctlWith(t.Context(), "", vars, args...)
}

// provctlWith is provctl with a context and stdin.
func provctlWith(ctx context.Context, stdin string, vars map[string]string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	e := &env{ctx: ctx, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	code := runEnv(e, args)
	return code, out.String(), errb.String()
}

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
			code, out, errs := provctl(t, nil, append([]string{"verify", "receipt"}, tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errs)
			}
			if !strings.Contains(out+errs, tc.wantOut) {
				t.Errorf("output %q does not contain %q", out+errs, tc.wantOut)
			}
		})
	}
}

// TestParseInterleaved: flags may come before, between and after the
// positional arguments, and "--" ends the flags.
func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
		json bool
	}{
		{[]string{"a", "b"}, []string{"a", "b"}, false},
		{[]string{"-o", "json", "a", "b"}, []string{"a", "b"}, true},
		{[]string{"a", "-o", "json", "b"}, []string{"a", "b"}, true},
		{[]string{"a", "b", "-o=json"}, []string{"a", "b"}, true},
		{[]string{"a", "--", "-o", "json"}, []string{"a", "-o", "json"}, false},
		{[]string{"-", "-o", "json"}, []string{"-"}, true},
	} {
		f := newFlags(&env{stderr: io.Discard}, "x", "", "", "text", "json")
		if _, ok := f.parse(tc.args, 0, -1); !ok {
			t.Errorf("parse(%q) failed", tc.args)
			continue
		}
		if !slices.Equal(f.Args(), tc.want) || f.NArg() != len(tc.want) || f.json() != tc.json {
			t.Errorf("parse(%q): args %q json %v, want %q %v", tc.args, f.Args(), f.json(), tc.want, tc.json)
		}
	}
}
