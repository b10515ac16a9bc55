package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/provlog/provlog/witness"
)

// logSpec is one log key from --log or the config file.
type logSpec struct {
	origin, vkey string
	where        string // for error messages
}

// logFlag collects repeated --log "ORIGIN VKEY" flags.
type logFlag []logSpec

func (f *logFlag) String() string { return "" }

func (f *logFlag) Set(s string) error {
	spec, err := parseLogSpec(s)
	if err != nil {
		return err
	}
	spec.where = "--log"
	*f = append(*f, spec)
	return nil
}

// parseLogSpec parses "ORIGIN VKEY". A vkey has no spaces, so it is the
// last field; the origin, which may contain spaces, is everything before.
func parseLogSpec(s string) (logSpec, error) {
	s = strings.TrimSpace(s)
	i := strings.LastIndexAny(s, " \t")
	if i < 0 {
		return logSpec{}, errors.New(`want "ORIGIN VKEY"`)
	}
	origin, vkey := strings.TrimSpace(s[:i]), s[i+1:]
	if origin == "" {
		return logSpec{}, errors.New(`want "ORIGIN VKEY": empty origin`)
	}
	if _, err := fnote.NewVerifier(vkey); err != nil {
		return logSpec{}, fmt.Errorf("invalid verifier key %q for %q: %w", vkey, origin, err)
	}
	return logSpec{origin: origin, vkey: vkey}, nil
}

// readConfigFile reads a config file: one "log ORIGIN VKEY" per line,
// ignoring blank lines and lines starting with #.
func readConfigFile(path string) ([]logSpec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read config: %w", err)
	}
	defer f.Close()
	var specs []logSpec
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rest, ok := strings.CutPrefix(line, "log ")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want \"log ORIGIN VKEY\", got %q", path, n, line)
		}
		spec, err := parseLogSpec(rest)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		spec.where = fmt.Sprintf("%s:%d", path, n)
		specs = append(specs, spec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read config %s: %w", path, err)
	}
	return specs, nil
}

// buildLogs groups keys by origin, in first-seen order, dropping repeated
// identical keys.
func buildLogs(specs []logSpec) ([]witness.Log, error) {
	var logs []witness.Log
	index := make(map[string]int)
	seen := make(map[logSpec]bool)
	for _, s := range specs {
		if seen[logSpec{origin: s.origin, vkey: s.vkey}] {
			continue
		}
		seen[logSpec{origin: s.origin, vkey: s.vkey}] = true
		v, err := fnote.NewVerifier(s.vkey)
		if err != nil {
			return nil, fmt.Errorf("%s: invalid verifier key for %q: %w", s.where, s.origin, err)
		}
		i, ok := index[s.origin]
		if !ok {
			i = len(logs)
			index[s.origin] = i
			logs = append(logs, witness.Log{Origin: s.origin})
		}
		logs[i].Verifiers = append(logs[i].Verifiers, note.Verifier(v))
	}
	if len(logs) == 0 {
		return nil, errors.New("no logs to witness")
	}
	return logs, nil
}
