package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/provlog/provlog/log/ledger"
	"golang.org/x/mod/sumdb/note"
)

// loadNextKey loads the checkpoint key that --log-next-key names, for the
// overlap of a checkpoint key rotation, creating it (and FILE.pub, its
// verifier key) for origin when missing. It must sign for the log's origin.
func loadNextKey(path, origin string) (note.Signer, string, error) {
	skey, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sk, vk, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			return nil, "", fmt.Errorf("couldn't generate the next log key: %w", err)
		}
		if err := ledger.WriteSecretFile(path, []byte(sk+"\n")); err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(path+".pub", []byte(vk+"\n"), 0o644); err != nil {
			return nil, "", fmt.Errorf("couldn't write the next log verifier key: %w", err)
		}
		skey = []byte(sk)
	case err != nil:
		return nil, "", fmt.Errorf("couldn't read the next log key: %w", err)
	default:
		if err := ledger.CheckSecretFileMode(path); err != nil {
			return nil, "", err
		}
	}
	s, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, "", fmt.Errorf("couldn't parse %s: %w", path, err)
	}
	if s.Name() != origin {
		return nil, "", fmt.Errorf("%s signs for origin %q, the log's origin is %q: a rotated key keeps the origin", path, s.Name(), origin)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		return nil, "", fmt.Errorf("couldn't read the next log verifier key: %w", err)
	}
	return s, strings.TrimSpace(string(pub)), nil
}
