package auth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/provlog/provlog/internal/atomicfile"
)

// ErrStateChanged is returned by Persistence.Save when the state is no
// longer at the version the caller read: another process changed it. The
// Store then reloads and applies its change again.
var ErrStateChanged = errors.New("auth state changed since it was read")

// ErrUnavailable is a Persistence that cannot be reached now (its database
// does not answer): nothing changed, and a retry may succeed.
var ErrUnavailable = errors.New("auth state storage unavailable")

// Persistence is where a Store keeps its state: one JSON document with a
// version number. Implementations must be usable concurrently.
//
// The version is 0 when there is no document yet and grows by one with
// every successful Save; Save is a compare-and-swap on it, so that several
// Stores sharing one Persistence (frontends on one database) never lose an
// update.
type Persistence interface {
	// Load returns the document and its version (nil, 0 when none yet).
	Load(ctx context.Context) (doc []byte, version uint64, err error)
	// Version is the current version, cheaply (one indexed read): a Store
	// polls it to learn of changes made by others.
	Version(ctx context.Context) (uint64, error)
	// Save replaces the document if its version is still prev, durably,
	// and returns the new version; ErrStateChanged if it is not.
	Save(ctx context.Context, doc []byte, prev uint64) (uint64, error)
	// Shared reports whether other processes may change the document:
	// then the Store polls Version and reloads on an unknown token.
	Shared() bool
	// Close releases the persistence's resources.
	Close() error
}

// filePersistence is the state in one file (StoreFile in the data dir,
// mode 0600), replaced atomically, owned by one process: its version only
// counts this process's saves since it opened the file.
type filePersistence struct {
	path string

	mu  sync.Mutex
	ver uint64
}

// NewFilePersistence keeps the state in the file at path, owned by this
// process alone (the embedded default: DATA/auth.json).
func NewFilePersistence(path string) Persistence {
	return &filePersistence{path: path}
}

func (p *filePersistence) Load(context.Context) ([]byte, uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := os.ReadFile(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("couldn't read auth store: %w", err)
	}
	st, err := os.Stat(p.path)
	if err != nil {
		return nil, 0, fmt.Errorf("couldn't stat auth store: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, 0, fmt.Errorf("%s has mode %#o; it holds token hashes and must not be readable by group or others (chmod 600)", p.path, st.Mode().Perm())
	}
	if p.ver == 0 {
		p.ver = 1
	}
	return b, p.ver, nil
}

func (p *filePersistence) Version(context.Context) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ver, nil
}

func (p *filePersistence) Save(_ context.Context, doc []byte, prev uint64) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev != p.ver {
		return 0, ErrStateChanged
	}
	if err := atomicfile.Write(p.path, doc, 0o600); err != nil {
		return 0, fmt.Errorf("couldn't save auth store: %w", err)
	}
	p.ver++
	return p.ver, nil
}

func (p *filePersistence) Shared() bool { return false }
func (p *filePersistence) Close() error { return nil }

// String names the file, for errors.
func (p *filePersistence) String() string { return p.path }
