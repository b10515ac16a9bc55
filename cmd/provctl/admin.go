package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/provlog/provlog/log/authorship"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// adminUsage is the help of the admin commands (AdminService, admin role).
const adminUsage = `usage: provctl tenant|token|cert|keys SUBCOMMAND [flags] [ARGS]

  tenant create NAME [--require-signature] [--second-person-overrides]
  tenant list
  tenant policy NAME [--require-signature] [--second-person-overrides]
  token create --name NAME --roles appender,reader,auditor,admin --tenants T1,T2|* [--person ID] [--ttl 720h]
  token list
  token revoke TOKEN_ID
  cert grant --subject SAN_OR_CN --roles ... --tenants ... [--person ID]
  cert list
  cert revoke SUBJECT
  keys register --tenant T --key-id K --public-key FILE_OR_VALUE [--valid-from RFC3339]
  keys rotate --tenant T --key-id K --new-key-id K2 --new-public-key FILE_OR_VALUE
  keys revoke --tenant T --key-id K --reason TEXT [--at RFC3339]
  keys list --tenant T

Every command calls provlogd's AdminService and prints the answer as JSON;
"token create" prints the secret, shown only once. Make submitter keys with
"provctl keys generate submitter --name KEY_ID" and register NAME.pub.
Connection flags, for each command:
  --server ADDR      provlogd gRPC address (default $PROVLOG_ADDR, else 127.0.0.1:8090)
  --token-file FILE  bearer token file (default $PROVLOG_TOKEN, else ./provlog-data/admin.token)
  --tls-ca FILE      CA of provlogd's TLS certificate (TLS is off without it)
  --tls-cert FILE, --tls-key FILE   client certificate (mTLS)
`

// isAdminCommand reports whether args[0] names an admin command.
func isAdminCommand(cmd string) bool {
	switch cmd {
	case "tenant", "token", "cert", "keys":
		return true
	}
	return false
}

// adminConn is the connection flags shared by admin commands.
type adminConn struct {
	server, tokenFile, tlsCA, tlsCert, tlsKey string
	getenv                                    func(string) string
}

func (c *adminConn) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "provlogd gRPC address (default $PROVLOG_ADDR, else 127.0.0.1:8090)")
	fs.StringVar(&c.tokenFile, "token-file", "", "bearer token file (default $PROVLOG_TOKEN, else ./provlog-data/admin.token)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "CA of provlogd's TLS certificate (TLS is off without it)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "client certificate (mTLS)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "client certificate key (mTLS)")
}

type bearerCreds string

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (b bearerCreds) RequireTransportSecurity() bool { return false }

func (c *adminConn) dial() (pb.AdminServiceClient, func(), error) {
	var tok string
	switch {
	case c.tokenFile != "":
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, nil, err
		}
		tok = strings.TrimSpace(string(b))
	case c.getenv("PROVLOG_TOKEN") != "":
		tok = c.getenv("PROVLOG_TOKEN")
	default:
		if b, err := os.ReadFile("provlog-data/admin.token"); err == nil {
			tok = strings.TrimSpace(string(b))
		}
	}
	creds := insecure.NewCredentials()
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", c.tlsCA)
		}
		tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if c.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
			if err != nil {
				return nil, nil, fmt.Errorf("client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(tc)
	} else if c.tlsCert != "" {
		return nil, nil, errors.New("--tls-cert needs --tls-ca")
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if tok != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerCreds(tok)))
	}
	addr := cmp.Or(c.server, c.getenv("PROVLOG_ADDR"), "127.0.0.1:8090")
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, nil, err
	}
	return pb.NewAdminServiceClient(conn), func() { conn.Close() }, nil
}

// adminCommand runs "provctl tenant|token|cert|keys ...".
func adminCommand(e *env, args []string) int {
	stdout, stderr := e.stdout, e.stderr
	if len(args) < 2 || args[1] == "-h" || args[1] == "-help" || args[1] == "--help" {
		fmt.Fprint(stderr, adminUsage)
		if len(args) >= 2 {
			return exitVerified
		}
		return exitUsage
	}
	name := args[0] + " " + args[1]
	fs := flag.NewFlagSet("provctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	conn := adminConn{getenv: e.getenv}
	conn.register(fs)
	var (
		requireSig   = fs.Bool("require-signature", false, "tenant policy: every event must be signed")
		secondPerson = fs.Bool("second-person-overrides", false, "tenant policy: overrides need a second person's approval")
		tokName      = fs.String("name", "", "token name")
		roles        = fs.String("roles", "", "comma-separated roles")
		tenants      = fs.String("tenants", "", "comma-separated tenants, or *")
		person       = fs.String("person", "", "the person the credential belongs to")
		ttl          = fs.Duration("ttl", 0, "token lifetime (0: no expiry)")
		subject      = fs.String("subject", "", "certificate URI/DNS/email SAN or CN")
		tenant       = fs.String("tenant", "", "tenant")
		keyID        = fs.String("key-id", "", "key id")
		publicKey    = fs.String("public-key", "", "Ed25519 public key: a file or the value (hex or base64)")
		newKeyID     = fs.String("new-key-id", "", "the replacing key's id")
		newPublicKey = fs.String("new-public-key", "", "the replacing public key: a file or the value")
		validFrom    = fs.String("valid-from", "", "RFC 3339 time the key is valid from (default now)")
		at           = fs.String("at", "", "RFC 3339 time the revocation takes effect (default now)")
		reason       = fs.String("reason", "", "why the key is revoked")
	)
	// Flags may come before or after the positional argument.
	var positional []string
	for rest := args[2:]; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitVerified
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional, rest = append(positional, fs.Arg(0)), fs.Args()[1:]
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "provctl %s: "+format+"\n", append([]any{name}, a...)...)
		return exitUsage
	}
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	parseTime := func(flagName, s string) (*timestamppb.Timestamp, error) {
		if s == "" {
			return nil, nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagName, err)
		}
		return timestamppb.New(t), nil
	}
	readKey := func(flagName, v string) ([]byte, error) {
		if b, err := os.ReadFile(v); err == nil {
			v = string(b)
		}
		k, err := authorship.ParsePublicKey(v)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagName, err)
		}
		return k, nil
	}
	var call func(context.Context, pb.AdminServiceClient) (proto.Message, error)
	usedArg := false
	arg := func() (string, bool) {
		usedArg = true
		if len(positional) != 1 {
			return "", false
		}
		return positional[0], true
	}
	switch name {
	case "tenant create", "tenant policy":
		n, ok := arg()
		if !ok {
			return usageErr("one tenant NAME is required")
		}
		pol := &pb.TenantPolicy{RequireSignature: *requireSig, SecondPersonForOverrides: *secondPerson}
		if name == "tenant create" {
			call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
				return c.CreateTenant(ctx, &pb.CreateTenantRequest{Name: n, Policy: pol})
			}
		} else {
			call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
				return c.SetTenantPolicy(ctx, &pb.SetTenantPolicyRequest{Tenant: n, Policy: pol})
			}
		}
	case "tenant list":
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.ListTenants(ctx, &pb.ListTenantsRequest{})
		}
	case "token create":
		req := &pb.CreateTokenRequest{Name: *tokName, Roles: split(*roles), Tenants: split(*tenants), Person: *person}
		if *ttl > 0 {
			req.ExpireTime = timestamppb.New(time.Now().Add(*ttl))
		}
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.CreateToken(ctx, req)
		}
	case "token list":
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.ListTokens(ctx, &pb.ListTokensRequest{})
		}
	case "token revoke":
		id, ok := arg()
		if !ok {
			return usageErr("one TOKEN_ID is required")
		}
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.RevokeToken(ctx, &pb.RevokeTokenRequest{Id: id})
		}
	case "cert grant":
		req := &pb.GrantCertificateRequest{Subject: *subject, Roles: split(*roles), Tenants: split(*tenants), Person: *person}
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.GrantCertificate(ctx, req)
		}
	case "cert list":
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.ListCertificateGrants(ctx, &pb.ListCertificateGrantsRequest{})
		}
	case "cert revoke":
		s, ok := arg()
		if !ok {
			return usageErr("one SUBJECT is required")
		}
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.RevokeCertificateGrant(ctx, &pb.RevokeCertificateGrantRequest{Subject: s})
		}
	case "keys register":
		pub, err := readKey("public-key", *publicKey)
		if err != nil {
			return usageErr("%v", err)
		}
		from, err := parseTime("valid-from", *validFrom)
		if err != nil {
			return usageErr("%v", err)
		}
		req := &pb.RegisterKeyRequest{Tenant: *tenant, KeyId: *keyID, PublicKey: pub, ValidFrom: from}
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.RegisterKey(ctx, req)
		}
	case "keys rotate":
		pub, err := readKey("new-public-key", *newPublicKey)
		if err != nil {
			return usageErr("%v", err)
		}
		req := &pb.RotateKeyRequest{Tenant: *tenant, KeyId: *keyID, NewKeyId: *newKeyID, NewPublicKey: pub}
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.RotateKey(ctx, req)
		}
	case "keys revoke":
		t, err := parseTime("at", *at)
		if err != nil {
			return usageErr("%v", err)
		}
		req := &pb.RevokeKeyRequest{Tenant: *tenant, KeyId: *keyID, RevokeTime: t, Reason: *reason}
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.RevokeKey(ctx, req)
		}
	case "keys list":
		call = func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
			return c.ListKeys(ctx, &pb.ListKeysRequest{Tenant: *tenant})
		}
	default:
		fmt.Fprint(stderr, adminUsage)
		return exitUsage
	}

	if !usedArg && len(positional) > 0 {
		return usageErr("unexpected arguments %q", positional)
	}
	client, closeConn, err := conn.dial()
	if err != nil {
		fmt.Fprintln(stderr, "provctl:", err)
		return exitUsage
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := call(ctx, client)
	if err != nil {
		st, _ := status.FromError(err)
		fmt.Fprintf(stderr, "provctl %s: %s: %s\n", name, st.Code(), st.Message())
		return exitFailed
	}
	b, err := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
	if err != nil {
		fmt.Fprintln(stderr, "provctl:", err)
		return exitFailed
	}
	fmt.Fprintln(stdout, string(b))
	return exitVerified
}

// generateKey writes a new Ed25519 submitter key: PREFIX.key (the 32-byte
// seed, base64, mode 0600) and PREFIX.pub (the public key, base64), for
// "keys register" and for signing events (authorship.Sign).
