package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// ErrOtherVault is returned by CopyStore when the destination already
// holds another vault's keyring.
var ErrOtherVault = errors.New("vault: the destination holds another vault's keyring")

// CopyStore copies every value of src, then its keyring, into dst: moving
// a vault to another store, as when a log moves from the embedded storage
// to the aws one. Nothing is decrypted: the ciphertexts and the wrapped
// keys move as they are, so the same master key opens dst. Run it with no
// vault open on either store. It resumes an interrupted copy (values are
// written again, a keyring equal to src's is kept); a dst with another
// keyring is refused with ErrOtherVault. It returns how many values it
// copied.
func CopyStore(ctx context.Context, dst, src Store) (int, error) {
	doc, _, ok, err := src.ReadKeyring(ctx)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errors.New("vault: the source store holds no keyring")
	}
	have, ver, dstOK, err := dst.ReadKeyring(ctx)
	if err != nil {
		return 0, err
	}
	if dstOK && !bytes.Equal(have, doc) {
		return 0, ErrOtherVault
	}
	const chunk = 500
	var ops []Op
	values := 0
	flush := func() error {
		if err := dst.Write(ctx, ops); err != nil {
			return fmt.Errorf("copying vault values: %w", err)
		}
		ops = ops[:0]
		return nil
	}
	err = src.Scan(ctx, nil, func(k, v []byte) error {
		if len(k) > 0 && k[0] == 'v' {
			values++
		}
		ops = append(ops, Op{Kind: OpSet, Key: bytes.Clone(k), Value: bytes.Clone(v)})
		if len(ops) == chunk {
			return flush()
		}
		return nil
	})
	if err == nil && len(ops) > 0 {
		err = flush()
	}
	if err != nil {
		return values, err
	}
	// The keyring last: dst holds a vault only once it holds every value.
	if !dstOK {
		if _, err := dst.WriteKeyring(ctx, doc, ver); err != nil {
			return values, fmt.Errorf("copying the vault keyring: %w", err)
		}
	}
	return values, nil
}
