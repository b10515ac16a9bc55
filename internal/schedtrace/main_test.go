package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	xtrace "golang.org/x/exp/trace"
)

// followedWork waits, makes system calls, computes and yields the P, in
// turns: each yield leaves it runnable while the spinner runs.
func followedWork(dir string) error {
	for i := range 10 {
		time.Sleep(2 * time.Millisecond)
		runtime.Gosched()
		f, err := os.Create(filepath.Join(dir, "f"))
		if err != nil {
			return err
		}
		if _, err := f.Write(bytes.Repeat([]byte{byte(i)}, 4096)); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		spinFor(time.Millisecond)
	}
	return nil
}

func spinFor(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// spinner keeps the only P busy until stop is closed.
func spinner(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
			spinFor(100 * time.Microsecond)
		}
	}
}

// TestAnalyze traces a goroutine that sleeps, syncs a file and computes
// while another hogs the only P, and checks that every state shows up,
// that they add up, and that the hog is named as what ran meanwhile.
func TestAnalyze(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	stop, spun := make(chan struct{}), make(chan struct{})
	go func() { spinner(stop); close(spun) }()
	errc := make(chan error)
	go func() { errc <- followedWork(t.TempDir()) }()
	err := <-errc
	close(stop)
	<-spun
	trace.Stop()
	if err != nil {
		t.Fatal(err)
	}

	rep, err := analyze(&buf, "schedtrace.followedWork")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.followed) != 1 {
		t.Fatalf("followed %d goroutines, want 1", len(rep.followed))
	}
	f := rep.followed[0]
	for s, least := range map[xtrace.GoState]time.Duration{
		xtrace.GoWaiting:  10 * 2 * time.Millisecond, // the sleeps
		xtrace.GoRunning:  10 * time.Millisecond / 2, // the spins, less what preemption took
		xtrace.GoRunnable: time.Nanosecond,           // after each yield, behind the spinner
		xtrace.GoSyscall:  time.Nanosecond,           // the writes and syncs
	} {
		if got := time.Duration(f.in[s]); got < least {
			t.Errorf("%s: %v, want at least %v", s, got, least)
		}
	}
	var sum xtrace.Time
	for _, s := range []xtrace.GoState{xtrace.GoWaiting, xtrace.GoRunning, xtrace.GoRunnable, xtrace.GoSyscall} {
		sum += f.in[s]
	}
	if sum > rep.span {
		t.Errorf("states add up to %v, more than the trace's %v", time.Duration(sum), time.Duration(rep.span))
	}
	if len(f.ready) == 0 {
		t.Error("no runnable waits recorded")
	}
	var during xtrace.Time
	for root, d := range rep.during {
		if strings.HasSuffix(root, "TestAnalyze.func1") || strings.HasSuffix(root, "spinner") {
			during += d
		}
	}
	if during == 0 {
		t.Errorf("the spinner is not among what ran during the waits: %v", rep.during)
	}

	var out strings.Builder
	rep.print(&out, 5)
	if !strings.Contains(out.String(), "runnable waits:") {
		t.Errorf("report lacks the runnable waits:\n%s", out.String())
	}
}

func TestAnalyzeNoSuchFunction(t *testing.T) {
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	trace.Stop()
	if _, err := analyze(&buf, "no.such.function"); err == nil || !strings.Contains(err.Error(), "no goroutine") {
		t.Errorf("err = %v, want one saying no goroutine ran it", err)
	}
}

func TestAnalyzeNotATrace(t *testing.T) {
	if _, err := analyze(strings.NewReader("not a trace"), defaultFunc); err == nil {
		t.Error("no error for input that is not a trace")
	}
}

func TestOverlap(t *testing.T) {
	w := newWaits([]span{{20, 30}, {0, 10}, {5, 15}})
	for _, tc := range []struct {
		s    span
		want xtrace.Time
	}{
		{span{8, 22}, 2 + 7 + 2},
		{span{15, 20}, 0},
		{span{0, 100}, 10 + 10 + 10},
		{span{-5, 0}, 0},
		{span{29, 40}, 1},
		{span{12, 13}, 1},
	} {
		if got := w.overlap(tc.s); got != tc.want {
			t.Errorf("overlap(%v) = %d, want %d", tc.s, got, tc.want)
		}
	}
}
