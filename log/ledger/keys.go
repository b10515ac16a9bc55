package ledger

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Key file names in the data directory. They are part of the DESIGN.md
// contract: operators and tools look for them by name.
const (
	SignerKeyFile   = "log.key"
	VerifierKeyFile = "log.pub"
)

// LoadOrCreateKeys returns the log's checkpoint signer and its verifier key
// string, creating log.key (mode 0600) and log.pub in dir on first use.
//
// origin names the log: it is the signer's name and the first line of every
// checkpoint. When origin is empty, an existing key's name is used, or
// defaultOrigin for a new key. A key whose name differs from a non-empty
// origin is an error: changing a log's origin silently would orphan every
// verifier in the field.
func LoadOrCreateKeys(dir, origin, defaultOrigin string) (note.Signer, string, error) {
	keyPath := filepath.Join(dir, SignerKeyFile)
	pubPath := filepath.Join(dir, VerifierKeyFile)
	skey, err := os.ReadFile(keyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if origin == "" {
			origin = defaultOrigin
		}
		sk, vk, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			return nil, "", fmt.Errorf("couldn't generate log key for origin %q: %w", origin, err)
		}
		if err := WriteSecretFile(keyPath, []byte(sk+"\n")); err != nil {
			return nil, "", err
		}
		if err := writeFileSync(pubPath, []byte(vk+"\n"), 0o644, os.O_TRUNC); err != nil {
			return nil, "", err
		}
		skey = []byte(sk)
	case err != nil:
		return nil, "", fmt.Errorf("couldn't read log key: %w", err)
	default:
		if err := CheckSecretFileMode(keyPath); err != nil {
			return nil, "", err
		}
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, "", fmt.Errorf("couldn't parse %s: %w", keyPath, err)
	}
	if origin != "" && signer.Name() != origin {
		return nil, "", fmt.Errorf("%s signs for origin %q but the origin asked for is %q", keyPath, signer.Name(), origin)
	}
	pub, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, "", fmt.Errorf("couldn't read log verifier key: %w", err)
	}
	vkey := strings.TrimSpace(string(pub))
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, "", fmt.Errorf("couldn't parse %s: %w", pubPath, err)
	}
	if v.Name() != signer.Name() || v.KeyHash() != signer.KeyHash() {
		return nil, "", fmt.Errorf("%s does not match %s", pubPath, keyPath)
	}
	return signer, vkey, nil
}

// WriteSecretFile writes data to a new file readable only by its owner,
// fsyncs it and its directory. It refuses to overwrite an existing file.
func WriteSecretFile(path string, data []byte) error {
	return writeFileSync(path, data, 0o600, os.O_EXCL)
}

// CheckSecretFileMode refuses a secret file that group or others can read.
func CheckSecretFileMode(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("couldn't stat %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s has mode %#o; it holds a secret and must not be readable by group or others (chmod 600)", path, st.Mode().Perm())
	}
	return nil
}

// writeFileSync writes data to path (opened with O_WRONLY|O_CREATE and
// flag: O_EXCL to refuse an existing file, O_TRUNC to replace it), then
// fsyncs the file and its directory.
func writeFileSync(path string, data []byte, perm os.FileMode, flag int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, perm)
	if err != nil {
		return fmt.Errorf("couldn't create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("couldn't sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("couldn't close %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("couldn't open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("couldn't sync %s: %w", dir, err)
	}
	return nil
}
