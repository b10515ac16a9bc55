package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEHelp checks README.md quotes the real help texts verbatim.
func TestREADMEHelp(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range helpCommands() {
		code, out, errs := provctl(t, nil, args...)
		if code != exitVerified {
			t.Fatalf("provctl %v exited %d", args, code)
		}
		help := out + errs
		if !strings.Contains(string(readme), "```\n"+help+"```\n") {
			t.Errorf("README.md does not quote provctl %s; it should contain:\n%s", strings.Join(args, " "), help)
		}
	}
}

// helpCommands is every help invocation.
func helpCommands() [][]string {
	out := [][]string{{"--help"}}
	for _, c := range commands {
		if c.name == "bundle verify" {
			continue // the same as verify bundle
		}
		out = append(out, append(strings.Fields(c.name), "-help"))
	}
	return out
}
