package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/log/ledger"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"go.yaml.in/yaml/v3"
)

// TestAlertMetricsExported starts a witnessed provlogd and its witness,
// appends events (waiting for publication), scrapes both /metrics and
// requires every metric name deploy/prometheus's alert rules use to be
// there: provlog_* and process_* from provlogd, provwitness_* from
// provwitness. An alert on a metric nobody exports never fires. It also
// checks the progress gauges against the published checkpoint.
func TestAlertMetricsExported(t *testing.T) {
	const origin = "metrics-e2e.example/log"
	wbin := provwitnessBinary(t)
	dataDir := t.TempDir()
	if _, _, err := ledger.LoadOrCreateKeys(dataDir, origin, defaultOrigin); err != nil {
		t.Fatal(err)
	}
	logPub, err := os.ReadFile(filepath.Join(dataDir, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	w := startWitness(t, wbin, "w1", origin+" "+strings.TrimSpace(string(logPub)))
	policy := filepath.Join(t.TempDir(), "witnesses.policy")
	if err := os.WriteFile(policy, fmt.Appendf(nil, "witness w1 %s http://%s/\nquorum w1\n", w.vkey, w.addr), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dataDir, "--witness-policy", policy, "--vault-master-key", filepath.Join(t.TempDir(), "master.key"))

	_, _, samples := loadSamples(t)
	for i, ev := range samples[:5] {
		r, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if r.GetReceipt() == nil {
			t.Fatalf("append %d: no receipt", i)
		}
	}
	size := d.latestCheckpoint().size

	// The progress gauges are polled every second.
	var logd map[string]map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, b := d.authGet("/metrics")
		if code != http.StatusOK {
			t.Fatalf("provlogd /metrics: %d %s", code, b)
		}
		logd = scrape(t, b)
		if logd["provlog_checkpoint_size"][""] >= float64(size) || time.Now().After(deadline) {
			break
		}
	}
	code, b := w.get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("provwitness /metrics: %d %s", code, b)
	}
	wit := scrape(t, b)

	for _, name := range alertRuleMetrics(t) {
		var exported map[string]map[string]float64
		switch {
		case name == "up": // made by Prometheus for each target
			continue
		case strings.HasPrefix(name, "provwitness_"):
			exported = wit
		default:
			exported = logd
		}
		if _, ok := exported[name]; !ok {
			t.Errorf("alert rules use %s, which is not exported", name)
		}
	}

	// Appends of other tests' kinds may go on (none here), so the sizes
	// only need to be in order and to cover what was published.
	seq, integ, pub := logd["provlog_sequenced_size"][""], logd["provlog_integrated_size"][""], logd["provlog_checkpoint_size"][""]
	if pub < float64(size) || integ < pub || seq < integ {
		t.Errorf("sequenced %v >= integrated %v >= checkpoint %v >= %d does not hold", seq, integ, pub, size)
	}
	if lag := logd["provlog_integration_lag_entries"][""]; lag != seq-integ {
		t.Errorf("provlog_integration_lag_entries = %v, want %v", lag, seq-integ)
	}
	if age := logd["provlog_checkpoint_age_seconds"][""]; age < 0 || age > 30 {
		t.Errorf("provlog_checkpoint_age_seconds = %v, want a few seconds", age)
	}
	// The embedded stores' memory outside the Go heap: memtables are
	// allocated when a store opens, so both are above zero.
	for _, store := range []string{"idempotency", "lineage", "vault"} {
		labels := `{kind="memtables",store="` + store + `"}`
		if v, ok := logd["provlog_pebble_memory_bytes"][labels]; !ok || v <= 0 {
			t.Errorf("provlog_pebble_memory_bytes%s = %v (exported: %v), want > 0", labels, v, ok)
		}
	}
	d.stop()
}

// scrape parses the Prometheus text format into name -> labels -> value.
// Histogram and summary series are filed under their family's name too.
func scrape(t *testing.T, b []byte) map[string]map[string]float64 {
	t.Helper()
	line := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)`)
	out := map[string]map[string]float64{}
	var family string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			family = f[2]
			if out[family] == nil {
				out[family] = map[string]float64{}
			}
			continue
		}
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("bad sample %q: %v", sc.Text(), err)
		}
		for _, n := range []string{m[1], family} {
			if out[n] == nil {
				out[n] = map[string]float64{}
			}
			out[n][m[2]] += v
		}
	}
	return out
}

// alertRuleMetrics is every metric name the alert rules' expressions use:
// identifiers left once label matchers, strings, ranges and grouping
// clauses are removed, minus PromQL's own words.
func alertRuleMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/prometheus/provlog-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	promQL := map[string]bool{
		"sum": true, "max": true, "min": true, "count": true, "avg": true, "by": true, "on": true, "and": true, "or": true,
		"unless": true, "bool": true, "rate": true, "increase": true, "changes": true, "time": true, "ignoring": true,
		"histogram_quantile": true, "offset": true, "group_left": true, "le": true, "clamp_min": true, "max_over_time": true,
	}
	strip := regexp.MustCompile(`\{[^}]*\}|"[^"]*"|\[[^\]]*\]|\boffset\s+\w+|\b(by|on|ignoring)\s*\([^)]*\)`)
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	var names []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			for _, w := range ident.FindAllString(strip.ReplaceAllString(r.Expr, " "), -1) {
				if !promQL[w] && !slices.Contains(names, w) {
					names = append(names, w)
				}
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in the alert rules: %v", len(names), names)
	}
	return names
}

// TestAWSProgressMetrics checks the progress gauges on the aws storage,
// where sequenced and integrated sizes come from tessera's tables in the
// shared database: after appends, sequenced >= integrated >= published >=
// what was appended, and the lag is their difference.
func TestAWSProgressMetrics(t *testing.T) {
	t.Parallel()
	d := newAWS(t).start(t, t.TempDir())
	_, _, samples := loadSamples(t)
	var last uint64
	for _, ev := range samples[:8] {
		r, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, r.GetIndex())
	}
	var m map[string]map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, b := d.authGet("/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d %s", code, b)
		}
		m = scrape(t, b)
		if m["provlog_checkpoint_size"][""] > float64(last) || time.Now().After(deadline) {
			break
		}
	}
	seq, integ, pub := m["provlog_sequenced_size"][""], m["provlog_integrated_size"][""], m["provlog_checkpoint_size"][""]
	t.Logf("sequenced %v, integrated %v, published %v, lag %v, checkpoint age %vs", seq, integ, pub,
		m["provlog_integration_lag_entries"][""], m["provlog_checkpoint_age_seconds"][""])
	if pub <= float64(last) || integ < pub || seq < integ {
		t.Errorf("sequenced %v >= integrated %v >= checkpoint %v > %d does not hold", seq, integ, pub, last)
	}
	if lag := m["provlog_integration_lag_entries"][""]; lag != seq-integ {
		t.Errorf("provlog_integration_lag_entries = %v, want %v", lag, seq-integ)
	}
	d.stop()
}
