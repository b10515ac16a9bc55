package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/provlog/provlog/internal/atomicfile"
)

// Key states.
const (
	// stateActive: new writes of its tenant and classification use it.
	stateActive = "active"
	// stateRetired: a newer generation took over new writes; it still
	// decrypts what it sealed.
	stateRetired = "retired"
	// stateArchived: its ciphertexts were moved to the archive store.
	stateArchived = "archived"
	// stateShredded: the key itself was destroyed.
	stateShredded = "shredded"
)

// keyRecord is one data key in the keyring. The key itself is only ever
// stored wrapped under the master key; shredding removes it.
type keyRecord struct {
	ID             string     `json:"id"`
	Tenant         string     `json:"tenant"`
	Classification string     `json:"classification"`
	Generation     int        `json:"generation"`
	Created        time.Time  `json:"created"`
	State          string     `json:"state"`
	Retired        *time.Time `json:"retired,omitempty"`
	Wrapped        []byte     `json:"wrapped,omitempty"`
	// Set once archived or shredded.
	ErasedAt *time.Time `json:"erased_at,omitempty"`
	Policy   string     `json:"policy,omitempty"`
	Values   int        `json:"values,omitempty"`
	// Logged is set once the erasure is recorded as an event in the log, at
	// LogIndex.
	Logged   bool   `json:"logged,omitempty"`
	LogIndex uint64 `json:"log_index,omitempty"`
}

// keyring is the vault's key file, DIR/keyring.json. It is small (one
// record per data key, not per value) and rewritten whole, atomically, on
// every change: destroying a key is rewriting the file without it.
type keyring struct {
	Version     int    `json:"version"`
	MasterKeyID string `json:"master_key_id"`
	// Check is a known constant wrapped under the master key, so that a
	// wrong master key is caught at Open even when there are no data keys.
	Check []byte       `json:"check"`
	Keys  []*keyRecord `json:"keys"`
}

const keyringFile = "keyring.json"

// readKeyringFile reads DIR/keyring.json; ok is false when there is none.
func readKeyringFile(dir string) ([]byte, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, keyringFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("couldn't read vault keyring: %w", err)
	}
	return b, true, nil
}

// readKeyring reads and decodes DIR/keyring.json.
func readKeyring(dir string) (*keyring, bool, error) {
	b, ok, err := readKeyringFile(dir)
	if err != nil || !ok {
		return nil, ok, err
	}
	kr, err := decodeKeyring(b)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", filepath.Join(dir, keyringFile), err)
	}
	return kr, true, nil
}

// writeKeyringFile replaces the keyring atomically: a temporary file,
// synced, renamed over the old one, and the directory synced.
func writeKeyringFile(dir string, doc []byte) error {
	if err := atomicfile.Write(filepath.Join(dir, keyringFile), doc, 0o600); err != nil {
		return fmt.Errorf("couldn't replace vault keyring: %w", err)
	}
	return nil
}
