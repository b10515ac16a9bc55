package main

import (
	"bytes"
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
	for _, args := range [][]string{{"--help"}, {"verify", "receipt", "-help"}} {
		var out, errb bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errb); code != exitVerified {
			t.Fatalf("provctl %v exited %d", args, code)
		}
		help := out.String() + errb.String()
		if !strings.Contains(string(readme), "```\n"+help+"```\n") {
			t.Errorf("README.md does not quote provctl %s; it should contain:\n%s", strings.Join(args, " "), help)
		}
	}
}
