package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress prints "VERB: [====    ] DONE/TOTAL UNIT  RATE UNIT/s  ETA" on stderr, at
// most every interval: on one line rewritten in place on a terminal, a line
// per report otherwise.
type progress struct {
	w          io.Writer
	verb, unit string
	total      uint64 // 0 when unknown
	// bytesDone/bytesTotal estimate the ETA when total is unknown.
	bytesDone, bytesTotal int64
	start, last           time.Time
	interval              time.Duration
	tty                   bool
	printed               bool
	n, printedN           uint64
}

func newProgress(w io.Writer, verb, unit string, total uint64) *progress {
	p := &progress{w: w, verb: verb, unit: unit, total: total, start: time.Now(), interval: time.Second}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.interval = true, 200*time.Millisecond
		}
	}
	return p
}

func (p *progress) update(n uint64) {
	p.n = n
	if time.Since(p.last) < p.interval {
		return
	}
	p.print()
}

func (p *progress) print() {
	p.last, p.printedN = time.Now(), p.n
	el := time.Since(p.start).Seconds()
	rate := float64(p.n) / max(el, 1e-9)
	frac := -1.0
	switch {
	case p.total > 0:
		frac = float64(min(p.n, p.total)) / float64(p.total)
	case p.bytesTotal > 0:
		frac = float64(min(p.bytesDone, p.bytesTotal)) / float64(p.bytesTotal)
	}
	line := p.verb + ": "
	if frac >= 0 {
		const width = 20
		full := int(frac * width)
		line += "[" + strings.Repeat("=", full) + strings.Repeat(" ", width-full) + "] "
	}
	line += fmt.Sprint(p.n)
	if p.total > 0 {
		line += fmt.Sprintf("/%d (%.0f%%)", p.total, 100*frac)
	}
	line += fmt.Sprintf(" %s  %.0f %s/s", p.unit, rate, p.unit)
	var left float64 = -1
	switch {
	case p.total > 0 && rate > 0:
		left = float64(p.total-min(p.n, p.total)) / rate
	case p.bytesTotal > 0 && p.bytesDone > 0:
		left = el * float64(p.bytesTotal-p.bytesDone) / float64(p.bytesDone)
	}
	if left >= 0 {
		line += "  ETA " + (time.Duration(left) * time.Second).Round(time.Second).String()
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%-72s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.printed = true
}

// done prints the final state.
func (p *progress) done() {
	if !p.printed && time.Since(p.start) < p.interval {
		return // too quick to be worth a line
	}
	if p.printed && p.printedN == p.n {
		if p.tty {
			fmt.Fprintln(p.w)
		}
		return // the last line said it all
	}
	p.print()
	if p.tty {
		fmt.Fprintln(p.w)
	}
}
