package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite the -help output quoted in README.md")

const helpMarker = "```\n$ provwitness -help\n"

func TestREADMEQuotesHelp(t *testing.T) {
	var help bytes.Buffer
	if _, err := parseFlags([]string{"-help"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-help) = %v, want flag.ErrHelp", err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(readme, []byte(helpMarker))
	if start < 0 {
		t.Fatalf("README.md has no %q block", helpMarker)
	}
	start += len(helpMarker)
	end := bytes.Index(readme[start:], []byte("```"))
	if end < 0 {
		t.Fatal("README.md: -help block is not closed")
	}
	end += start
	if *update {
		out := append(append(bytes.Clone(readme[:start]), help.Bytes()...), readme[end:]...)
		if err := os.WriteFile("README.md", out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(help.String(), string(readme[start:end])); diff != "" {
		t.Errorf("README.md quotes an outdated -help (-real +README); run go test -run TestREADMEQuotesHelp -update:\n%s", diff)
	}
}

func newLogKey(t *testing.T, name string) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

func TestParseFlags(t *testing.T) {
	_, vk := newLogKey(t, "example.com/log")
	tests := []struct {
		name    string
		args    []string
		want    config
		wantErr string
	}{
		{"minimal", []string{"--data-dir", "d", "--log", "example.com/log " + vk},
			config{dataDir: "d", addr: "127.0.0.1:8070", logs: logFlag{{origin: "example.com/log", vkey: vk, where: "--log"}}, logFormat: "text", logLevel: slog.LevelInfo}, ""},
		{"all flags", []string{"-data-dir=d", "-addr=:1", "-name=w.example/1", "-config=c", "-log-format=json", "-log-level=debug"},
			config{dataDir: "d", addr: ":1", name: "w.example/1", configFile: "c", logFormat: "json", logLevel: slog.LevelDebug}, ""},
		{"origin with spaces", []string{"--data-dir", "d", "--log", "  my log  " + vk},
			config{dataDir: "d", addr: "127.0.0.1:8070", logs: logFlag{{origin: "my log", vkey: vk, where: "--log"}}, logFormat: "text", logLevel: slog.LevelInfo}, ""},
		{"no data dir", []string{"--log", "o " + vk}, config{}, "--data-dir is required"},
		{"no logs", []string{"--data-dir", "d"}, config{}, "no logs to witness"},
		{"bad log format", []string{"--data-dir", "d", "--config", "c", "--log-format", "xml"}, config{}, "--log-format must be text or json"},
		{"bad log level", []string{"--data-dir", "d", "--config", "c", "--log-level", "loud"}, config{}, "invalid value"},
		{"log without origin", []string{"--data-dir", "d", "--log", vk}, config{}, `want "ORIGIN VKEY"`},
		{"log with a bad key", []string{"--data-dir", "d", "--log", "o notakey"}, config{}, "invalid verifier key"},
		{"arguments", []string{"--data-dir", "d", "--config", "c", "extra"}, config{}, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			got, err := parseFlags(tc.args, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(out.String(), tc.wantErr) || !strings.Contains(out.String(), "-help for usage") {
					t.Fatalf("err = %v, output %q; want an error mentioning %q and a usage hint", err, out.String(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v (%s)", err, out.String())
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(config{}, logSpec{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadConfigFile(t *testing.T) {
	_, vkA := newLogKey(t, "example.com/a")
	_, vkB1 := newLogKey(t, "example.com/b")
	_, vkB2 := newLogKey(t, "example.com/b-2026")
	type log struct {
		Origin string
		Keys   []string
	}
	tests := []struct {
		name    string
		file    string
		flags   []string
		want    []log
		wantErr string
	}{
		{"logs, comments, rotation, duplicates", "# witnessed logs\n\nlog example.com/a " + vkA + "\n  log example.com/b " + vkB1 + "\nlog example.com/b " + vkB2 + "\nlog example.com/a " + vkA + "\n",
			nil, []log{{"example.com/a", []string{"example.com/a"}}, {"example.com/b", []string{"example.com/b", "example.com/b-2026"}}}, ""},
		{"merged with --log", "log example.com/b " + vkB1 + "\n", []string{"example.com/a " + vkA, "example.com/b " + vkB2},
			[]log{{"example.com/a", []string{"example.com/a"}}, {"example.com/b", []string{"example.com/b-2026", "example.com/b"}}}, ""},
		{"origin with spaces", "log my log " + vkA + "\n", nil, []log{{"my log", []string{"example.com/a"}}}, ""},
		{"empty", "# nothing\n", nil, nil, "no logs to witness"},
		{"unknown directive", "witness x " + vkA + "\n", nil, nil, "c.txt:1: want \"log ORIGIN VKEY\""},
		{"bad key", "\nlog example.com/a notakey\n", nil, nil, "c.txt:2: invalid verifier key"},
		{"missing key", "log example.com/a\n", nil, nil, `c.txt:1: want "ORIGIN VKEY"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.txt")
			if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			var specs []logSpec
			for _, f := range tc.flags {
				s, err := parseLogSpec(f)
				if err != nil {
					t.Fatal(err)
				}
				specs = append(specs, s)
			}
			more, err := readConfigFile(path)
			if err == nil {
				specs = append(specs, more...)
				logs, berr := buildLogs(specs)
				err = berr
				var got []log
				for _, l := range logs {
					g := log{Origin: l.Origin}
					for _, v := range l.Verifiers {
						g.Keys = append(g.Keys, v.Name())
					}
					got = append(got, g)
				}
				if err == nil {
					if diff := cmp.Diff(tc.want, got); diff != "" {
						t.Errorf("(-want +got):\n%s", diff)
					}
				}
			}
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	k, err := loadOrCreateKey(dir, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	if !k.created || k.signer.Name() != "witness.example/w1" {
		t.Fatalf("first start: created=%v name=%q", k.created, k.signer.Name())
	}
	for file, mode := range map[string]os.FileMode{keyFile: 0o600, pubFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %04o, want %04o", file, fi.Mode().Perm(), mode)
		}
	}
	pub, err := os.ReadFile(filepath.Join(dir, pubFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(pub) != k.vkey+"\n" {
		t.Errorf("witness.pub = %q, want %q", pub, k.vkey+"\n")
	}
	// witness.pub is what tessera's witness policy takes.
	v, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	text := "example.com/log\n1\n" + strings.Repeat("A", 43) + "=\n"
	signed, err := note.Sign(&note.Note{Text: text}, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
		t.Errorf("cosignature does not verify with witness.pub: %v", err)
	}

	// Later starts reuse the key, with or without the same --name.
	for _, name := range []string{"", "witness.example/w1"} {
		k2, err := loadOrCreateKey(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		if k2.created || k2.vkey != k.vkey {
			t.Errorf("restart with --name %q: created=%v vkey %q, want reuse of %q", name, k2.created, k2.vkey, k.vkey)
		}
	}
	if _, err := loadOrCreateKey(dir, "other.example/w2"); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("restart with another --name: err = %v, want refusal", err)
	}
	// A deleted witness.pub comes back.
	os.Remove(filepath.Join(dir, pubFile))
	if _, err := loadOrCreateKey(dir, ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, pubFile)); string(got) != string(pub) {
		t.Errorf("rewritten witness.pub = %q, want %q", got, pub)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(filepath.Join(dir, keyFile), mode); err != nil {
			t.Fatal(err)
		}
		if _, err := loadOrCreateKey(dir, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("key mode %04o: err = %v, want refusal", mode, err)
		}
	}
}

// TestLoadPlainEd25519Key: a key from x/mod's note.GenerateKey (type
// 0x01) works, and its witness.pub is what formats/note derives for it.
func TestLoadPlainEd25519Key(t *testing.T) {
	dir := t.TempDir()
	skey, vkey := newLogKey(t, "witness.example/plain")
	if err := os.WriteFile(filepath.Join(dir, keyFile), []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := loadOrCreateKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	want, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if k.created || k.vkey != want {
		t.Errorf("vkey = %q (created %v), want %q", k.vkey, k.created, want)
	}
}

func TestDefaultName(t *testing.T) {
	dir := t.TempDir()
	k, err := loadOrCreateKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if want := host + "/provwitness"; k.signer.Name() != want {
		t.Errorf("default name %q, want %q", k.signer.Name(), want)
	}
	if _, err := loadOrCreateKey(t.TempDir(), "bad name"); err == nil {
		t.Error("a name with a space was accepted")
	}
}
