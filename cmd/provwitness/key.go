package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

const (
	keyFile = "witness.key"
	pubFile = "witness.pub"
	// algCosignatureV1 is the signed-note signature type of Ed25519
	// cosignature/v1 (c2sp.org/signed-note, c2sp.org/tlog-cosignature).
	algCosignatureV1 = 0x04
	algEd25519       = 0x01
)

type witnessKey struct {
	signer  note.Signer
	vkey    string // cosignature/v1 verifier key
	created bool
}

// loadOrCreateKey loads dir/witness.key, or creates it on first start with
// name (or a default), and (re)writes dir/witness.pub to match it.
//
// witness.key is a note signer key, "PRIVATE+KEY+<name>+<key ID>+<base64
// of 0x04 || Ed25519 seed>": typed 0x04 so that it can only make
// cosignatures, never plain note signatures. Keys typed 0x01 (from
// golang.org/x/mod/sumdb/note.GenerateKey) are accepted too.
func loadOrCreateKey(dir, name string) (witnessKey, error) {
	path := filepath.Join(dir, keyFile)
	var wk witnessKey
	skey, err := readPrivate(path)
	if errors.Is(err, fs.ErrNotExist) {
		if name == "" {
			if name, err = defaultName(); err != nil {
				return wk, err
			}
		}
		if skey, err = newSignerKey(name); err != nil {
			return wk, err
		}
		if err := writeFileSync(path, []byte(skey+"\n"), 0o600, true); err != nil {
			return wk, fmt.Errorf("couldn't write witness key: %w", err)
		}
		wk.created = true
	} else if err != nil {
		return wk, err
	}
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return wk, fmt.Errorf("couldn't parse %s: %w", path, err)
	}
	if name != "" && signer.Name() != name {
		return wk, fmt.Errorf("--name %q differs from the name %q in %s: the name is part of the witness's identity and cannot change", name, signer.Name(), path)
	}
	vkey, err := cosignatureVKey(skey)
	if err != nil {
		return wk, fmt.Errorf("couldn't parse %s: %w", path, err)
	}
	if v, err := fnote.NewVerifierForCosignatureV1(vkey); err != nil || v.KeyHash() != signer.KeyHash() {
		return wk, fmt.Errorf("internal error: verifier key %q does not match %s (%v)", vkey, path, err)
	}
	pub := filepath.Join(dir, pubFile)
	if old, err := os.ReadFile(pub); err != nil || string(old) != vkey+"\n" {
		if err := writeFileSync(pub, []byte(vkey+"\n"), 0o644, false); err != nil {
			return wk, fmt.Errorf("couldn't write witness public key: %w", err)
		}
	}
	wk.signer, wk.vkey = signer, vkey
	return wk, nil
}

// readPrivate reads the key file, refusing one that others can read.
func readPrivate(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("couldn't read witness key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %04o, open to group or others: run chmod 600 on it", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("couldn't read witness key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func defaultName() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("couldn't get the hostname for the default witness name, set --name: %w", err)
	}
	name := host + "/provwitness"
	if !validName(name) {
		return "", fmt.Errorf("hostname %q makes an invalid witness name, set --name", host)
	}
	return name, nil
}

// validName reports whether name can be a signed-note key name: non-empty
// UTF-8 without Unicode spaces or plus signs.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && !strings.ContainsFunc(name, unicode.IsSpace) && !strings.Contains(name, "+")
}

// keyID is the cosignature/v1 key ID: SHA-256(name || "\n" || 0x04 || pub)[:4].
func keyID(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func newSignerKey(name string) (string, error) {
	if !validName(name) {
		return "", fmt.Errorf("invalid witness name %q: it must be non-empty, without spaces or +", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("couldn't generate witness key: %w", err)
	}
	material := append([]byte{algCosignatureV1}, priv.Seed()...)
	return fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, keyID(name, pub), base64.StdEncoding.EncodeToString(material)), nil
}

// cosignatureVKey derives the cosignature/v1 verifier key of an Ed25519
// signer key of type 0x01 or 0x04.
func cosignatureVKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("not a note signer key")
	}
	name := parts[2]
	material, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(material) != 1+ed25519.SeedSize {
		return "", errors.New("not an Ed25519 note signer key")
	}
	if material[0] != algCosignatureV1 && material[0] != algEd25519 {
		return "", fmt.Errorf("key type %#02x is not Ed25519", material[0])
	}
	pub := ed25519.NewKeyFromSeed(material[1:]).Public().(ed25519.PublicKey)
	return fmt.Sprintf("%s+%08x+%s", name, keyID(name, pub), base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...))), nil
}

// writeFileSync writes path durably. With exclusive set it fails if path
// exists; otherwise it replaces path atomically.
func writeFileSync(path string, data []byte, perm os.FileMode, exclusive bool) error {
	target := path
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if !exclusive {
		path += ".tmp"
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if !exclusive {
		if err := os.Rename(path, target); err != nil {
			return err
		}
	}
	d, err := os.Open(filepath.Dir(target))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
