package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/provlog/provlog/client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func firstWord(s string) string { w, _, _ := strings.Cut(s, " "); return w }

func joinWords(ws []string) string { return strings.Join(ws, " ") }

// cmdFlags is a command's flag set with the shared flags.
type cmdFlags struct {
	*flag.FlagSet
	e        *env
	synopsis string
	about    string
	output   *string
	outputs  []string
	conn     *client.Settings
	config   *string
	tls      tlsFiles
	args     []string // positional arguments, which may come between flags
}

// tlsFiles are the --tls-ca, --tls-cert and --tls-key flags.
type tlsFiles struct{ ca, cert, key string }

// newFlags makes a command's flag set. outputs lists the -o formats, the
// first being the default.
func newFlags(e *env, name, synopsis, about string, outputs ...string) *cmdFlags {
	fs := flag.NewFlagSet("provctl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	f := &cmdFlags{FlagSet: fs, e: e, synopsis: synopsis, about: about, outputs: outputs}
	if len(outputs) > 0 {
		f.output = fs.String("o", outputs[0], "output format: "+strings.Join(outputs, ", "))
	}
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: provctl %s %s\n\n%s\n", name, synopsis, about)
		fs.PrintDefaults()
	}
	return f
}

// connFlags adds the connection and trust flags.
func (f *cmdFlags) connFlags() {
	f.grpcFlags()
	f.StringVar(&f.conn.HTTP, "http", "", "base URL of provlogd's HTTP listener, for /log/ (env PROVLOG_HTTP; default http://127.0.0.1:8080)")
	f.trustFlags()
}

// grpcFlags adds the gRPC connection flags alone: address, token, TLS and
// the config file.
func (f *cmdFlags) grpcFlags() {
	s := &client.Settings{}
	f.conn = s
	f.StringVar(&s.Addr, "addr", "", "gRPC address of provlogd, host:port (env PROVLOG_ADDR; default 127.0.0.1:8090)")
	f.StringVar(&s.TokenFile, "token-file", "", "file holding the bearer token (env PROVLOG_TOKEN holds the token itself; default ./provlog-data/admin.token)")
	f.BoolVar(&s.TLS, "tls", false, "use TLS (system roots) for gRPC (env PROVLOG_TLS=1)")
	f.StringVar(&f.tls.ca, "tls-ca", "", "PEM CA bundle to verify provlogd's certificate with, instead of the system roots (implies --tls)")
	f.StringVar(&f.tls.cert, "tls-cert", "", "PEM client certificate for mTLS (with --tls-key; implies --tls)")
	f.StringVar(&f.tls.key, "tls-key", "", "PEM key of --tls-cert")
	f.config = f.String("config", "", "config file (JSON: addr, http, token_file, log_key_file, witness_policy_file, tls; env PROVLOG_CONFIG)")
}

// tlsConfig is the TLS configuration the --tls-* flags ask for, or nil
// when they are unset (then --tls or PROVLOG_TLS alone choose the system
// roots, or plaintext).
func (f *cmdFlags) tlsConfig() (*tls.Config, error) {
	t := f.tls
	if t.ca == "" && t.cert == "" && t.key == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.ca != "" {
		pem, err := os.ReadFile(t.ca)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", t.ca)
		}
	}
	if (t.cert == "") != (t.key == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if t.cert != "" {
		cert, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// trustFlags adds the log key and witness policy flags alone.
func (f *cmdFlags) trustFlags() {
	if f.conn == nil {
		f.conn = &client.Settings{}
	}
	f.Var(keyFlag{f.conn}, "log-key", "the log's verifier key, or a file holding it (log.pub) (env PROVLOG_LOG_KEY; default ./provlog-data/log.pub)")
	f.StringVar(&f.conn.WitnessPolicyFile, "witness-policy", "", "witness policy file: checkpoints need its quorum of cosignatures (env PROVLOG_WITNESS_POLICY)")
}

// keyFlag takes a key or a file name.
type keyFlag struct{ s *client.Settings }

func (k keyFlag) String() string { return "" }

func (k keyFlag) Set(v string) error {
	if _, err := os.Stat(v); err == nil {
		k.s.LogKeyFile = v
	} else {
		k.s.LogKey = v
	}
	return nil
}

// parse parses args; it returns false and the exit code when the command
// must stop (help: 0, bad usage: 2). nargs is the number of positional
// arguments allowed: exact when >= 0, -1 for any.
// Flags may come before, between or after the positional arguments; "--"
// ends the flags.
func (f *cmdFlags) parse(args []string, minArgs, maxArgs int) (int, bool) {
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitVerified, false
			}
			return exitUsage, false
		}
		rest := f.FlagSet.Args()
		if len(rest) == 0 {
			break
		}
		if len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			f.args = append(f.args, rest...)
			break
		}
		f.args, args = append(f.args, rest[0]), rest[1:]
	}
	if f.NArg() < minArgs || maxArgs >= 0 && f.NArg() > maxArgs {
		f.Usage()
		return exitUsage, false
	}
	if f.output != nil {
		ok := false
		for _, o := range f.outputs {
			ok = ok || *f.output == o
		}
		if !ok {
			fmt.Fprintf(f.e.stderr, "provctl: -o %q: want one of %s\n", *f.output, strings.Join(f.outputs, ", "))
			return exitUsage, false
		}
	}
	return 0, true
}

// NArg, Arg and Args are the positional arguments (flag.FlagSet's stop at
// the first one).
func (f *cmdFlags) NArg() int { return len(f.args) }

func (f *cmdFlags) Arg(i int) string {
	if i < 0 || i >= len(f.args) {
		return ""
	}
	return f.args[i]
}

func (f *cmdFlags) Args() []string { return f.args }

func (f *cmdFlags) json() bool { return f.output != nil && *f.output == "json" }

// resolve resolves the connection settings.
func (f *cmdFlags) resolve() (client.Config, error) {
	path := ""
	if f.config != nil {
		path = *f.config
	}
	return client.ResolveConfig(*f.conn, path, f.e.getenv)
}

// policy resolves the trust settings alone.
func (f *cmdFlags) policy() (*client.Policy, error) {
	cfg, err := f.resolve()
	if err != nil {
		return nil, err
	}
	return cfg.Policy()
}

// dial resolves the settings and makes a client.
func (f *cmdFlags) dial(opts client.Options) (*client.Client, error) {
	cfg, err := f.resolve()
	if err != nil {
		return nil, err
	}
	p, err := cfg.Policy()
	if err != nil {
		return nil, err
	}
	if opts.TLS == nil {
		if opts.TLS, err = f.tlsConfig(); err != nil {
			return nil, err
		}
	}
	return client.New(cfg, p, opts)
}

// fail prints err and returns its exit code: 1 when it is a verification
// failure, 2 otherwise.
func (f *cmdFlags) fail(err error) int {
	code := exitCode(err)
	if f.json() {
		writeJSON(f.e.stdout, map[string]any{"verified": false, "error": err.Error(), "exit_code": code})
	}
	if code == exitFailed {
		fmt.Fprintln(f.e.stderr, "FAILED:", err)
	} else {
		fmt.Fprintln(f.e.stderr, "provctl:", describe(err))
	}
	return code
}

func exitCode(err error) int {
	if errors.Is(err, client.ErrVerification) {
		return exitFailed
	}
	var a client.Alert
	if errors.As(err, &a) {
		return exitFailed
	}
	return exitUsage
}

// describe adds a hint to connection errors.
func describe(err error) string {
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unavailable {
		return err.Error() + " (is provlogd running? set --addr or PROVLOG_ADDR)"
	}
	return err.Error()
}

func writeJSON(w io.Writer, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(w, "{\"error\": %q}\n", err.Error())
		return
	}
	w.Write(append(b, '\n'))
}

var pj = protojson.MarshalOptions{UseProtoNames: false, EmitUnpopulated: false}

// protoJSON renders m for embedding in a JSON output.
func protoJSON(m proto.Message) json.RawMessage {
	b, err := pj.Marshal(m)
	if err != nil {
		return json.RawMessage(fmt.Sprintf("{\"error\": %q}", err.Error()))
	}
	return b
}

// readInput reads a file, or stdin for "-".
func readInput(e *env, name string, limit int64) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return b, nil
}
