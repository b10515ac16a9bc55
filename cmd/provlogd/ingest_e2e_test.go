package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/log/ingest"
)

// TestIngestEndToEnd runs provlogd with --hooks-config and sends it an
// OpenLineage event and a signed n8n webhook over HTTP; a config readable by
// others keeps it from starting.
func TestIngestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts provlogd")
	}
	repo := filepath.Join("..", "..")
	cfgDir := t.TempDir()
	m, err := os.ReadFile(filepath.Join(repo, "testdata", "hooks", "n8n.mapping.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "n8n.mapping.json"), m, 0o644); err != nil {
		t.Fatal(err)
	}
	const secret = "e2e-n8n-secret-0123456789abcdef0123456789"
	cfgPath := filepath.Join(cfgDir, "hooks.json")
	cfg := fmt.Sprintf(`{"sources": {"n8n": {"tenant": "acme", "secret": %q, "mapping": "n8n.mapping.json"}}}`, secret)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(provlogdBinary(t), "--data-dir", t.TempDir(), "--grpc-addr", freePort(t), "--http-addr", freePort(t), "--hooks-config", cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "chmod 600") {
		t.Fatalf("provlogd with a 0644 hooks config: %v\n%s", err, out)
	}
	if strings.Contains(string(out), secret) {
		t.Fatalf("provlogd logged the webhook secret:\n%s", out)
	}
	if err := os.Chmod(cfgPath, 0o600); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, t.TempDir(), "--hooks-config", cfgPath)
	ol, err := os.ReadFile(filepath.Join(repo, "testdata", "openlineage", "spark-03-complete.json"))
	if err != nil {
		t.Fatal(err)
	}
	if code, b := d.rest(http.MethodPost, "/api/v1/lineage?tenant=acme", ol); code != http.StatusOK || !bytes.Contains(b, []byte(`"index":0`)) {
		t.Fatalf("OpenLineage event: %d %s", code, b)
	}

	body, err := os.ReadFile(filepath.Join(repo, "testdata", "hooks", "n8n-execution.json"))
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := ingest.LoadHooksConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+d.httpAddr+"/v1/hooks/n8n", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Provlog-Timestamp", ts)
	req.Header.Set("X-Provlog-Nonce", "e2e-1")
	req.Header.Set("X-Provlog-Signature", hooks.Sources["n8n"].Sign(ts, "e2e-1", body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("n8n webhook: %d", resp.StatusCode)
	}
	d.waitForSize(2)
	if code, b := d.authGet("/v1/ingest/drift"); code != http.StatusOK || !bytes.Contains(b, []byte("spark_properties")) {
		t.Errorf("drift report: %d %s", code, b)
	}
	d.stop()
	if strings.Contains(d.logs.String(), secret) {
		t.Errorf("provlogd logged the webhook secret")
	}
}
