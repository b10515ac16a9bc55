package main

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/vault"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
)

// TestVaultEndToEnd runs the real provlogd with a vault: sensitive values
// are revealed to the admin with a verifiable opening, never written in
// clear under the data dir, shredded by the retention job (which logs it);
// a wrong master key stops provlogd at startup; a master key rotation keeps
// every value readable.
func TestVaultEndToEnd(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	keys := t.TempDir()
	key := filepath.Join(keys, "master.key") // provlogd creates it
	policy := filepath.Join(keys, "policy.json")
	os.WriteFile(policy, []byte(`{"data_key_rotation": "2s", "tenants": {"acme": {"classifications": {"pii": {"retain_days": 0, "then": "shred"}}}}}`), 0o600)
	d := startDaemon(t, dataDir, "--vault-master-key", key, "--vault-policy", policy, "--vault-retention-interval", "1s")

	const acmeValue, globexValue = "e2e-ACME-secret-4711@example.com", "e2e-GLOBEX-secret-0815@example.net"
	_, _, samples := loadSamples(t)
	var idx = map[string]uint64{}
	for _, tenant := range []string{"acme", "globex"} {
		ev := samples[1]
		ev.EventId, ev.Tenant = "vault-e2e-"+tenant, tenant
		v := acmeValue
		if tenant == "globex" {
			v = globexValue
		}
		ev.Sensitive = []*pb.SensitiveValue{{Name: "contact.email", Classification: "pii", Value: v}}
		r, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
		if err != nil {
			t.Fatalf("Append %s: %v", tenant, err)
		}
		rc := r.GetReceipt()
		cp := openCheckpoint(t, d.verifier(), rc.GetCheckpoint())
		if err := tlog.CheckRecord(hashes(t, rc.GetInclusionProof()), cp.size, cp.root, int64(rc.GetIndex()), tlog.RecordHash(rc.GetLeaf())); err != nil {
			t.Fatalf("receipt does not prove inclusion: %v", err)
		}
		if bytes.Contains(r.GetReceipt().GetLeaf(), []byte(v)) {
			t.Fatal("the leaf holds the value")
		}
		idx[tenant] = r.GetIndex()
	}
	reveal := func(d *daemon, tenant, want string) {
		t.Helper()
		e, err := d.client().GetEntry(d.ctx(), &pb.GetEntryRequest{Index: idx[tenant]})
		if err != nil {
			t.Fatal(err)
		}
		le, err := event.DecodeLeaf(e.GetLeaf())
		if err != nil {
			t.Fatal(err)
		}
		r := e.GetSensitive()[0]
		if r.GetStatus() != pb.SensitiveStatus_SENSITIVE_STATUS_REVEALED || r.GetValue() != want ||
			!event.VerifyCommitment(le.GetEvent().GetSensitive()[0].GetCommitment(), r.GetSalt(), []byte(r.GetValue())) {
			t.Fatalf("%s: %v, want %q opening the leaf's commitment", tenant, r, want)
		}
	}
	reveal(d, "globex", globexValue)

	// acme's pii key retires after 2s and is shredded at once (retain 0).
	deadline := time.Now().Add(20 * time.Second)
	for {
		e, err := d.client().GetEntry(d.ctx(), &pb.GetEntryRequest{Index: idx["acme"]})
		if err != nil {
			t.Fatal(err)
		}
		if r := e.GetSensitive()[0]; r.GetStatus() == pb.SensitiveStatus_SENSITIVE_STATUS_SHREDDED {
			if r.GetPolicy() != "acme/pii:shred-after-0d" || r.GetErasedTime() == nil {
				t.Errorf("shredded value: %v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme's value not shredded after 20s\n%s", d.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cp := d.waitForSize(3)
	e, err := d.client().GetEntry(d.ctx(), &pb.GetEntryRequest{Index: uint64(cp.size - 1)})
	if err != nil || e.GetEntry().GetEvent().GetEventId() != "vault-erasure:acme/pii/1" {
		t.Fatalf("last leaf: %v, %v; want the erasure event", e.GetEntry(), err)
	}
	reveal(d, "globex", globexValue)
	d.stop()

	filepath.WalkDir(dataDir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, v := range []string{acmeValue, globexValue} {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds %q in clear", p, v)
			}
		}
		return nil
	})

	// A wrong master key: provlogd refuses to start, saying why.
	wrong := filepath.Join(keys, "wrong.key")
	if err := vault.CreateMasterKeyFile(wrong); err != nil {
		t.Fatal(err)
	}
	failStart(t, dataDir, "wrong master key", "--vault-master-key", wrong)

	// Rotation: re-wrap under a new key at startup, then run with it.
	next := filepath.Join(keys, "next.key")
	d = startDaemon(t, dataDir, "--vault-master-key", key, "--vault-new-master-key", next)
	reveal(d, "globex", globexValue)
	d.stop()
	d = startDaemon(t, dataDir, "--vault-master-key", next)
	reveal(d, "globex", globexValue)
	d.stop()
	failStart(t, dataDir, "wrong master key", "--vault-master-key", key)
}

// failStart runs provlogd and requires it to exit non-zero at startup,
// logging want.
func failStart(t *testing.T, dataDir, want string, args ...string) {
	t.Helper()
	cmd := exec.Command(provlogdBinary(t), append([]string{"--data-dir", dataDir, "--grpc-addr", freePort(t), "--http-addr", freePort(t)}, args...)...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("provlogd %v: %v, want a failure saying %q:\n%s", args, err, want, out)
	}
}
