package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/provlog/provlog/log/auth"
)

// authRefreshEvery is how often a frontend under --storage aws checks the
// shared auth state's version and reloads it when another frontend changed
// it: the longest a token revoked through one frontend keeps working on
// another.
const authRefreshEvery = 500 * time.Millisecond

// openAuthStore opens the admin state (tenants, tokens, certificate
// grants, submitter keys): DATA/auth.json under --storage posix, the
// provlog_auth_state table of the --mysql-dsn database under --storage
// aws, shared by every frontend. The bootstrap admin token (DATA/
// admin.token) stays each frontend's own either way. stop ends the
// refresh loop and closes the store.
func openAuthStore(ctx context.Context, cfg config, adminToken string, log *slog.Logger) (_ *auth.Store, stop func(), err error) {
	file := filepath.Join(cfg.DataDir, auth.StoreFile)
	var st *auth.Store
	if cfg.Storage != "aws" {
		st, err = auth.OpenStore(file, nil)
		if err != nil {
			return nil, nil, err
		}
	} else {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		p, err := auth.OpenMySQLPersistence(octx, cfg.MySQLDSN)
		if err != nil {
			return nil, nil, fmt.Errorf("couldn't open the auth table: %w", err)
		}
		if ver, err := p.Version(octx); err == nil && ver == 0 {
			if _, err := os.Stat(file); err == nil {
				log.Warn("the shared auth state in the database is empty and "+file+" is not used under --storage aws: its tenants, tokens, grants and keys are not served; `provlogd migrate` copies it", "file", file)
			}
		}
		st, err = auth.OpenStoreWith(octx, p, nil)
		if err != nil {
			p.Close()
			return nil, nil, err
		}
	}
	st.AddStatic(adminToken, &auth.Identity{Name: "admin", Roles: []auth.Role{auth.RoleAdmin}, Tenants: []string{auth.AllTenants}})
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.Watch(wctx, authRefreshEvery, log)
	}()
	return st, func() {
		cancel()
		<-done
		st.Close()
	}, nil
}

// errOtherAuthState: the database already holds a different auth state.
var errOtherAuthState = errors.New("the database already holds a different auth state")

// migrateAuth copies DATA/auth.json, if there is one, into the
// provlog_auth_state table of the database dsn, where every frontend
// under --storage aws reads it. Run again, it finds the same state there
// and changes nothing; a different one is refused. It reports whether
// there was a file.
func migrateAuth(ctx context.Context, dataDir, dsn string) (bool, error) {
	src := auth.NewFilePersistence(filepath.Join(dataDir, auth.StoreFile))
	doc, _, err := src.Load(ctx)
	if err != nil {
		return false, err
	}
	if doc == nil {
		return false, nil
	}
	// Parse it first: a file this build cannot read is not copied.
	s, err := auth.OpenStoreWith(ctx, src, nil)
	if err != nil {
		return true, err
	}
	s.Close()
	dst, err := auth.OpenMySQLPersistence(ctx, dsn)
	if err != nil {
		return true, err
	}
	defer dst.Close()
	cur, ver, err := dst.Load(ctx)
	if err != nil {
		return true, err
	}
	if ver != 0 {
		if bytes.Equal(cur, doc) {
			return true, nil
		}
		return true, fmt.Errorf("couldn't copy %s: %w (version %d); refusing to overwrite it", auth.StoreFile, errOtherAuthState, ver)
	}
	if _, err := dst.Save(ctx, doc, 0); err != nil {
		return true, fmt.Errorf("couldn't copy %s: %w", auth.StoreFile, err)
	}
	return true, nil
}
