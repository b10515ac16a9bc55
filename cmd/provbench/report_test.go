package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.json")

// goldenReport is a report with every field set, optional ones included.
func goldenReport() *report {
	r := &report{
		SchemaVersion: 1,
		Started:       time.Date(2026, 11, 27, 9, 18, 16, 0, time.UTC),
		CPUs:          2,
		GoVersion:     "go1.26.8",
		Tessera:       "v1.0.4",
		LeafBytes:     1028,
		Concurrency:   64,
		Wait:          "published",
		EventKind:     kindSigned,
		Frontends:     []string{"127.0.0.1:8090", "127.0.0.1:8091"},
		Warmup:        2,
		Duration:      10,
		Count:         0,
		BaselineDir:   "/tmp/pbtest",
		Settings:      settingsJSON{Storage: "posix", CheckpointInterval: "1s", BatchMaxSize: 256, BatchMaxAge: "100ms", CPUPerEvent: "20µs"},
	}
	lat := latency{Calls: 1000, Mean: 120.5, P50: 110.25, P90: 180, P99: 240.125, Max: 310}
	r.Results = []result{
		{Target: "provlog", Mode: "stream", EventsPerCall: 1, Events: 8000, Duplicates: 1, Retries: 2, Abandoned: 0, Seconds: 10.002, EventsPerSecond: 799.84,
			Latency: lat, WarmupEvents: 1500, Streams: 2, CheckpointSignatures: &sigJSON{Min: 2, Max: 3}},
		{Target: "tessera", Mode: "stream", EventsPerCall: 1, Events: 10000, Seconds: 10.001, EventsPerSecond: 999.9, Latency: lat, WarmupEvents: 2000},
	}
	r.Results[0].indexCaughtUp(2500 * time.Millisecond)
	cp := latency{Calls: 1000, Mean: 115.5, P50: 105.25, P90: 170, P99: 230.125, Max: 300}
	r.Results[0].ToCheckpoint = &cp
	r.compare()
	return r
}

// TestReportGolden pins the -json output: a change to it must be made on
// purpose (go test -run ReportGolden -update) and show in review.
func TestReportGolden(t *testing.T) {
	var got bytes.Buffer
	if err := goldenReport().writeJSON(&got); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "report.golden.json")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("-json output differs from %s (-want +got); if on purpose, rerun with -update and bump schema_version when a field is renamed, dropped or changes meaning:\n%s", path, diff)
	}
	// And it reads back into the same report.
	var back report
	if err := json.Unmarshal(got.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*goldenReport(), back, cmp.AllowUnexported(report{})); diff != "" {
		t.Errorf("report does not survive a JSON round trip (-want +got):\n%s", diff)
	}
}

// jsonPaths lists the paths of every value in v: object keys joined by
// dots, "[]" for array elements.
func jsonPaths(prefix string, v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out[p] = true
			jsonPaths(p, e, out)
		}
	case []any:
		for _, e := range x {
			jsonPaths(prefix+"[]", e, out)
		}
	}
}

// TestREADMEDocumentsJSON: README.md's schema table lists exactly the
// fields of the -json output (all of them set in the golden report).
func TestREADMEDocumentsJSON(t *testing.T) {
	var got bytes.Buffer
	if err := goldenReport().writeJSON(&got); err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(got.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	jsonPaths("", v, fields)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## JSON output")
	if !ok {
		t.Fatal(`README.md has no "## JSON output" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_.\\[\\]0-9]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	var missing, stale []string
	for f := range fields {
		if !documented[f] {
			missing = append(missing, f)
		}
	}
	for f := range documented {
		if !fields[f] {
			stale = append(stale, f)
		}
	}
	sort.Strings(missing)
	slices.Sort(stale)
	if len(missing) > 0 {
		t.Errorf("README.md's JSON table lacks %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("README.md's JSON table lists fields the output does not have: %v", stale)
	}
}

// TestSustainedNeverAboveRate: Seconds is rounded to the millisecond, so
// with no catch-up Events/Seconds can exceed the phase's exact rate.
func TestSustainedNeverAboveRate(t *testing.T) {
	r := result{Events: 13658, Seconds: 999.8, EventsPerSecond: 13.66}
	r.indexCaughtUp(0)
	if r.SustainedEventsPerSecond > r.EventsPerSecond {
		t.Errorf("sustained %v events/s above the phase's %v", r.SustainedEventsPerSecond, r.EventsPerSecond)
	}
}
