package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestMonitor(t *testing.T) {
	f := newFakeServer(t, 1)
	c := f.newClient(t, nil)
	state := filepath.Join(t.TempDir(), "last-checkpoint")
	newMonitor := func() *Monitor { return &Monitor{Client: c, StateFile: state, CompareWitnesses: true} }
	once := func(m *Monitor) []Alert {
		t.Helper()
		as, err := m.Once(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	// checkEvidence verifies both checkpoints of an alert with the log key.
	checkEvidence := func(a Alert) {
		t.Helper()
		for _, raw := range []string{a.Old, a.New} {
			if _, err := note.Open([]byte(raw), note.VerifierList(f.l.verifier())); err != nil {
				t.Errorf("alert evidence %q does not verify: %v", raw, err)
			}
		}
	}

	// An honest log that grows: no alerts, the state follows.
	f.setSize(10)
	f.witnessSize = 10
	m := newMonitor()
	if as := once(m); len(as) != 0 {
		t.Fatalf("honest log: %v", as)
	}
	f.setSize(24)
	if as := once(m); len(as) != 0 {
		t.Fatalf("honest log grown: %v", as)
	}
	if b, _ := os.ReadFile(state); !strings.Contains(string(b), "\n24\n") {
		t.Fatalf("state file holds %q, want the checkpoint of size 24", b)
	}

	// A restarted monitor (state of size 24) shown a fork of the same size.
	f.setLie(lieFork)
	as := once(newMonitor())
	if len(as) != 1 || as[0].Kind != AlertInconsistent || !strings.Contains(as[0].Message, "two checkpoints of size 24") {
		t.Fatalf("fork at the same size: %v", as)
	}
	checkEvidence(as[0])

	// State of size 10 (before the forked leaf), fork served at 24.
	f.setLie(honest)
	f.setSize(10)
	m = &Monitor{Client: c, StateFile: filepath.Join(t.TempDir(), "s")}
	once(m)
	f.setLie(lieFork)
	f.setSize(24)
	as = once(m)
	if len(as) != 1 || as[0].Kind != AlertInconsistent || !strings.Contains(as[0].Message, "not consistent with the one of size 10") {
		t.Fatalf("fork after size 10: %v", as)
	}
	checkEvidence(as[0])
	// The alert does not advance the state.
	if last, _ := m.Last(); last.Size != 10 {
		t.Errorf("state advanced to %d past an alert", last.Size)
	}

	// A log that shrinks.
	f.setLie(honest)
	f.setSize(20)
	as = once(newMonitor())
	if len(as) != 1 || as[0].Kind != AlertShrank {
		t.Fatalf("shrunk log: %v", as)
	}
	checkEvidence(as[0])

	// A checkpoint without the witness's cosignature.
	f.setSize(24)
	f.setLie(lieNoQuorum)
	as = once(newMonitor())
	if len(as) != 1 || as[0].Kind != AlertUnverifiableCheckpoint || !strings.Contains(as[0].Message, "witness quorum not met") {
		t.Fatalf("no quorum: %v", as)
	}

	// Split view: a fresh monitor sees the fork, the witness the truth.
	f.setLie(lieFork)
	as = once(&Monitor{Client: c, CompareWitnesses: true})
	if len(as) != 1 || as[0].Kind != AlertSplitView || as[0].Source != "witness w0" {
		t.Fatalf("split view: %v", as)
	}
	checkEvidence(as[0])
	// Without the witness comparison, nothing to see.
	if as := once(&Monitor{Client: c}); len(as) != 0 {
		t.Fatalf("fresh monitor without witnesses: %v", as)
	}

	// A state file from another log is refused.
	os.WriteFile(state, []byte("not a checkpoint"), 0o644)
	if _, err := newMonitor().Once(t.Context()); err == nil || !strings.Contains(err.Error(), "does not hold a checkpoint of this log") {
		t.Errorf("bad state file: %v", err)
	}
}
