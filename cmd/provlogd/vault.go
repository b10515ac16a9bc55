package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/server"
	"github.com/provlog/provlog/log/vault"
)

// vaultFlags are the settings of the vault for sensitive values.
type vaultFlags struct {
	MasterKey         string
	NewMasterKey      string
	Policy            string
	RetentionInterval time.Duration
}

func (v *vaultFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&v.MasterKey, "vault-master-key", "", "master key file (64 hex digits, mode 0600) of the vault that keeps sensitive values encrypted in DATA/vault (--storage aws: in the --mysql-dsn database; give every frontend the same file); created when missing and the vault is new. Without it, events with sensitive values are refused")
	fs.StringVar(&v.NewMasterKey, "vault-new-master-key", "", "rotate the vault master key at startup: re-wrap every data key under this key file (created when missing), then run with it; pass it as --vault-master-key from then on")
	fs.StringVar(&v.Policy, "vault-policy", "", "sensitive-data policy file (JSON, see log/vault Policy): per tenant, which roles read each classification, retention (shred or archive after N days) and fields always sensitive; default: auditors and admins read everything, nothing expires")
	fs.DurationVar(&v.RetentionInterval, "vault-retention-interval", time.Hour, "how often the vault retention job runs")
}

// openVault opens DATA/vault when --vault-master-key is set. A wrong master
// key fails here, at startup.
func openVault(cfg config, log *slog.Logger) (*vault.Vault, *vault.Policy, error) {
	v := cfg.Vault
	if v.MasterKey == "" {
		if v.NewMasterKey != "" || v.Policy != "" {
			return nil, nil, errors.New("--vault-new-master-key and --vault-policy need --vault-master-key")
		}
		return nil, nil, nil
	}
	var policy *vault.Policy
	if v.Policy != "" {
		p, err := vault.ParsePolicy(v.Policy)
		if err != nil {
			return nil, nil, err
		}
		policy = p
	}
	dir := filepath.Join(cfg.DataDir, "vault")
	store, err := openVaultStore(cfg)
	if err != nil {
		return nil, nil, err
	}
	if !vault.MasterKeyFileExists(v.MasterKey) {
		exists, where, err := vaultExists(store, dir)
		if err == nil && exists {
			err = fmt.Errorf("vault master key %s is missing, and %s exists: refusing to make a new key for an existing vault", v.MasterKey, where)
		}
		if err == nil {
			err = vault.CreateMasterKeyFile(v.MasterKey)
		}
		if err != nil {
			if store != nil {
				store.Close()
			}
			return nil, nil, err
		}
		log.Info("created vault master key", "file", v.MasterKey)
	}
	km, err := vault.LoadMasterKeyFile(v.MasterKey)
	if err != nil {
		if store != nil {
			store.Close()
		}
		return nil, nil, err
	}
	vlt, err := vault.Open(vault.Config{Dir: dir, Store: store, Keys: km, RotateEvery: policy.RotateEvery(), Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't open the vault (is %s the right master key?): %w", v.MasterKey, err)
	}
	if v.NewMasterKey != "" {
		if !vault.MasterKeyFileExists(v.NewMasterKey) {
			if err := vault.CreateMasterKeyFile(v.NewMasterKey); err != nil {
				vlt.Close()
				return nil, nil, err
			}
		}
		next, err := vault.LoadMasterKeyFile(v.NewMasterKey)
		if err == nil {
			err = vlt.RotateMasterKey(next)
		}
		if err != nil {
			vlt.Close()
			return nil, nil, fmt.Errorf("couldn't rotate the vault master key: %w", err)
		}
	}
	return vlt, policy, nil
}

// openVaultStore is nil (the embedded store in DATA/vault) under
// --storage posix, and the vault's tables in the --mysql-dsn database
// under --storage aws, shared by every frontend.
func openVaultStore(cfg config) (vault.Store, error) {
	if cfg.Storage != "aws" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := vault.OpenMySQLStore(ctx, cfg.MySQLDSN)
	if err != nil {
		return nil, fmt.Errorf("couldn't open the vault's tables: %w", err)
	}
	return st, nil
}

// vaultExists says whether a vault was already made: its keyring is in the
// shared store, or its directory exists.
func vaultExists(store vault.Store, dir string) (bool, string, error) {
	if store == nil {
		_, err := os.Stat(dir)
		return err == nil, dir, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, ok, err := store.ReadKeyring(ctx)
	if err != nil {
		return false, "", err
	}
	return ok, "the vault keyring in the --mysql-dsn database", nil
}

// migrateVault copies the embedded vault in DATA/vault, if there is one,
// into the vault tables of the database dsn (vault.CopyStore): the same
// master key file opens it there. It returns the values copied, or -1
// when there is no vault.
func migrateVault(ctx context.Context, dataDir, dsn string) (int, error) {
	dir := filepath.Join(dataDir, "vault")
	if _, err := os.Stat(filepath.Join(dir, "keyring.json")); err != nil {
		return -1, nil
	}
	src, err := vault.OpenPebbleStore(dir, nil)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	dst, err := vault.OpenMySQLStore(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	n, err := vault.CopyStore(ctx, dst, src)
	if err != nil {
		return n, fmt.Errorf("couldn't copy the vault: %w", err)
	}
	return n, nil
}

// startRetention runs the retention job now and every interval until the
// returned stop is called. Stop before closing the ledger.
func startRetention(ctx context.Context, l *ledger.Ledger, v *vault.Vault, p *vault.Policy, every time.Duration, log *slog.Logger) (stop func()) {
	if v == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(every, time.Second))
		defer t.Stop()
		for {
			if err := server.RunRetention(ctx, l, v, p, log); err != nil && ctx.Err() == nil {
				log.Error("vault retention failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}
