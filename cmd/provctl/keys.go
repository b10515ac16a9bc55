package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func cmdKeysGenerate(e *env, args []string) int {
	f := newFlags(e, "keys generate", "log|witness|submitter --name NAME [--out-dir DIR]",
		"Generates an Ed25519 key pair in the C2SP signed-note format and writes\nNAME.key (the signer key, mode 0600) and NAME.pub (the verifier key) in\n--out-dir, refusing to overwrite. The name is part of the key's identity:\n  log        NAME is the log's origin (provlogd --origin); the pair is\n             provlogd's log.key and log.pub\n  witness    NAME is the witness's name; NAME.pub is its cosignature/v1\n             verifier key, for witness policy lines and provwitness --log\n  submitter  NAME is the signature key_id; register NAME.pub with provctl\n             keys register, sign with provctl append --sign-key NAME.key;\n             provctl audit checks the signatures from the log's key events\n'/' in NAME becomes '_' in the file names.", "text", "json")
	name := f.String("name", "", "the key's name (required)")
	outDir := f.String("out-dir", ".", "directory to write the key files in")
	// The kind may come first: keys generate log --name NAME.
	kind := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		kind, args = args[0], args[1:]
	}
	minArgs := 0
	if kind == "" {
		minArgs = 1
	}
	if code, ok := f.parse(args, minArgs, minArgs); !ok {
		return code
	}
	if kind == "" {
		kind = f.Arg(0)
	}
	if kind != "log" && kind != "witness" && kind != "submitter" {
		fmt.Fprintf(e.stderr, "provctl: key kind %q: want log, witness or submitter\n", kind)
		return exitUsage
	}
	if *name == "" {
		fmt.Fprintln(e.stderr, "provctl: --name is required")
		return exitUsage
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, *name)
	if err != nil {
		fmt.Fprintf(e.stderr, "provctl: --name %q: %v\n", *name, err)
		return exitUsage
	}
	if kind == "witness" {
		if vkey, err = fnote.VKeyToCosignatureV1(vkey); err != nil {
			return f.fail(err)
		}
	}
	base := filepath.Join(*outDir, strings.ReplaceAll(*name, "/", "_"))
	keyFile, pubFile := base+".key", base+".pub"
	for _, p := range []string{keyFile, pubFile} {
		if _, err := os.Stat(p); err == nil {
			return f.fail(fmt.Errorf("%s exists: not overwriting a key", p))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return f.fail(err)
		}
	}
	if err := writeNew(keyFile, skey+"\n", 0o600); err != nil {
		return f.fail(err)
	}
	if err := writeNew(pubFile, vkey+"\n", 0o644); err != nil {
		return f.fail(err)
	}
	if f.json() {
		writeJSON(e.stdout, map[string]any{"kind": kind, "name": *name, "verifier_key": vkey, "key_file": keyFile, "pub_file": pubFile})
		return exitVerified
	}
	fmt.Fprintf(e.stdout, "wrote %s (secret, mode 0600) and %s\n%s verifier key: %s\n", keyFile, pubFile, kind, vkey)
	return exitVerified
}

func writeNew(path, data string, perm os.FileMode) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(data)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}
