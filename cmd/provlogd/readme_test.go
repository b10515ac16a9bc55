package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestREADMEFlags checks README.md quotes the real -help output verbatim.
func TestREADMEFlags(t *testing.T) {
	var cfg config
	fs := newFlagSet(&cfg)
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.Usage()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```\n"+buf.String()+"```\n") {
		t.Errorf("README.md does not quote provlogd -help; it should contain:\n%s", buf.String())
	}
}
