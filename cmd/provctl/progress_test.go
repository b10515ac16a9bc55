package main

import (
	"strings"
	"testing"
	"time"
)

func TestProgress(t *testing.T) {
	var sb strings.Builder
	p := newProgress(&sb, "audit", "leaves", 1000)
	p.start = time.Now().Add(-2 * time.Second)
	p.update(500) // 250 leaves/s, 500 to go: 2s
	got := sb.String()
	if !strings.HasPrefix(got, "audit: [==========          ] 500/1000 (50%) leaves  25") || !strings.Contains(got, "leaves/s  ETA 2s\n") {
		t.Errorf("progress line %q", got)
	}
	sb.Reset()
	p.update(600) // within the interval: nothing
	if sb.Len() != 0 {
		t.Errorf("printed again within the interval: %q", sb.String())
	}
	p.done()
	if !strings.HasPrefix(sb.String(), "audit: [============        ] 600/1000") {
		t.Errorf("final line %q", sb.String())
	}

	// Unknown total: the ETA comes from the bytes read.
	sb.Reset()
	q := newProgress(&sb, "append", "events", 0)
	q.start = time.Now().Add(-time.Second)
	q.bytesDone, q.bytesTotal = 100, 400
	q.update(10)
	if !strings.Contains(sb.String(), "append: [=====               ] 10 events") || !strings.Contains(sb.String(), "ETA 3s") {
		t.Errorf("progress without total %q", sb.String())
	}
}
