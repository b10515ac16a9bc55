package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// LoadOrCreateBootstrapToken returns the admin token stored at path, creating
// it (mode 0600) on first use. A token file readable by group or others is
// refused.
func LoadOrCreateBootstrapToken(path string, writeSecret func(string, []byte) error) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		tok, err := NewToken()
		if err != nil {
			return "", err
		}
		if err := writeSecret(path, []byte(tok+"\n")); err != nil {
			return "", err
		}
		return tok, nil
	}
	if err != nil {
		return "", fmt.Errorf("couldn't read admin token: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("couldn't stat admin token: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %#o; it holds a secret and must not be readable by group or others (chmod 600)", path, st.Mode().Perm())
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return tok, nil
}
