package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ledger"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/klog/v2"
)

// migrateMain is `provlogd migrate`: it moves the embedded log of a stopped
// provlogd to the aws storage (see ledger.MigrateToAWS) and prints the
// migrated size and root. It returns the exit code.
func migrateMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("provlogd migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "./provlog-data", "data dir of the (stopped) embedded log to migrate; its log.pub verifies the source checkpoint")
	dsn := fs.String("mysql-dsn", "", "destination MySQL/MariaDB DSN (an empty database)")
	endpoint := fs.String("s3-endpoint", "", "destination S3-compatible store URL (path-style); empty means AWS S3")
	bucket := fs.String("s3-bucket", "", "destination bucket (must exist and be empty)")
	workers := fs.Uint("workers", 8, "entry bundles copied in parallel")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: provlogd migrate --data-dir DIR --mysql-dsn DSN --s3-bucket B [--s3-endpoint URL]\n\n"+
			"Copies the embedded log to the aws storage, checks the rebuilt tree has the source checkpoint's root,\n"+
			"and publishes that checkpoint there; copies DATA/vault, if any, into the database as it is (encrypted),\n"+
			"and DATA/auth.json, if any (tenants, tokens, grants, keys; not admin.token). Then start provlogd --storage aws --reindex on the same data dir.\n"+
			"Credentials come from the standard AWS environment.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dsn == "" || *bucket == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	log, _ := newLogger(os.Stderr, "text", "info")
	klog.SetSlogLogger(log)
	pub, err := os.ReadFile(filepath.Join(*dataDir, "log.pub"))
	if err != nil {
		fmt.Fprintln(stderr, "provlogd migrate:", err)
		return 1
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(pub)))
	if err != nil {
		fmt.Fprintln(stderr, "provlogd migrate: log.pub:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cp, err := ledger.MigrateToAWS(ctx, *dataDir, v, ledger.AWSConfig{DSN: *dsn, Endpoint: *endpoint, Bucket: *bucket}, *workers)
	if err != nil {
		fmt.Fprintln(stderr, "provlogd migrate:", err)
		return 1
	}
	fmt.Fprintf(stdout, "migrated %d entries, root %x\n", cp.Size, cp.Hash)
	if n, err := migrateVault(ctx, *dataDir, *dsn); err != nil {
		fmt.Fprintln(stderr, "provlogd migrate:", err)
		return 1
	} else if n >= 0 {
		fmt.Fprintf(stdout, "copied the vault: %d values\n", n)
	}
	if ok, err := migrateAuth(ctx, *dataDir, *dsn); err != nil {
		fmt.Fprintln(stderr, "provlogd migrate:", err)
		return 1
	} else if ok {
		fmt.Fprintf(stdout, "copied %s: tenants, tokens, certificate grants and submitter keys\n", auth.StoreFile)
	}
	return 0
}
