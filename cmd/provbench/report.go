package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the outcome of a run; its JSON form is provbench's --json output.
type report struct {
	// SchemaVersion is 1 for this shape; a change that renames or drops a
	// field, or changes a meaning, increments it.
	SchemaVersion int       `json:"schema_version"`
	Started       time.Time `json:"started"`
	CPUs          int       `json:"cpus"`
	GoVersion     string    `json:"go_version"`
	// Tessera is the tessera module version the baseline ran.
	Tessera string `json:"tessera_version"`
	// LeafBytes is the mean size of the leaves appended.
	LeafBytes   int    `json:"leaf_bytes"`
	Concurrency int    `json:"concurrency"`
	Wait        string `json:"wait"`
	// EventKind is -events: plain, signed or sensitive.
	EventKind string `json:"event_kind"`
	// Frontends are the provlogd gRPC addresses driven (none with
	// -only-baseline).
	Frontends []string `json:"frontends"`
	// Warmup and Duration are -warmup and -duration in seconds; Count is
	// -count (0: none).
	Warmup      float64      `json:"warmup_seconds"`
	Duration    float64      `json:"duration_seconds"`
	Count       uint64       `json:"count"`
	BaselineDir string       `json:"baseline_dir,omitempty"`
	Settings    settingsJSON `json:"baseline_tessera"`
	Results     []result     `json:"results"`
	// Ratios compare provlog with the baseline, mode by mode.
	Ratios []ratio `json:"ratios,omitempty"`
}

type settingsJSON struct {
	Storage            string `json:"storage"`
	CheckpointInterval string `json:"checkpoint_interval"`
	BatchMaxSize       uint   `json:"batch_max_size"`
	BatchMaxAge        string `json:"batch_max_age"`
	// CPUPerEvent is -baseline-cpu-per-event: absent for bare tessera.
	CPUPerEvent string `json:"cpu_per_event,omitempty"`
}

// result is one phase: one target driven in one mode.
type result struct {
	Target string `json:"target"` // "provlog" or "tessera"
	Mode   string `json:"mode"`   // "unary" or "batch"
	// EventsPerCall is 1 for unary, --batch-size for batch.
	EventsPerCall   int     `json:"events_per_call"`
	Events          uint64  `json:"events"`
	Duplicates      uint64  `json:"duplicates"`
	Retries         uint64  `json:"retries"`
	Abandoned       uint64  `json:"abandoned"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
	// Latency is per call, until the call returned (sequenced or
	// published, as Wait says), in milliseconds.
	Latency latency `json:"latency_ms"`
	// ToCheckpoint (with -checkpoint-poll) is per call too: from its start
	// to the first published checkpoint seen covering all its events
	// (witnessed, when provlogd has a witness policy), in milliseconds,
	// late by at most one poll interval.
	ToCheckpoint *latency `json:"to_checkpoint_ms,omitempty"`
	// WarmupEvents were acknowledged during the warm-up and are counted
	// nowhere else.
	WarmupEvents uint64 `json:"warmup_events"`
	// Streams is the number of AppendStreams used (stream mode only;
	// more than -streams x frontends when some broke and were reopened).
	Streams int `json:"streams,omitempty"`
	// CheckpointSignatures is the fewest and most signatures seen on the
	// checkpoints published appends returned (provlog, -wait published
	// only): 1 is the log's own, each more a witness cosignature.
	CheckpointSignatures *sigJSON `json:"checkpoint_signatures,omitempty"`
	// IndexCatchUpSeconds (provlog, with -index-wait) is how long after
	// the phase the lineage index took to cover every event appended.
	IndexCatchUpSeconds *float64 `json:"index_catch_up_seconds,omitempty"`
	// SustainedEventsPerSecond is Events over Seconds plus
	// IndexCatchUpSeconds: the rate the log keeps up with its index
	// included, as under load that lasts.
	SustainedEventsPerSecond float64 `json:"sustained_events_per_second,omitempty"`
}

// indexCaughtUp records that the lineage index covered the phase's events
// d after it ended.
func (r *result) indexCaughtUp(d time.Duration) {
	s := round3(d.Seconds())
	r.IndexCatchUpSeconds = &s
	if t := r.Seconds + s; t > 0 {
		// Seconds is rounded: with no catch-up to speak of, the quotient
		// could come out a hair above the phase's own rate.
		r.SustainedEventsPerSecond = min(round3(float64(r.Events)/t), r.EventsPerSecond)
	}
}

type sigJSON struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

type latency struct {
	Calls uint64  `json:"calls"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

type ratio struct {
	Mode string `json:"mode"`
	// ProvlogOverTessera is provlog's events/s divided by the baseline's.
	ProvlogOverTessera float64 `json:"provlog_over_tessera"`
	// SustainedOverTessera is provlog's sustained events/s (its index
	// caught up) divided by the baseline's; absent without -index-wait.
	SustainedOverTessera float64 `json:"sustained_over_tessera,omitempty"`
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func latencyOf(h *histogram) latency {
	return latency{
		Calls: h.count(),
		Mean:  ms(h.mean()),
		P50:   ms(h.percentile(50)),
		P90:   ms(h.percentile(90)),
		P99:   ms(h.percentile(99)),
		Max:   ms(h.maximum()),
	}
}

func newResult(target, mode string, perCall int, st phaseStats) result {
	r := result{
		Target:        target,
		Mode:          mode,
		EventsPerCall: perCall,
		Events:        st.events,
		Duplicates:    st.duplicates,
		Retries:       st.retries,
		Abandoned:     st.abandoned,
		Seconds:       round3(st.elapsed.Seconds()),
		WarmupEvents:  st.warmupEvents,
		Latency:       latencyOf(st.lat),
	}
	if st.sigs.seen {
		r.CheckpointSignatures = &sigJSON{Min: st.sigs.min, Max: st.sigs.max}
	}
	if r.Seconds > 0 {
		r.EventsPerSecond = round3(float64(r.Events) / st.elapsed.Seconds())
	}
	return r
}

func newReport(started time.Time) *report {
	r := &report{
		SchemaVersion: 1,
		Started:       started.UTC().Truncate(time.Second),
		Frontends:     []string{},
		CPUs:          runtime.NumCPU(),
		GoVersion:     runtime.Version(),
		Tessera:       "unknown",
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/transparency-dev/tessera" {
				r.Tessera = d.Version
			}
		}
	}
	return r
}

// compare fills in Ratios for every mode with both a provlog and a
// baseline result.
func (r *report) compare() {
	seen := map[string]bool{}
	for _, a := range r.Results {
		if a.Target != "provlog" || seen[a.Mode] {
			continue
		}
		for _, b := range r.Results {
			if b.Target == "tessera" && b.Mode == a.Mode && b.EventsPerSecond > 0 {
				r.Ratios = append(r.Ratios, ratio{
					Mode:                 a.Mode,
					ProvlogOverTessera:   round3(a.EventsPerSecond / b.EventsPerSecond),
					SustainedOverTessera: round3(a.SustainedEventsPerSecond / b.EventsPerSecond),
				})
				seen[a.Mode] = true
				break
			}
		}
	}
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func (r *report) writeTable(w io.Writer) error {
	fmt.Fprintf(w, "provbench %s  cpus=%d  %s  tessera %s\n", r.Started.Format(time.RFC3339), r.CPUs, r.GoVersion, r.Tessera)
	fmt.Fprintf(w, "%s events, leaf ~%d B  concurrency %d  latency per call until %s\n", r.EventKind, r.LeafBytes, r.Concurrency, r.Wait)
	if len(r.Frontends) > 0 {
		fmt.Fprintf(w, "frontends: %s\n", strings.Join(r.Frontends, ", "))
	}
	if r.Warmup > 0 {
		fmt.Fprintf(w, "each phase: %gs warm-up, not counted\n", r.Warmup)
	}
	if r.BaselineDir != "" {
		fmt.Fprintf(w, "baseline: tessera %s under %s, checkpoint every %s, batches of %d or %s",
			r.Settings.Storage, r.BaselineDir, r.Settings.CheckpointInterval, r.Settings.BatchMaxSize, r.Settings.BatchMaxAge)
		if r.Settings.CPUPerEvent != "" {
			fmt.Fprintf(w, ", plus %s of CPU per event (-baseline-cpu-per-event: a model, not bare tessera)", r.Settings.CPUPerEvent)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tmode\tevents/call\tevents\tseconds\tevents/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tretries\tdup\t")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t\n",
			x.Target, x.Mode, x.EventsPerCall, x.Events, x.Seconds, x.EventsPerSecond,
			x.Latency.P50, x.Latency.P90, x.Latency.P99, x.Latency.Max, x.Retries, x.Duplicates)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range r.Results {
		if s := x.CheckpointSignatures; s != nil {
			fmt.Fprintf(w, "note: %s %s checkpoints carried %d to %d signatures (the log's and %d to %d cosignatures)\n", x.Target, x.Mode, s.Min, s.Max, s.Min-1, s.Max-1)
		}
		if c := x.ToCheckpoint; c != nil {
			fmt.Fprintf(w, "note: %s %s: time to a published checkpoint covering the call (p50/p90/p99/max ms): %.0f / %.0f / %.0f / %.0f\n", x.Target, x.Mode, c.P50, c.P90, c.P99, c.Max)
		}
		if c := x.IndexCatchUpSeconds; c != nil {
			fmt.Fprintf(w, "note: %s %s: the lineage index covered every event %.1fs after the phase: %.0f events/s sustained\n", x.Target, x.Mode, *c, x.SustainedEventsPerSecond)
		}
		if x.Abandoned > 0 {
			fmt.Fprintf(w, "note: %s %s gave up on %d events still meeting pushback when the phase ended\n", x.Target, x.Mode, x.Abandoned)
		}
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w)
		for _, x := range r.Ratios {
			fmt.Fprintf(w, "provlog/tessera %s: %.2f\n", x.Mode, x.ProvlogOverTessera)
			if x.SustainedOverTessera > 0 {
				fmt.Fprintf(w, "provlog/tessera %s sustained: %.2f\n", x.Mode, x.SustainedOverTessera)
			}
		}
	}
	return nil
}
