// Command provctl is the provlog command line for engines, auditors and
// monitors. Everything it reads from a log it verifies itself, trusting
// nothing but the log's public key and the witness policy.
//
// Exit codes: 0 verified (or done), 1 verification failed (a proof, a
// signature, a quorum, a consistency check, a tampered leaf), 2 usage,
// input or connection error.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes a script can rely on.
const (
	exitVerified = 0
	exitFailed   = 1
	exitUsage    = 2
)

const usage = `usage: provctl COMMAND [flags]

commands:
  append           append events (one JSON event, or NDJSON batches)
  get              fetch a leaf with its inclusion proof, verified
  verify receipt   verify an Append receipt offline
  verify event     check that an event is in the log, byte for byte
  verify bundle    verify an evidence bundle offline
  trace            lineage of an asset, event or run, every edge verified
  bundle export    write an evidence bundle for a record, an event or a run
  bundle verify    verify an evidence bundle offline (same as verify bundle)
  monitor          follow the log's checkpoints, alert on inconsistency
  audit            replay the whole log from its tiles and check everything
  keys generate    generate log, witness or submitter Ed25519 keys

admin commands (AdminService, admin token; exit 2 when the server refuses):
  tenant create    create a tenant with its policy
  tenant list      list tenants
  tenant policy    set a tenant's policy
  token create     create a bearer token; its secret is shown once
  token list       list tokens (never their secrets)
  token revoke     revoke a token
  cert grant       grant roles to a client certificate subject (mTLS)
  cert list        list certificate grants
  cert revoke      revoke a certificate grant
  keys register    register a submitter key (a key event in the log)
  keys rotate      replace a submitter key by a new one
  keys revoke      revoke a submitter key from a time on
  keys list        list a tenant's submitter keys

Run "provctl COMMAND -help" for a command's flags. Exit codes: 0 verified,
1 verification failed, 2 usage, input or connection error.

Connection settings come from flags, then PROVLOG_ADDR, PROVLOG_HTTP,
PROVLOG_TOKEN, PROVLOG_LOG_KEY, PROVLOG_WITNESS_POLICY, then the config
file (--config, PROVLOG_CONFIG or ~/.config/provlog/provctl.json), then a
local provlogd's defaults (127.0.0.1:8090, http://127.0.0.1:8080,
./provlog-data/admin.token and log.pub).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command runs with.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

type command struct {
	name string
	run  func(e *env, args []string) int
}

var commands = []command{
	{"append", cmdAppend},
	{"get", cmdGet},
	{"verify receipt", cmdVerifyReceipt},
	{"verify event", cmdVerifyEvent},
	{"verify bundle", cmdVerifyBundle},
	{"trace", cmdTrace},
	{"bundle export", cmdBundleExport},
	{"bundle verify", cmdVerifyBundle},
	{"monitor", cmdMonitor},
	{"audit", cmdAudit},
	{"keys generate", cmdKeysGenerate},
	{"tenant create", cmdTenantCreate},
	{"tenant list", cmdTenantList},
	{"tenant policy", cmdTenantPolicy},
	{"token create", cmdTokenCreate},
	{"token list", cmdTokenList},
	{"token revoke", cmdTokenRevoke},
	{"cert grant", cmdCertGrant},
	{"cert list", cmdCertList},
	{"cert revoke", cmdCertRevoke},
	{"keys register", cmdKeysRegister},
	{"keys rotate", cmdKeysRotate},
	{"keys revoke", cmdKeysRevoke},
	{"keys list", cmdKeysList},
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(&env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}, args)
}

func runEnv(e *env, args []string) int {
	for _, c := range commands {
		n := 1
		if c.name != firstWord(c.name) {
			n = 2
		}
		if len(args) >= n && joinWords(args[:n]) == c.name {
			return c.run(e, args[n:])
		}
	}
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(e.stdout, usage)
		return exitVerified
	}
	if len(args) > 0 {
		fmt.Fprintf(e.stderr, "provctl: unknown command %q\n\n", joinWords(args[:min(2, len(args))]))
	}
	fmt.Fprint(e.stderr, usage)
	return exitUsage
}
