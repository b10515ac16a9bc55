package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// KeyManager wraps and unwraps data keys under a master key. It is the seam
// for an external key service (a KMS, an HSM): the vault never sees master
// key bytes, only calls Wrap and Unwrap. Implementations must be safe for
// concurrent use.
type KeyManager interface {
	// ID names the master key new wraps are made under. It is stored next
	// to every wrapped key, so that a vault opened with another master key
	// fails at once with ErrWrongMasterKey.
	ID() string
	// Wrap encrypts and authenticates a data key; aad binds it to its use.
	Wrap(key, aad []byte) ([]byte, error)
	// Unwrap reverses Wrap. It fails if wrapped was not made by this master
	// key with the same aad.
	Unwrap(wrapped, aad []byte) ([]byte, error)
}

// ErrWrongMasterKey means the vault's keys were wrapped under another
// master key than the one given.
var ErrWrongMasterKey = errors.New("vault: wrong master key")

// MasterKeySize is the size of a master key: AES-256.
const MasterKeySize = 32

// FileKeyManager is a KeyManager over a 32-byte master key held in memory,
// read from a key file (LoadMasterKeyFile). Wraps are AES-256-GCM with a
// random 96-bit nonce: nonce || ciphertext || tag.
type FileKeyManager struct {
	id   string
	aead cipher.AEAD
}

// NewFileKeyManager returns a KeyManager for key, which must be 32 bytes.
func NewFileKeyManager(key []byte) (*FileKeyManager, error) {
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("vault: master key is %d bytes, want %d", len(key), MasterKeySize)
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("provlog vault master key id v1\n"), key...))
	return &FileKeyManager{id: "file:" + hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// ID is "file:" and 16 hex digits of a hash of the key: it names the key
// without revealing it.
func (m *FileKeyManager) ID() string { return m.id }

// Wrap implements KeyManager.
func (m *FileKeyManager) Wrap(key, aad []byte) ([]byte, error) { return seal(m.aead, key, aad) }

// Unwrap implements KeyManager.
func (m *FileKeyManager) Unwrap(wrapped, aad []byte) ([]byte, error) {
	return open(m.aead, wrapped, aad)
}

// LoadMasterKeyFile reads a master key file: 64 hex digits and an optional
// newline. The file must not be readable or writable by group or others
// (mode 0600 or stricter): a key anyone on the machine can read protects
// nothing.
func LoadMasterKeyFile(path string) (*FileKeyManager, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read vault master key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("vault master key %s has mode %v: it must be 0600 or stricter", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read vault master key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != MasterKeySize {
		return nil, fmt.Errorf("vault master key %s: want %d hex digits", path, 2*MasterKeySize)
	}
	return NewFileKeyManager(key)
}

// CreateMasterKeyFile writes a new random master key to path, mode 0600. It
// fails if path exists.
func CreateMasterKeyFile(path string) error {
	key := make([]byte, MasterKeySize)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("couldn't create vault master key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("couldn't write vault master key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("couldn't write vault master key: %w", err)
	}
	return f.Close()
}

// MasterKeyFileExists reports whether path exists.
func MasterKeyFileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return aead, nil
}

// seal returns nonce || AES-GCM(plaintext, aad) with a random nonce.
func seal(aead cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	rand.Read(out)
	return aead.Seal(out, out, plaintext, aad), nil
}

var errDecrypt = errors.New("vault: ciphertext does not authenticate")

func open(aead cipher.AEAD, ct, aad []byte) ([]byte, error) {
	if len(ct) < aead.NonceSize()+aead.Overhead() {
		return nil, errDecrypt
	}
	pt, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], aad)
	if err != nil {
		return nil, errDecrypt
	}
	return pt, nil
}
