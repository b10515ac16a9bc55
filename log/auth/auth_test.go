package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   string
		wantOK bool
	}{
		{in: "Bearer abc", want: "abc", wantOK: true},
		{in: "bearer abc", want: "abc", wantOK: true},
		{in: "BEARER abc", want: "abc", wantOK: true},
		{in: "bEaReR pl_x-y_z", want: "pl_x-y_z", wantOK: true},
		{in: "Bearer   abc  ", want: "abc", wantOK: true},
		{in: "Bearer abc\t", want: "abc", wantOK: true},
		{in: "", want: "", wantOK: false},
		{in: "Bearer", want: "", wantOK: false},
		{in: "Bearer ", want: "", wantOK: false},
		{in: "Bearer    ", want: "", wantOK: false},
		{in: "Bearerabc", want: "", wantOK: false},
		{in: "Bearer\tabc", want: "", wantOK: false},
		{in: "Basic YWxhZGRpbjpvcGVuc2VzYW1l", want: "", wantOK: false},
		{in: "Token abc", want: "", wantOK: false},
		{in: "abc", want: "", wantOK: false},
		{in: " Bearer abc", want: "", wantOK: false},
	} {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got, ok := BearerToken(tc.in)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestTokensAuthenticate(t *testing.T) {
	const (
		adminTok = "pl_admin-0123456789abcdef"
		acmeTok  = "pl_acme-fedcba9876543210"
	)
	admin := &Identity{Name: "admin", Roles: []Role{RoleAdmin}, Tenants: []string{AllTenants}}
	acme := &Identity{Name: "token:acme", Roles: []Role{RoleAppender}, Tenants: []string{"acme"}}
	ghost := &Identity{Name: "ghost", Roles: []Role{RoleAdmin}, Tenants: []string{AllTenants}}
	tokens := &Tokens{}
	tokens.Add(adminTok, admin)
	tokens.Add(acmeTok, acme)
	// A token registered as "" must never let an empty credential in.
	tokens.Add("", ghost)

	for _, tc := range []struct {
		name  string
		token string
		want  *Identity // nil: ErrUnauthenticated
	}{
		{name: "admin token", token: adminTok, want: admin},
		{name: "acme token", token: acmeTok, want: acme},
		{name: "empty", token: ""},
		{name: "wrong", token: "pl_nobody"},
		{name: "prefix of a right token", token: adminTok[:len(adminTok)-1]},
		{name: "right token plus a byte", token: adminTok + "0"},
		{name: "right token other case", token: strings.ToUpper(adminTok)},
		{name: "right token with spaces", token: " " + adminTok},
		{name: "first byte only", token: adminTok[:1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tokens.Authenticate(t.Context(), tc.token)
			if tc.want == nil {
				if !errors.Is(err, ErrUnauthenticated) || got != nil {
					t.Fatalf("Authenticate(%q) = %+v, %v; want nil, ErrUnauthenticated", tc.token, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate(%q): %v", tc.token, err)
			}
			if got != tc.want {
				t.Errorf("Authenticate(%q) = %+v, want %+v", tc.token, got, tc.want)
			}
		})
	}

	t.Run("empty Tokens", func(t *testing.T) {
		if id, err := (&Tokens{}).Authenticate(t.Context(), adminTok); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("empty Tokens.Authenticate = %+v, %v; want ErrUnauthenticated", id, err)
		}
	})
}

// TestTokensConcurrent is for -race: Add while others Authenticate.
func TestTokensConcurrent(t *testing.T) {
	tokens := &Tokens{}
	id := &Identity{Name: "x", Roles: []Role{RoleReader}, Tenants: []string{"acme"}}
	tokens.Add("pl_first", id)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				if i%2 == 0 {
					tokens.Add(fmt.Sprintf("pl_%d_%d", i, j), id)
					continue
				}
				if got, err := tokens.Authenticate(context.Background(), "pl_first"); err != nil || got != id {
					t.Errorf("Authenticate = %v, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, err := tokens.Authenticate(t.Context(), "pl_6_49"); err != nil || got != id {
		t.Errorf("token added concurrently: Authenticate = %v, %v", got, err)
	}
}

func TestIdentityAllowed(t *testing.T) {
	perms := []Permission{PermAppend, PermRead, PermProof, PermAdmin}
	for _, tc := range []struct {
		name string
		id   *Identity
		want []Permission
	}{
		{name: "nil identity", id: nil},
		{name: "no roles", id: &Identity{Name: "n"}},
		{name: "appender", id: &Identity{Roles: []Role{RoleAppender}}, want: []Permission{PermAppend}},
		{name: "reader", id: &Identity{Roles: []Role{RoleReader}}, want: []Permission{PermRead}},
		{name: "auditor", id: &Identity{Roles: []Role{RoleAuditor}}, want: []Permission{PermRead, PermProof}},
		{name: "admin", id: &Identity{Roles: []Role{RoleAdmin}}, want: perms},
		{name: "unknown role", id: &Identity{Roles: []Role{"superuser"}}},
		{name: "role names are case-sensitive", id: &Identity{Roles: []Role{"Admin"}}},
		{name: "appender+reader", id: &Identity{Roles: []Role{RoleAppender, RoleReader}}, want: []Permission{PermAppend, PermRead}},
		{name: "reader+appender", id: &Identity{Roles: []Role{RoleReader, RoleAppender}}, want: []Permission{PermAppend, PermRead}},
		{name: "unknown then admin", id: &Identity{Roles: []Role{"x", RoleAdmin}}, want: perms},
		{name: "appender+auditor", id: &Identity{Roles: []Role{RoleAppender, RoleAuditor}}, want: []Permission{PermAppend, PermRead, PermProof}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]bool{}
			want := map[string]bool{}
			for _, p := range perms {
				got[p.String()] = tc.id.Allowed(p)
				want[p.String()] = false
			}
			for _, p := range tc.want {
				want[p.String()] = true
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Allowed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPermissionString(t *testing.T) {
	got := []string{PermAppend.String(), PermRead.String(), PermProof.String(), PermAdmin.String(), Permission(0).String(), Permission(42).String()}
	want := []string{"append", "read", "proof", "admin", "permission(0)", "permission(42)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Permission.String (-want +got):\n%s", diff)
	}
}

func TestCanActFor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		id     *Identity
		tenant string
		want   bool
	}{
		{name: "nil identity", id: nil, tenant: "acme", want: false},
		{name: "own tenant", id: &Identity{Tenants: []string{"acme"}}, tenant: "acme", want: true},
		{name: "other tenant", id: &Identity{Tenants: []string{"acme"}}, tenant: "other", want: false},
		{name: "prefix of own tenant", id: &Identity{Tenants: []string{"acme"}}, tenant: "acm", want: false},
		{name: "own tenant is a prefix", id: &Identity{Tenants: []string{"acme"}}, tenant: "acme2", want: false},
		{name: "case matters", id: &Identity{Tenants: []string{"acme"}}, tenant: "ACME", want: false},
		{name: "empty tenant", id: &Identity{Tenants: []string{"acme"}}, tenant: "", want: false},
		{name: "literal star is not a wildcard request", id: &Identity{Tenants: []string{"acme"}}, tenant: AllTenants, want: false},
		{name: "second of two", id: &Identity{Tenants: []string{"acme", "other"}}, tenant: "other", want: true},
		{name: "no tenants", id: &Identity{Roles: []Role{RoleAdmin}}, tenant: "acme", want: false},
		{name: "all tenants", id: &Identity{Tenants: []string{AllTenants}}, tenant: "anything", want: true},
		{name: "all tenants among others", id: &Identity{Tenants: []string{"acme", AllTenants}}, tenant: "zeta", want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.id.CanActFor(tc.tenant); got != tc.want {
				t.Errorf("%+v.CanActFor(%q) = %v, want %v", tc.id, tc.tenant, got, tc.want)
			}
		})
	}
}

func TestNewToken(t *testing.T) {
	re := regexp.MustCompile(`^pl_[A-Za-z0-9_-]{43}$`)
	seen := map[string]bool{}
	for range 100 {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(tok) {
			t.Fatalf("NewToken() = %q, want pl_ and 43 base64url characters (256 bits)", tok)
		}
		if seen[tok] {
			t.Fatalf("NewToken() repeated %q", tok)
		}
		seen[tok] = true
	}
}

// writeSecret0600 stands in for ledger.WriteSecretFile.
func writeSecret0600(path string, data []byte) error {
	return os.WriteFile(path, data, 0o600)
}

func mustNotWrite(t *testing.T) func(string, []byte) error {
	return func(path string, _ []byte) error {
		t.Errorf("writeSecret(%s) called for an existing token", path)
		return errors.New("unexpected write")
	}
}

func TestLoadOrCreateBootstrapToken(t *testing.T) {
	t.Run("creates 0600 then reuses", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "admin.token")
		var writes int
		tok, err := LoadOrCreateBootstrapToken(path, func(p string, b []byte) error {
			writes++
			return writeSecret0600(p, b)
		})
		if err != nil {
			t.Fatal(err)
		}
		if writes != 1 {
			t.Errorf("writeSecret called %d times, want 1", writes)
		}
		if !strings.HasPrefix(tok, "pl_") || len(tok) != 3+43 {
			t.Errorf("token %q is not a NewToken token", tok)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode %#o, want 0600", st.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tok+"\n", string(b)); diff != "" {
			t.Errorf("file content (-want +got):\n%s", diff)
		}
		again, err := LoadOrCreateBootstrapToken(path, mustNotWrite(t))
		if err != nil {
			t.Fatal(err)
		}
		if again != tok {
			t.Errorf("second load = %q, want the first token %q", again, tok)
		}
	})

	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // token, when wantErr is empty
		wantErr string
	}{
		{name: "existing 0600 trimmed", content: "  pl_existing\r\n", mode: 0o600, want: "pl_existing"},
		{name: "existing 0400", content: "pl_ro\n", mode: 0o400, want: "pl_ro"},
		{name: "0644 refused", content: "pl_leaky\n", mode: 0o644, wantErr: "chmod 600"},
		{name: "0640 refused", content: "pl_leaky\n", mode: 0o640, wantErr: "chmod 600"},
		{name: "0604 refused", content: "pl_leaky\n", mode: 0o604, wantErr: "chmod 600"},
		{name: "0700 ok", content: "pl_x\n", mode: 0o700, want: "pl_x"},
		{name: "empty refused", content: " \n", mode: 0o600, wantErr: "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "admin.token")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			got, err := LoadOrCreateBootstrapToken(path, mustNotWrite(t))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadOrCreateBootstrapToken = %q, %v; want an error containing %q", got, err, tc.wantErr)
				}
				if got != "" {
					t.Errorf("token %q returned with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("token = %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("write error is returned", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "admin.token")
		boom := errors.New("disk full")
		tok, err := LoadOrCreateBootstrapToken(path, func(string, []byte) error { return boom })
		if !errors.Is(err, boom) || tok != "" {
			t.Errorf("LoadOrCreateBootstrapToken = %q, %v; want \"\", %v", tok, err, boom)
		}
	})

	t.Run("unreadable path", func(t *testing.T) {
		// A directory where the file should be: not ErrNotExist, so no
		// new token may be written over it.
		path := t.TempDir()
		if _, err := LoadOrCreateBootstrapToken(path, mustNotWrite(t)); err == nil {
			t.Error("LoadOrCreateBootstrapToken on a directory succeeded")
		}
	})
}

const testMethod = "/provlog.v1.LogService/Append"

func testPolicy() Policy {
	return Policy{
		Methods:        map[string]Permission{testMethod: PermAppend, "/provlog.v1.LogService/GetEntry": PermRead},
		Public:         map[string]bool{"/open/Method": true},
		PublicPrefixes: []string{"/grpc.health.v1.Health/"},
	}
}

func TestUnaryInterceptor(t *testing.T) {
	tokens := &Tokens{}
	appender := &Identity{Name: "app", Roles: []Role{RoleAppender}, Tenants: []string{"acme"}}
	reader := &Identity{Name: "rd", Roles: []Role{RoleReader}, Tenants: []string{"acme"}}
	tokens.Add("pl_app", appender)
	tokens.Add("pl_rd", reader)
	ic := UnaryInterceptor(tokens, testPolicy())

	for _, tc := range []struct {
		name     string
		method   string
		md       metadata.MD
		wantCode codes.Code
		wantID   *Identity
	}{
		{name: "allowed", method: testMethod, md: metadata.Pairs("authorization", "Bearer pl_app"), wantCode: codes.OK, wantID: appender},
		{name: "lower-case scheme", method: testMethod, md: metadata.Pairs("authorization", "bearer pl_app"), wantCode: codes.OK, wantID: appender},
		{name: "second authorization value", method: testMethod, md: metadata.Pairs("authorization", "Basic Zm9v", "authorization", "Bearer pl_app"), wantCode: codes.OK, wantID: appender},
		{name: "no metadata", method: testMethod, md: nil, wantCode: codes.Unauthenticated},
		{name: "no token", method: testMethod, md: metadata.Pairs("x-other", "1"), wantCode: codes.Unauthenticated},
		{name: "bad token", method: testMethod, md: metadata.Pairs("authorization", "Bearer pl_nope"), wantCode: codes.Unauthenticated},
		{name: "token without scheme", method: testMethod, md: metadata.Pairs("authorization", "pl_app"), wantCode: codes.Unauthenticated},
		{name: "lacks permission", method: testMethod, md: metadata.Pairs("authorization", "Bearer pl_rd"), wantCode: codes.PermissionDenied},
		{name: "unmapped method", method: "/provlog.v1.LogService/Secret", md: metadata.Pairs("authorization", "Bearer pl_app"), wantCode: codes.PermissionDenied},
		{name: "public method without token", method: "/open/Method", wantCode: codes.OK},
		{name: "public prefix without token", method: "/grpc.health.v1.Health/Check", wantCode: codes.OK},
		{name: "prefix needs the slash", method: "/grpc.health.v1.HealthX/Check", wantCode: codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.md != nil {
				ctx = metadata.NewIncomingContext(ctx, tc.md)
			}
			called := false
			var gotID *Identity
			_, err := ic(ctx, "req", &grpc.UnaryServerInfo{FullMethod: tc.method}, func(ctx context.Context, req any) (any, error) {
				called = true
				gotID = FromContext(ctx)
				return "resp", nil
			})
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tc.wantCode)
			}
			if called != (tc.wantCode == codes.OK) {
				t.Errorf("handler called = %v, want %v", called, tc.wantCode == codes.OK)
			}
			if gotID != tc.wantID {
				t.Errorf("identity in handler = %+v, want %+v", gotID, tc.wantID)
			}
		})
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func TestStreamInterceptor(t *testing.T) {
	tokens := &Tokens{}
	id := &Identity{Name: "app", Roles: []Role{RoleAppender}, Tenants: []string{"acme"}}
	tokens.Add("pl_app", id)
	ic := StreamInterceptor(tokens, testPolicy())
	run := func(md metadata.MD) (*Identity, error) {
		var got *Identity
		ss := &fakeStream{ctx: metadata.NewIncomingContext(t.Context(), md)}
		err := ic(nil, ss, &grpc.StreamServerInfo{FullMethod: testMethod}, func(_ any, ss grpc.ServerStream) error {
			got = FromContext(ss.Context())
			return nil
		})
		return got, err
	}
	if got, err := run(metadata.Pairs("authorization", "Bearer pl_app")); err != nil || got != id {
		t.Errorf("good token: identity %+v, err %v", got, err)
	}
	if _, err := run(metadata.Pairs("authorization", "Bearer pl_bad")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("bad token: %v, want Unauthenticated", err)
	}
}

func TestRequireHTTP(t *testing.T) {
	tokens := &Tokens{}
	reader := &Identity{Name: "rd", Roles: []Role{RoleReader}, Tenants: []string{"acme"}}
	appender := &Identity{Name: "app", Roles: []Role{RoleAppender}, Tenants: []string{"acme"}}
	tokens.Add("pl_rd", reader)
	tokens.Add("pl_app", appender)
	h := RequireHTTP(tokens, PermRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello " + FromContext(r.Context()).Name))
	}))
	for _, tc := range []struct {
		name       string
		authz      string
		wantStatus int
		wantBody   string
	}{
		{name: "reader", authz: "Bearer pl_rd", wantStatus: http.StatusOK, wantBody: "hello rd"},
		{name: "no token", authz: "", wantStatus: http.StatusUnauthorized},
		{name: "bad token", authz: "Bearer pl_x", wantStatus: http.StatusUnauthorized},
		{name: "basic", authz: "Basic cGxfcmQ6", wantStatus: http.StatusUnauthorized},
		{name: "lacks permission", authz: "Bearer pl_app", wantStatus: http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.wantBody != "" && rec.Body.String() != tc.wantBody {
				t.Errorf("body = %q, want %q", rec.Body.String(), tc.wantBody)
			}
			if tc.wantStatus != http.StatusOK && strings.Contains(rec.Body.String(), "hello") {
				t.Error("handler ran without authorisation")
			}
		})
	}
}

func TestContextRoundTrip(t *testing.T) {
	if got := FromContext(t.Context()); got != nil {
		t.Errorf("FromContext(empty) = %+v, want nil", got)
	}
	id := &Identity{Name: "x"}
	if got := FromContext(NewContext(t.Context(), id)); got != id {
		t.Errorf("FromContext(NewContext(id)) = %+v, want %+v", got, id)
	}
}
