package main

import (
	"strings"
	"testing"
	"time"
)

func TestBurnerCalibration(t *testing.T) {
	if b := newBurner(0); b.iters != 0 {
		t.Errorf("newBurner(0) hashes %d times per call, want 0 (bare tessera)", b.iters)
	}
	// More CPU per event means proportionally more hashes. Each burner is
	// calibrated on its own (fastest of five runs), so allow for a machine
	// that other tests load more during one calibration than the other;
	// a unit mistake would be off by a thousand.
	small, large := newBurner(20*time.Microsecond), newBurner(200*time.Microsecond)
	if small.iters < 1 || large.iters < 2*small.iters || large.iters > 50*small.iters {
		t.Errorf("20µs: %d hashes, 200µs: %d hashes; want about 10 times as many", small.iters, large.iters)
	}
	before := burnSink
	small.spend()
	if burnSink == before {
		t.Error("spend did not hash")
	}
}

func TestReportNamesBaselineCPU(t *testing.T) {
	var out strings.Builder
	if err := goldenReport().writeTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "plus 20µs of CPU per event") {
		t.Errorf("table does not say the baseline spent CPU per event:\n%s", out.String())
	}
}
