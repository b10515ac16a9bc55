// Command schedtrace reads a Go execution trace (runtime/trace, or
// /debug/pprof/trace) and tells how the goroutines that run a given
// function spent their time: running, runnable (ready, waiting for the
// scheduler to give them a P), in system calls, or waiting; how long their
// runnable waits were; and which goroutines, named by the function they
// were started in, were running meanwhile.
//
//	go run ./internal/schedtrace [-func substring] [-top n] trace.out
//
// By default it follows tessera's sequencing goroutine (the queue worker
// that writes each batch). scripts/profile.sh uses it to compare that
// goroutine inside provlogd with the same goroutine in bare tessera
// (BENCHMARKS.md, "Why provlogd sequences slower than bare tessera").
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/exp/trace"
)

// defaultFunc is tessera's queue worker: the goroutine that hands each
// batch to the storage driver (on posix: writes bundles and tiles, fsyncs).
const defaultFunc = "tessera/storage/internal.NewQueue.func1"

func main() {
	fn := flag.String("func", defaultFunc, "follow the goroutines whose stack, at any state change, has a function containing this")
	top := flag.Int("top", 12, "how many of the goroutines running during the followed ones' runnable waits to list")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: schedtrace [-func substring] [-top n] trace.out\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedtrace:", err)
		os.Exit(1)
	}
	defer f.Close()
	rep, err := analyze(f, *fn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedtrace:", err)
		os.Exit(1)
	}
	rep.print(os.Stdout, *top)
}

// span is a time interval of the trace, in nanoseconds.
type span struct{ from, to trace.Time }

// followed is one goroutine that ran the function asked for.
type followed struct {
	id     trace.GoID
	in     map[trace.GoState]trace.Time // time spent in each state
	ready  []span                       // its runnable waits
	blocks int                          // Running -> Waiting transitions
}

type report struct {
	fn       string
	span     trace.Time // first to last event of the trace
	followed []*followed
	// during is, per goroutine root function, how long goroutines started
	// in it ran while a followed goroutine was runnable.
	during map[string]trace.Time
	// ran is, per root function, how long its goroutines ran in all.
	ran map[string]trace.Time
}

// analyze reads a whole trace and follows the goroutines running fn.
func analyze(r io.Reader, fn string) (*report, error) {
	tr, err := trace.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("reading trace: %w", err)
	}
	type gstate struct {
		state trace.GoState
		since trace.Time
		root  string
	}
	gs := map[trace.GoID]*gstate{}
	fol := map[trace.GoID]*followed{}
	type run struct {
		g    trace.GoID
		span span
	}
	var runs []run
	var first, last trace.Time
	for {
		ev, err := tr.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading trace: %w", err)
		}
		now := ev.Time()
		if first == 0 {
			first = now
		}
		last = now
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		from, to := st.Goroutine()
		g := gs[id]
		if g == nil {
			g = &gstate{state: from, since: now}
			gs[id] = g
		}
		if root := rootFunc(st.Stack); root != "" {
			g.root = root
		}
		if _, ok := fol[id]; !ok && hasFunc(st.Stack, fn) {
			fol[id] = &followed{id: id, in: map[trace.GoState]trace.Time{}}
		}
		d := now - g.since
		if f := fol[id]; f != nil {
			f.in[from] += d
			if from == trace.GoRunnable {
				f.ready = append(f.ready, span{g.since, now})
			}
			if from == trace.GoRunning && to == trace.GoWaiting {
				f.blocks++
			}
		}
		if from == trace.GoRunning {
			runs = append(runs, run{id, span{g.since, now}})
		}
		g.state, g.since = to, now
	}
	if len(fol) == 0 {
		return nil, fmt.Errorf("no goroutine ran a function containing %q", fn)
	}
	rep := &report{fn: fn, span: last - first, during: map[string]trace.Time{}, ran: map[string]trace.Time{}}
	for id, g := range gs { // close what was still open at the end
		if f := fol[id]; f != nil {
			f.in[g.state] += last - g.since
			if g.state == trace.GoRunnable {
				f.ready = append(f.ready, span{g.since, last})
			}
		}
		if g.state == trace.GoRunning {
			runs = append(runs, run{id, span{g.since, last}})
		}
	}
	var ready []span
	for _, f := range fol {
		rep.followed = append(rep.followed, f)
		ready = append(ready, f.ready...)
	}
	slices.SortFunc(rep.followed, func(a, b *followed) int { return cmp.Compare(a.id, b.id) })
	w := newWaits(ready)
	for _, r := range runs {
		if fol[r.g] != nil {
			continue
		}
		root := gs[r.g].root
		if root == "" {
			root = "(unknown)"
		}
		rep.ran[root] += r.span.to - r.span.from
		rep.during[root] += w.overlap(r.span)
	}
	return rep, nil
}

// waits is the runnable spans of the followed goroutines, sorted by start,
// with the running maximum of their ends (they overlap when several
// goroutines are followed).
type waits struct {
	spans  []span
	maxEnd []trace.Time
}

func newWaits(spans []span) *waits {
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	w := &waits{spans: spans, maxEnd: make([]trace.Time, len(spans))}
	var m trace.Time
	for i, s := range spans {
		m = max(m, s.to)
		w.maxEnd[i] = m
	}
	return w
}

// overlap is how much of s falls in the waits, counting each followed
// goroutine kept waiting.
func (w *waits) overlap(s span) trace.Time {
	// Every span before i ended by s.from.
	i, _ := slices.BinarySearchFunc(w.maxEnd, s.from, func(e, at trace.Time) int {
		if e > at {
			return 1
		}
		return -1
	})
	var t trace.Time
	for ; i < len(w.spans) && w.spans[i].from < s.to; i++ {
		if from, to := max(s.from, w.spans[i].from), min(s.to, w.spans[i].to); to > from {
			t += to - from
		}
	}
	return t
}

// rootFunc is the outermost frame of a stack that is not the runtime's own
// plumbing: the function a goroutine was started in.
func rootFunc(s trace.Stack) string {
	var root string
	for fr := range s.Frames() {
		if fr.Func == "runtime.goexit" {
			continue
		}
		root = fr.Func
	}
	return root
}

func hasFunc(s trace.Stack, fn string) bool {
	for fr := range s.Frames() {
		if strings.Contains(fr.Func, fn) {
			return true
		}
	}
	return false
}

func ms(t trace.Time) float64 { return float64(t) / 1e6 }

func (r *report) print(w io.Writer, top int) {
	fmt.Fprintf(w, "trace: %.0f ms; goroutines running %q: %d\n", ms(r.span), r.fn, len(r.followed))
	for _, f := range r.followed {
		fmt.Fprintf(w, "goroutine %d:", f.id)
		for _, s := range []trace.GoState{trace.GoRunning, trace.GoRunnable, trace.GoSyscall, trace.GoWaiting} {
			fmt.Fprintf(w, "  %s %.0f ms", strings.ToLower(s.String()), ms(f.in[s]))
		}
		fmt.Fprintf(w, "  (blocked %d times)\n", f.blocks)
		if n := len(f.ready); n > 0 {
			ws := make([]trace.Time, n)
			for i, r := range f.ready {
				ws[i] = r.to - r.from
			}
			slices.Sort(ws)
			fmt.Fprintf(w, "  runnable waits: %d, p50 %.3f ms, p90 %.3f, p99 %.3f, max %.3f\n",
				n, ms(ws[n/2]), ms(ws[n*9/10]), ms(ws[n*99/100]), ms(ws[n-1]))
		}
	}
	type kv struct {
		root string
		t    trace.Time
	}
	var kvs []kv
	for k, v := range r.during {
		if v > 0 {
			kvs = append(kvs, kv{k, v})
		}
	}
	slices.SortFunc(kvs, func(a, b kv) int { return cmp.Or(cmp.Compare(b.t, a.t), cmp.Compare(a.root, b.root)) })
	fmt.Fprintln(w, "running while it was runnable (ms, of ms run in all), by the function goroutines started in:")
	for i, x := range kvs {
		if i == top {
			break
		}
		fmt.Fprintf(w, "  %8.1f  (of %8.1f)  %s\n", ms(x.t), ms(r.ran[x.root]), x.root)
	}
}
