// Command drcheck proves that a restored log is consistent with the last
// checkpoint its witnesses cosigned: the disaster-recovery check of
// deploy/RUNBOOK.md.
//
//	drcheck --log-key log.pub --witness-policy policy.txt --log URL|DIR WITNESSED...
//
// --log is the restored log's tlog-tiles root: a URL (http://HOST:8080/log/)
// or, before starting anything, the restored data dir's log/ directory.
// Each WITNESSED file is a checkpoint a witness returned from
// GET /<sha256(origin)>/checkpoint. drcheck checks that each carries a valid
// log signature and a valid cosignature from a witness of the policy, takes
// the largest, reads the restored log's checkpoint (log signature checked),
// and then, from the restored tiles alone, builds a consistency proof from
// the witnessed tree to the restored one and verifies it against both
// signed roots (RFC 6962 hashing, github.com/transparency-dev/merkle). The
// proof is built from the restored tiles, never asked of a server.
//
// Exit status: 0 consistent; 1 not (the restored log is behind the witnessed
// checkpoint, or forks from it, or a signature fails); 2 usage or I/O error.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	f_log "github.com/transparency-dev/formats/log"
	f_note "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// errInconsistent marks a verification failure (exit 1), as opposed to a
// usage or I/O error (exit 2).
var errInconsistent = errors.New("not consistent")

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, errInconsistent):
		fmt.Fprintln(os.Stderr, "drcheck: FAIL:", err)
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "drcheck:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("drcheck", flag.ContinueOnError)
	logKeyFile := fs.String("log-key", "", "file holding the log's verifier key (log.pub)")
	policyFile := fs.String("witness-policy", "", "witness policy (provlogd --witness-policy format); its witness lines name the cosigners to trust")
	logLoc := fs.String("log", "", "the restored log's tlog-tiles root: http(s) URL ending in /log/, or a directory (DATA/log)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: drcheck --log-key log.pub --witness-policy policy.txt --log URL|DIR WITNESSED-CHECKPOINT...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *logKeyFile == "" || *policyFile == "" || *logLoc == "" || fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("--log-key, --witness-policy, --log and at least one witnessed checkpoint are required")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	vkey, err := os.ReadFile(*logKeyFile)
	if err != nil {
		return fmt.Errorf("couldn't read the log key: %w", err)
	}
	logV, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return fmt.Errorf("couldn't parse the log key: %w", err)
	}
	policy, err := os.ReadFile(*policyFile)
	if err != nil {
		return fmt.Errorf("couldn't read the witness policy: %w", err)
	}
	witnesses, err := witnessVerifiers(policy)
	if err != nil {
		return err
	}

	// The largest checkpoint any trusted witness cosigned.
	var witnessed *f_log.Checkpoint
	for _, f := range fs.Args() {
		raw, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("couldn't read witnessed checkpoint: %w", err)
		}
		cp, by, err := verifyWitnessed(raw, logV, witnesses)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", errInconsistent, f, err)
		}
		fmt.Fprintf(out, "witnessed: %s size %d root %x, cosigned by %s\n", f, cp.Size, cp.Hash, strings.Join(by, ", "))
		if witnessed == nil || cp.Size > witnessed.Size {
			witnessed = cp
		}
	}

	tiles, readCheckpoint, err := fetcher(*logLoc)
	if err != nil {
		return err
	}
	raw, err := readCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read the restored log's checkpoint: %w", err)
	}
	restored, _, _, err := f_log.ParseCheckpoint(raw, logV.Name(), logV)
	if err != nil {
		return fmt.Errorf("%w: the restored log's checkpoint: %w", errInconsistent, err)
	}
	fmt.Fprintf(out, "restored:  size %d root %x\n", restored.Size, restored.Hash)

	switch {
	case restored.Size < witnessed.Size:
		return fmt.Errorf("%w: the restored log (size %d) is behind the witnessed checkpoint (size %d): entries %d..%d are missing from this copy",
			errInconsistent, restored.Size, witnessed.Size, restored.Size, witnessed.Size-1)
	case restored.Size == witnessed.Size:
		if !bytes.Equal(restored.Hash, witnessed.Hash) {
			return fmt.Errorf("%w: same size %d, different roots: the restored log forks from the witnessed one", errInconsistent, restored.Size)
		}
	default:
		pb, err := client.NewProofBuilder(ctx, restored.Size, tiles)
		if err != nil {
			return fmt.Errorf("couldn't start building proofs: %w", err)
		}
		p, err := pb.ConsistencyProof(ctx, witnessed.Size, restored.Size)
		if err != nil {
			return fmt.Errorf("couldn't build the consistency proof from the restored tiles: %w", err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, witnessed.Size, restored.Size, p, witnessed.Hash, restored.Hash); err != nil {
			return fmt.Errorf("%w: consistency proof %d -> %d: %w", errInconsistent, witnessed.Size, restored.Size, err)
		}
	}
	fmt.Fprintf(out, "OK: the restored log (size %d) is consistent with the witnessed checkpoint (size %d)\n", restored.Size, witnessed.Size)
	return nil
}

// witnessVerifiers returns the cosignature/v1 verifier of every witness
// line of a policy ("witness NAME VKEY [URL]").
func witnessVerifiers(policy []byte) ([]note.Verifier, error) {
	var vs []note.Verifier
	sc := bufio.NewScanner(bytes.NewReader(policy))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "witness" {
			continue
		}
		v, err := f_note.NewVerifierForCosignatureV1(f[2])
		if err != nil {
			return nil, fmt.Errorf("witness policy: witness %s: %w", f[1], err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, errors.New("witness policy names no witness: nothing to check against")
	}
	return vs, nil
}

// verifyWitnessed checks a checkpoint from a witness: signed by the log and
// cosigned by at least one of the witnesses. It returns the cosigners.
func verifyWitnessed(raw []byte, logV note.Verifier, witnesses []note.Verifier) (*f_log.Checkpoint, []string, error) {
	cp, _, _, err := f_log.ParseCheckpoint(raw, logV.Name(), logV)
	if err != nil {
		return nil, nil, fmt.Errorf("log signature: %w", err)
	}
	var by []string
	for _, w := range witnesses {
		if _, err := note.Open(raw, note.VerifierList(w)); err == nil {
			by = append(by, w.Name())
		}
	}
	if len(by) == 0 {
		return nil, nil, errors.New("no valid cosignature from a witness of the policy")
	}
	return cp, by, nil
}

// fetcher reads tiles and the checkpoint over HTTP or from a directory.
func fetcher(loc string) (client.TileFetcherFunc, func(context.Context) ([]byte, error), error) {
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		u, err := url.Parse(loc)
		if err != nil {
			return nil, nil, fmt.Errorf("bad --log URL: %w", err)
		}
		f, err := client.NewHTTPFetcher(u, nil)
		if err != nil {
			return nil, nil, err
		}
		return f.ReadTile, f.ReadCheckpoint, nil
	}
	if fi, err := os.Stat(loc); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("--log %s: not a URL or a directory", loc)
	}
	f := client.FileFetcher{Root: loc}
	return f.ReadTile, f.ReadCheckpoint, nil
}
