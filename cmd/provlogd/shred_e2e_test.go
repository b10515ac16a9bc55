package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/internal/testbin"
	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// provctlBinary builds cmd/provctl once per test binary.
func provctlBinary(t *testing.T) string { return testbin.Build(t, "cmd/provctl") }

// provctl runs the real provctl against d and returns its exit code and
// stdout; stderr goes into the failure messages.
func (d *daemon) provctl(args ...string) (int, []byte, string) {
	d.t.Helper()
	conn := []string{"--addr", d.grpcAddr, "--http", "http://" + d.httpAddr,
		"--token-file", filepath.Join(d.dataDir, "admin.token"), "--log-key", filepath.Join(d.dataDir, "log.pub")}
	all := append(args, conn...)
	if args[0] == "verify" { // offline: the log key alone, before RESPONSE.json
		n := len(args) - 1
		all = append(append(args[:n:n], conn[len(conn)-2:]...), args[n])
	}
	cmd := exec.CommandContext(d.t.Context(), provctlBinary(d.t), all...)
	// No config file or PROVLOG_* setting of the machine applies.
	home := d.t.TempDir()
	cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "PATH=" + os.Getenv("PATH")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		d.t.Fatalf("provctl %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.Bytes(), stderr.String()
}

// TestShredTenantEndToEnd is issue 7's retention test with the real
// binaries: the retention job of provlogd shreds one tenant's sensitive
// values; reads of that tenant say erased (when, under which policy);
// `provctl audit` of the whole log (tiles, leaves, signatures, a rebuilt
// lineage index) still passes; `provctl trace` still traces the shredded
// records; the other tenant's values still reveal to an admin and open
// their commitments; each submitter still verifies its receipt with
// `provctl verify receipt --event`; no value is in clear under the data
// dir.
func TestShredTenantEndToEnd(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	keys := t.TempDir()
	policy := filepath.Join(keys, "policy.json")
	// acme's pii data key stops taking writes after 2s and is shredded at
	// once (retain 0 days); globex has no retention rule.
	if err := os.WriteFile(policy, []byte(`{"data_key_rotation": "2s", "tenants": {"acme": {"classifications": {"pii": {"retain_days": 0, "then": "shred"}}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	provctlBinary(t)
	d := startDaemon(t, dataDir, "--vault-master-key", filepath.Join(keys, "master.key"), "--vault-policy", policy, "--vault-retention-interval", "1s")

	type record struct {
		tenant, eventID, value string
		index                  uint64
		sent                   *pb.ProvenanceEvent
		resp                   *pb.AppendResponse
	}
	var recs []*record
	_, _, samples := loadSamples(t)
	for _, tenant := range []string{"acme", "globex"} {
		for i, sample := range samples[1:3] { // two reads of the CRM export run
			ev := proto.Clone(sample).(*pb.ProvenanceEvent)
			ev.EventId, ev.Tenant = fmt.Sprintf("shred-e2e-%s-%d", tenant, i), tenant
			r := &record{tenant: tenant, eventID: ev.EventId, value: fmt.Sprintf("shred-e2e-%s-SECRET-%d@example.org", strings.ToUpper(tenant), i)}
			ev.Sensitive = []*pb.SensitiveValue{
				{Name: "contact.email", Classification: "pii", Value: r.value},
				{Name: "contact.phone", Classification: "pii", Value: r.value + "-phone"},
			}
			resp, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
			if err != nil {
				t.Fatalf("Append %s: %v", ev.EventId, err)
			}
			r.index, r.sent, r.resp = resp.GetIndex(), ev, resp
			recs = append(recs, r)
		}
	}

	// Wait until the retention job has shredded every acme value.
	deadline := time.Now().Add(25 * time.Second)
	for _, r := range recs {
		if r.tenant != "acme" {
			continue
		}
		for {
			e, err := d.client().GetEntry(d.ctx(), &pb.GetEntryRequest{Index: r.index})
			if err != nil {
				t.Fatal(err)
			}
			if e.GetSensitive()[0].GetStatus() == pb.SensitiveStatus_SENSITIVE_STATUS_SHREDDED {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not shredded after 25s\n%s", r.eventID, d.logs)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// The erasure event is in the log: 4 events + 1 erasure.
	d.waitForSize(int64(len(recs) + 1))

	// Reads: acme's values say erased, globex's reveal and open the leaf.
	for _, r := range recs {
		e, err := d.client().GetEntry(d.ctx(), &pb.GetEntryRequest{Index: r.index})
		if err != nil {
			t.Fatal(err)
		}
		le, err := event.DecodeLeaf(e.GetLeaf())
		if err != nil {
			t.Fatal(err)
		}
		committed := le.GetEvent().GetSensitive()
		if len(e.GetSensitive()) != 2 || len(committed) != 2 {
			t.Fatalf("%s: %d reveals of %d committed values, want 2", r.eventID, len(e.GetSensitive()), len(committed))
		}
		for i, s := range e.GetSensitive() {
			want := r.value
			if i == 1 {
				want += "-phone"
			}
			switch r.tenant {
			case "acme":
				if s.GetStatus() != pb.SensitiveStatus_SENSITIVE_STATUS_SHREDDED || s.GetValue() != "" || len(s.GetSalt()) != 0 ||
					s.GetPolicy() != "acme/pii:shred-after-0d" || s.GetErasedTime() == nil || !strings.HasPrefix(s.GetDisplay(), "[ERASED: pii, shredded at ") {
					t.Errorf("%s %s: %v, want shredded under acme/pii:shred-after-0d, no value", r.eventID, s.GetName(), s)
				}
			case "globex":
				if s.GetStatus() != pb.SensitiveStatus_SENSITIVE_STATUS_REVEALED || s.GetValue() != want ||
					!event.VerifyCommitment(committed[i].GetCommitment(), s.GetSalt(), []byte(s.GetValue())) {
					t.Errorf("%s %s: %v, want %q revealed, opening the leaf's commitment", r.eventID, s.GetName(), s, want)
				}
			}
		}
	}

	// provctl audit of the whole log, erasure event included, passes.
	code, out, stderr := d.provctl("audit", "-o", "json")
	var rep struct {
		Verified bool   `json:"verified"`
		Leaves   uint64 `json:"leaves_checked"`
		TreeSize uint64 `json:"tree_size"`
		Index    string `json:"index_digest"`
		Server   string `json:"server_index_digest"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || code != 0 || !rep.Verified || rep.Leaves != rep.TreeSize || rep.TreeSize < uint64(len(recs)+1) ||
		rep.Index == "" || rep.Index != rep.Server {
		t.Fatalf("provctl audit after the shred: exit %d, %+v (%v)\n%s\n%s", code, rep, err, out, stderr)
	}

	// Lineage of the shredded records still traces, with verified proofs;
	// globex's too.
	for _, r := range recs {
		code, out, stderr := d.provctl("trace", "--tenant", r.tenant, "--event", r.eventID, "--direction", "both", "-o", "json")
		var tr struct {
			Nodes []struct {
				EventID   string `json:"eventId"`
				LeafIndex string `json:"leafIndex"`
				Sensitive []struct {
					Status string `json:"status"`
				} `json:"sensitive"`
			} `json:"nodes"`
			Edges []struct {
				LeafIndex string `json:"leafIndex"`
			} `json:"edges"`
		}
		if err := json.Unmarshal(out, &tr); err != nil || code != 0 {
			t.Fatalf("provctl trace %s: exit %d, %v\n%s\n%s", r.eventID, code, err, out, stderr)
		}
		want := map[string]string{"acme": "SENSITIVE_STATUS_SHREDDED", "globex": "SENSITIVE_STATUS_REVEALED"}[r.tenant]
		at := func(li string) bool { return li == fmt.Sprint(r.index) || li == "" && r.index == 0 } // protojson omits 0
		found, edges := false, 0
		for _, n := range tr.Nodes {
			if n.EventID != r.eventID {
				continue
			}
			found = at(n.LeafIndex) && len(n.Sensitive) == 2 && n.Sensitive[0].Status == want
		}
		for _, e := range tr.Edges {
			if at(e.LeafIndex) {
				edges++
			}
		}
		if !found || edges == 0 {
			t.Errorf("provctl trace %s: want its activity at leaf %d with %s values, and edges citing it (%d)\n%s", r.eventID, r.index, want, edges, out)
		}
		if r.tenant == "acme" && bytes.Contains(out, []byte(r.value)) {
			t.Errorf("provctl trace %s prints the shredded value", r.eventID)
		}
	}
	d.stop()

	// The submitter's receipts, offline: the Append response's openings and
	// the values it sent recompute the leaf's commitments, shredded or not.
	for _, r := range []*record{recs[0], recs[len(recs)-1]} {
		dir := t.TempDir()
		respFile, evFile, badFile := filepath.Join(dir, "response.json"), filepath.Join(dir, "event.json"), filepath.Join(dir, "bad.json")
		b, _ := protojson.Marshal(r.resp)
		os.WriteFile(respFile, b, 0o600)
		b, _ = protojson.Marshal(r.sent)
		os.WriteFile(evFile, b, 0o600)
		bad := proto.Clone(r.sent).(*pb.ProvenanceEvent)
		bad.Sensitive[1].Value += "x"
		b, _ = protojson.Marshal(bad)
		os.WriteFile(badFile, b, 0o600)
		if code, out, stderr := d.provctl("verify", "receipt", "--event", evFile, respFile); code != 0 {
			t.Errorf("provctl verify receipt --event of %s: exit %d\n%s\n%s", r.eventID, code, out, stderr)
		}
		if code, out, stderr := d.provctl("verify", "receipt", "--event", badFile, respFile); code != 1 || !strings.Contains(stderr+string(out), "contact.phone") {
			t.Errorf("provctl verify receipt of %s with another value: exit %d, want 1 naming contact.phone\n%s\n%s", r.eventID, code, out, stderr)
		}
	}

	// Nothing under the data dir holds a value in clear: tiles, index,
	// vault, checkpoints.
	files := 0
	err := filepath.WalkDir(dataDir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, r := range recs {
			if bytes.Contains(b, []byte(r.value)) {
				t.Errorf("%s holds %q in clear", p, r.value)
			}
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("scanning %s: %v, %d files", dataDir, err, files)
	}
}
