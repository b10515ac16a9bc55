package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/provlog/provlog/client"
	"github.com/provlog/provlog/log/authorship"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The admin commands call provlogd's AdminService (admin role): tenants,
// tokens, certificate grants and submitter keys. They verify nothing, so
// they exit 0 when the server did what was asked and 2 otherwise: a usage
// or connection error, or a refusal by the server (PermissionDenied,
// NotFound, AlreadyExists, InvalidArgument...), whose gRPC code is printed.
// Exit 1 stays what it is for every command: a verification failure.

// adminCall is one AdminService call.
type adminCall func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error)

// adminCommand makes the command NAME: setup adds the command's own flags
// and returns what builds the call from the nargs positional arguments.
func adminCommand(name, synopsis, about string, nargs int, setup func(f *cmdFlags) func(args []string) (adminCall, error)) func(*env, []string) int {
	return func(e *env, args []string) int {
		f := newFlags(e, name, synopsis, about+"\nCalls provlogd's AdminService with an admin token; exit 2 when the server\nrefuses, with its gRPC code.", "text", "json")
		f.grpcFlags()
		build := setup(f)
		if code, ok := f.parse(args, nargs, nargs); !ok {
			return code
		}
		call, err := build(f.Args())
		if err != nil {
			fmt.Fprintf(e.stderr, "provctl %s: %v\n", name, err)
			return exitUsage
		}
		return f.runAdmin(name, call)
	}
}

// runAdmin connects with the shared settings, makes the call and prints
// the answer.
func (f *cmdFlags) runAdmin(name string, call adminCall) int {
	cfg, err := f.resolve()
	if err != nil {
		return f.fail(err)
	}
	tc, err := f.tlsConfig()
	if err != nil {
		return f.fail(err)
	}
	conn, err := client.Dial(cfg, client.Options{TLS: tc})
	if err != nil {
		return f.fail(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(f.e.ctx, 30*time.Second)
	defer cancel()
	if cfg.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+cfg.Token)
	}
	resp, err := call(ctx, pb.NewAdminServiceClient(conn))
	if err != nil {
		return f.fail(fmt.Errorf("%s: %w", name, err))
	}
	if f.json() {
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(resp)
		if err != nil {
			return f.fail(err)
		}
		fmt.Fprintln(f.e.stdout, string(b))
		return exitVerified
	}
	printAdmin(f.e.stdout, resp)
	return exitVerified
}

// plainAdminCommand makes an admin command with no flags of its own: call
// gets the positional arguments.
func plainAdminCommand(name, synopsis, about string, nargs int, call func(ctx context.Context, c pb.AdminServiceClient, args []string) (proto.Message, error)) func(*env, []string) int {
	return adminCommand(name, synopsis, about, nargs, func(*cmdFlags) func([]string) (adminCall, error) {
		return func(a []string) (adminCall, error) {
			return func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) { return call(ctx, c, a) }, nil
		}
	})
}

// Flags shared by several admin commands.

// tenantPolicyCommand makes "tenant create" and "tenant policy": a tenant
// NAME and the policy flags.
func tenantPolicyCommand(name, about string, call func(ctx context.Context, c pb.AdminServiceClient, tenant string, p *pb.TenantPolicy) (proto.Message, error)) func(*env, []string) int {
	return adminCommand(name, "[--require-signature] [--second-person-overrides] [flags] NAME", about, 1,
		func(f *cmdFlags) func([]string) (adminCall, error) {
			sig := f.Bool("require-signature", false, "every event of the tenant must carry a submitter signature")
			second := f.Bool("second-person-overrides", false, "overrides need a second person's approval")
			return func(a []string) (adminCall, error) {
				p := &pb.TenantPolicy{RequireSignature: *sig, SecondPersonForOverrides: *second}
				return func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
					return call(ctx, c, a[0], p)
				}, nil
			}
		})
}

type grantFlags struct{ roles, tenants, person *string }

func newGrantFlags(f *cmdFlags) grantFlags {
	return grantFlags{
		roles:   f.String("roles", "", "comma-separated roles: appender, reader, auditor, admin (required)"),
		tenants: f.String("tenants", "", "comma-separated tenants, or * for all (required)"),
		person:  f.String("person", "", "the person the credential belongs to: approvals and overrides sent with it must name them"),
	}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func parseTime(flagName, s string) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagName, err)
	}
	return timestamppb.New(t), nil
}

// readPublicKey reads an Ed25519 public key from a file or the value.
func readPublicKey(flagName, v string) ([]byte, error) {
	if b, err := os.ReadFile(v); err == nil {
		v = string(b)
	}
	k, err := authorship.ParsePublicKey(v)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagName, err)
	}
	return k, nil
}

var (
	cmdTenantCreate = tenantPolicyCommand("tenant create", "Creates a tenant with its policy.",
		func(ctx context.Context, c pb.AdminServiceClient, name string, p *pb.TenantPolicy) (proto.Message, error) {
			return c.CreateTenant(ctx, &pb.CreateTenantRequest{Name: name, Policy: p})
		})
	cmdTenantPolicy = tenantPolicyCommand("tenant policy", "Replaces a tenant's policy: an unset flag turns its rule off.",
		func(ctx context.Context, c pb.AdminServiceClient, name string, p *pb.TenantPolicy) (proto.Message, error) {
			return c.SetTenantPolicy(ctx, &pb.SetTenantPolicyRequest{Tenant: name, Policy: p})
		})
	cmdTenantList = plainAdminCommand("tenant list", "[flags]", "Lists the tenants and their policies.", 0,
		func(ctx context.Context, c pb.AdminServiceClient, _ []string) (proto.Message, error) {
			return c.ListTenants(ctx, &pb.ListTenantsRequest{})
		})
	cmdTokenCreate = adminCommand("token create", "--name NAME --roles R1,R2 --tenants T1,T2|* [--person ID] [--ttl D] [flags]",
		"Creates a bearer token and prints its secret, which is shown only once\n(the server keeps only its hash).", 0,
		func(f *cmdFlags) func([]string) (adminCall, error) {
			name := f.String("name", "", "who holds the token; the identity is token:NAME (required)")
			g := newGrantFlags(f)
			ttl := f.Duration("ttl", 0, "token lifetime (0: no expiry)")
			return func([]string) (adminCall, error) {
				req := &pb.CreateTokenRequest{Name: *name, Roles: splitList(*g.roles), Tenants: splitList(*g.tenants), Person: *g.person}
				if *ttl < 0 {
					return nil, fmt.Errorf("--ttl %v: want a positive duration", *ttl)
				}
				if *ttl > 0 {
					req.ExpireTime = timestamppb.New(time.Now().Add(*ttl))
				}
				return func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
					return c.CreateToken(ctx, req)
				}, nil
			}
		})
	cmdTokenList = plainAdminCommand("token list", "[flags]", "Lists the tokens (never their secrets).", 0,
		func(ctx context.Context, c pb.AdminServiceClient, _ []string) (proto.Message, error) {
			return c.ListTokens(ctx, &pb.ListTokensRequest{})
		})
	cmdTokenRevoke = plainAdminCommand("token revoke", "[flags] TOKEN_ID", "Revokes a token (its id is tok_..., from token list).", 1,
		func(ctx context.Context, c pb.AdminServiceClient, a []string) (proto.Message, error) {
			return c.RevokeToken(ctx, &pb.RevokeTokenRequest{Id: a[0]})
		})
	cmdCertGrant = adminCommand("cert grant", "--subject SAN_OR_CN --roles R1,R2 --tenants T1,T2|* [--person ID] [flags]",
		"Grants roles and tenants to the client certificates (mTLS) with this URI,\nDNS or email SAN or, if none matches, subject common name.", 0,
		func(f *cmdFlags) func([]string) (adminCall, error) {
			subject := f.String("subject", "", "the certificate's URI/DNS/email SAN or CN (required)")
			g := newGrantFlags(f)
			return func([]string) (adminCall, error) {
				req := &pb.GrantCertificateRequest{Subject: *subject, Roles: splitList(*g.roles), Tenants: splitList(*g.tenants), Person: *g.person}
				return func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
					return c.GrantCertificate(ctx, req)
				}, nil
			}
		})
	cmdCertList = plainAdminCommand("cert list", "[flags]", "Lists the certificate grants.", 0,
		func(ctx context.Context, c pb.AdminServiceClient, _ []string) (proto.Message, error) {
			return c.ListCertificateGrants(ctx, &pb.ListCertificateGrantsRequest{})
		})
	cmdCertRevoke = plainAdminCommand("cert revoke", "[flags] SUBJECT", "Revokes a certificate grant.", 1,
		func(ctx context.Context, c pb.AdminServiceClient, a []string) (proto.Message, error) {
			return c.RevokeCertificateGrant(ctx, &pb.RevokeCertificateGrantRequest{Subject: a[0]})
		})
	cmdKeysRegister = adminCommand("keys register", "--tenant T --key-id K --public-key FILE_OR_VALUE [--valid-from RFC3339] [flags]",
		"Registers a tenant's Ed25519 submitter key; the registration is a\nKEY_REGISTER event in the log. Make the key with provctl keys generate\nsubmitter --name K and register K.pub.", 0,
		func(f *cmdFlags) func([]string) (adminCall, error) {
			tenant := f.String("tenant", "", "tenant (required)")
			keyID := f.String("key-id", "", "key id, the signature's key_id (required)")
			pub := f.String("public-key", "", "Ed25519 public key: a file or the value (note verifier key, hex or base64)")
			from := f.String("valid-from", "", "RFC 3339 time the key is valid from (default now)")
			return func([]string) (adminCall, error) {
				k, err := readPublicKey("public-key", *pub)
				if err != nil {
					return nil, err
				}
				t, err := parseTime("valid-from", *from)
				if err != nil {
					return nil, err
				}
				req := &pb.RegisterKeyRequest{Tenant: *tenant, KeyId: *keyID, PublicKey: k, ValidFrom: t}
				return func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
					return c.RegisterKey(ctx, req)
				}, nil
			}
		})
	cmdKeysRotate = adminCommand("keys rotate", "--tenant T --key-id K --new-key-id K2 --new-public-key FILE_OR_VALUE [flags]",
		"Replaces a submitter key by a new one from now on (a KEY_ROTATE event):\nevents timed before keep verifying with the old key.", 0,
		func(f *cmdFlags) func([]string) (adminCall, error) {
			tenant := f.String("tenant", "", "tenant (required)")
			keyID := f.String("key-id", "", "the key being replaced (required)")
			newID := f.String("new-key-id", "", "the replacing key's id (required)")
			newPub := f.String("new-public-key", "", "the replacing public key: a file or the value")
			return func([]string) (adminCall, error) {
				k, err := readPublicKey("new-public-key", *newPub)
				if err != nil {
					return nil, err
				}
				req := &pb.RotateKeyRequest{Tenant: *tenant, KeyId: *keyID, NewKeyId: *newID, NewPublicKey: k}
				return func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
					return c.RotateKey(ctx, req)
				}, nil
			}
		})
	cmdKeysRevoke = adminCommand("keys revoke", "--tenant T --key-id K --reason TEXT [--at RFC3339] [flags]",
		"Revokes a submitter key from --at on (a KEY_REVOKE event): events timed\nfrom then on are refused, events timed before still verify.", 0,
		func(f *cmdFlags) func([]string) (adminCall, error) {
			tenant := f.String("tenant", "", "tenant (required)")
			keyID := f.String("key-id", "", "key id (required)")
			reason := f.String("reason", "", "why the key is revoked")
			at := f.String("at", "", "RFC 3339 time the revocation takes effect (default now)")
			return func([]string) (adminCall, error) {
				t, err := parseTime("at", *at)
				if err != nil {
					return nil, err
				}
				req := &pb.RevokeKeyRequest{Tenant: *tenant, KeyId: *keyID, RevokeTime: t, Reason: *reason}
				return func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
					return c.RevokeKey(ctx, req)
				}, nil
			}
		})
	cmdKeysList = adminCommand("keys list", "--tenant T [flags]", "Lists a tenant's submitter keys with their validity and state.", 0,
		func(f *cmdFlags) func([]string) (adminCall, error) {
			tenant := f.String("tenant", "", "tenant (required)")
			return func([]string) (adminCall, error) {
				return func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
					return c.ListKeys(ctx, &pb.ListKeysRequest{Tenant: *tenant})
				}, nil
			}
		})
)

// printAdmin prints an AdminService answer for people.
func printAdmin(w io.Writer, m proto.Message) {
	switch r := m.(type) {
	case *pb.CreateTenantResponse:
		printTenant(w, r.GetTenant())
	case *pb.SetTenantPolicyResponse:
		printTenant(w, r.GetTenant())
	case *pb.ListTenantsResponse:
		for _, t := range r.GetTenants() {
			printTenant(w, t)
		}
		printCount(w, len(r.GetTenants()), "tenant")
	case *pb.CreateTokenResponse:
		printToken(w, r.GetToken())
		fmt.Fprintf(w, "secret: %s\n(shown only once: store it now)\n", r.GetSecret())
	case *pb.ListTokensResponse:
		for _, t := range r.GetTokens() {
			printToken(w, t)
		}
		printCount(w, len(r.GetTokens()), "token")
	case *pb.RevokeTokenResponse:
		printToken(w, r.GetToken())
	case *pb.GrantCertificateResponse:
		printGrant(w, r.GetGrant())
	case *pb.ListCertificateGrantsResponse:
		for _, g := range r.GetGrants() {
			printGrant(w, g)
		}
		printCount(w, len(r.GetGrants()), "certificate grant")
	case *pb.RevokeCertificateGrantResponse:
		fmt.Fprint(w, "revoked ")
		printGrant(w, r.GetGrant())
	case *pb.RegisterKeyResponse:
		printKey(w, r.GetKey())
	case *pb.RotateKeyResponse:
		printKey(w, r.GetKey())
	case *pb.RevokeKeyResponse:
		printKey(w, r.GetKey())
	case *pb.ListKeysResponse:
		for _, k := range r.GetKeys() {
			printKey(w, k)
		}
		printCount(w, len(r.GetKeys()), "key")
	default:
		fmt.Fprintln(w, protojson.Format(m))
	}
}

func printCount(w io.Writer, n int, what string) {
	s := "s"
	if n == 1 {
		s = ""
	}
	fmt.Fprintf(w, "%d %s%s\n", n, what, s)
}

func fmtTime(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func printTenant(w io.Writer, t *pb.Tenant) {
	p := t.GetPolicy()
	fmt.Fprintf(w, "tenant %s  require_signature=%t second_person_overrides=%t  created %s\n",
		t.GetName(), p.GetRequireSignature(), p.GetSecondPersonForOverrides(), fmtTime(t.GetCreateTime()))
}

func printToken(w io.Writer, t *pb.Token) {
	state := "active"
	switch {
	case t.GetRevokeTime() != nil:
		state = "revoked " + fmtTime(t.GetRevokeTime())
	case t.GetExpireTime() != nil:
		state = "expires " + fmtTime(t.GetExpireTime())
	}
	fmt.Fprintf(w, "token %s  name=%s roles=%s tenants=%s person=%s  %s\n", t.GetId(), t.GetName(),
		strings.Join(t.GetRoles(), ","), strings.Join(t.GetTenants(), ","), orDash(t.GetPerson()), state)
}

func printGrant(w io.Writer, g *pb.CertificateGrant) {
	fmt.Fprintf(w, "certificate %s  roles=%s tenants=%s person=%s\n", g.GetSubject(),
		strings.Join(g.GetRoles(), ","), strings.Join(g.GetTenants(), ","), orDash(g.GetPerson()))
}

func printKey(w io.Writer, k *pb.SubmitterKey) {
	fmt.Fprintf(w, "key %s/%s  %s  valid %s .. %s", k.GetTenant(), k.GetKeyId(), k.GetState(),
		fmtTime(k.GetValidFrom()), fmtTime(k.GetValidUntil()))
	if k.GetReplacedBy() != "" {
		fmt.Fprintf(w, "  replaced by %s", k.GetReplacedBy())
	}
	fmt.Fprintf(w, "  ed25519:%s\n", base64.StdEncoding.EncodeToString(k.GetPublicKey()))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
