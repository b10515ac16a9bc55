// Command provctl is the provlog command line for engines and auditors.
// This first version verifies receipts offline; more subcommands follow.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protojson"
)

// Exit codes a script can rely on.
const (
	exitVerified = 0
	exitFailed   = 1
	exitUsage    = 2
)

const usage = `usage: provctl COMMAND [flags]

commands:
  verify receipt   verify an Append receipt offline

Run "provctl verify receipt -help" for its flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) >= 1 && isAdminCommand(args[0]) { // issue 6: cmd/provctl/admin.go
		return adminCommand(args, stdout, stderr)
	}
	if len(args) >= 2 && args[0] == "verify" && args[1] == "receipt" {
		return verifyReceipt(args[2:], stdin, stdout, stderr)
	}
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, usage)
		return exitVerified
	}
	fmt.Fprint(stderr, usage)
	return exitUsage
}

func verifyReceipt(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("provctl verify receipt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logKey := fs.String("log-key", "", "file holding the log's verifier key (log.pub), or the key itself")
	eventFile := fs.String("event", "", "optional: the event JSON that was appended; the receipt must hold exactly it")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: provctl verify receipt --log-key log.pub [--event event.json] RESPONSE.json|-")
		fmt.Fprintln(stderr, "\nRESPONSE.json is an Append response (REST JSON with a receipt) or a bare receipt.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitVerified
		}
		return exitUsage
	}
	if *logKey == "" || fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	v, err := loadVerifier(*logKey)
	if err != nil {
		fmt.Fprintln(stderr, "provctl:", err)
		return exitUsage
	}
	var in []byte
	if fs.Arg(0) == "-" {
		in, err = io.ReadAll(io.LimitReader(stdin, 64<<20))
	} else {
		in, err = os.ReadFile(fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(stderr, "provctl:", err)
		return exitUsage
	}
	r, err := parseReceipt(in)
	if err != nil {
		fmt.Fprintln(stderr, "provctl:", err)
		return exitUsage
	}
	var vr *client.VerifiedReceipt
	var verr error
	if *eventFile != "" {
		b, err := os.ReadFile(*eventFile)
		if err != nil {
			fmt.Fprintln(stderr, "provctl:", err)
			return exitUsage
		}
		var ev pb.ProvenanceEvent
		if err := protojson.Unmarshal(b, &ev); err != nil {
			fmt.Fprintf(stderr, "provctl: %s: %v\n", *eventFile, err)
			return exitUsage
		}
		vr, verr = client.VerifyReceiptFor(r, v, &ev)
	} else {
		vr, verr = client.VerifyReceipt(r, v)
	}
	if verr != nil {
		fmt.Fprintln(stdout, "FAILED:", verr)
		return exitFailed
	}
	fmt.Fprintf(stdout, "verified: event %q of tenant %q is leaf %d of %s, in the signed checkpoint of size %d\n",
		vr.Entry.GetEvent().GetEventId(), vr.Entry.GetEvent().GetTenant(), vr.Index, vr.Checkpoint.Origin, vr.Checkpoint.Size)
	return exitVerified
}

func loadVerifier(s string) (note.Verifier, error) {
	key := s
	if b, err := os.ReadFile(s); err == nil {
		key = strings.TrimSpace(string(b))
	}
	v, err := note.NewVerifier(key)
	if err != nil {
		return nil, fmt.Errorf("bad log key %q: %w", s, err)
	}
	return v, nil
}

// parseReceipt accepts an AppendResponse (as REST returns it) or a Receipt.
func parseReceipt(b []byte) (*pb.Receipt, error) {
	var resp pb.AppendResponse
	if err := protojson.Unmarshal(b, &resp); err == nil && resp.GetReceipt() != nil {
		return resp.GetReceipt(), nil
	}
	var r pb.Receipt
	if err := protojson.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("neither an Append response with a receipt nor a receipt: %w", err)
	}
	return &r, nil
}
