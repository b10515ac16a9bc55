package run

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"

	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// FileURI is the asset URI of a local file: file:// and its absolute path.
func FileURI(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

// ReadFile reads a file and records a READ of it, with its digest, in the
// run of ctx.
func ReadFile(ctx context.Context, path string, fields ...string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if r := FromContext(ctx); r != nil {
		r.record(pb.Operation_OPERATION_READ, []*pb.Asset{{Uri: FileURI(path), Digest: digest(b), Fields: fields}}, nil, nil)
	}
	return b, nil
}

// WriteFile writes a file and records a WRITE of it, with its digest, in
// the run of ctx.
func WriteFile(ctx context.Context, path string, data []byte, perm os.FileMode, fields ...string) error {
	if err := os.WriteFile(path, data, perm); err != nil {
		return err
	}
	if r := FromContext(ctx); r != nil {
		r.record(pb.Operation_OPERATION_WRITE, nil, []*pb.Asset{{Uri: FileURI(path), Digest: digest(data), Fields: fields}}, nil)
	}
	return nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
