package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestREADMEQuotesHelp keeps README.md's copy of -help in step with the flags.
func TestREADMEQuotesHelp(t *testing.T) {
	var help bytes.Buffer
	if code := mainExit([]string{"-help"}, new(bytes.Buffer), &help); code != 0 {
		t.Fatalf("provbench -help exited %d", code)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "$ provbench -help\n"
	_, after, ok := strings.Cut(string(readme), start)
	if !ok {
		t.Fatalf("README.md has no %q block", strings.TrimSpace(start))
	}
	quoted, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("README.md's -help block is not closed")
	}
	if quoted != help.String() {
		t.Errorf("README.md's -help block differs from provbench -help; replace it with:\n%s", help.String())
	}
}
