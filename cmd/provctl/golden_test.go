package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/provctl -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the output (go test ./cmd/provctl -update rewrites it):\n--- want\n%s\n--- got\n%s", p, want, got)
	}
}

func TestHelpGolden(t *testing.T) {
	for _, args := range helpCommands() {
		code, out, errs := provctl(t, nil, args...)
		if code != exitVerified {
			t.Errorf("provctl %v exited %d", args, code)
		}
		name := strings.Join(args[:len(args)-1], "-")
		if name == "" {
			name = "provctl"
		}
		golden(t, "help/"+name+".txt", out+errs)
	}
	// Every command refuses unknown flags with exit 2.
	for _, c := range commands {
		if code, _, _ := provctl(t, nil, append(strings.Fields(c.name), "--no-such-flag")...); code != exitUsage {
			t.Errorf("provctl %s --no-such-flag exited %d, want 2", c.name, code)
		}
	}
	if code, _, _ := provctl(t, nil, "frobnicate"); code != exitUsage {
		t.Errorf("unknown command exited %d, want 2", code)
	}
}
