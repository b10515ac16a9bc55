package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzBearerToken: the authorization header parser and the token store
// take any bytes without panicking, and only the issued secret
// authenticates.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer pl_abc", "bearer  x ", "Basic Zm9v", "Bearer", "Bearer \x00", "BEARER pl_" + strings.Repeat("A", 600), "Bearer\tx", "bearer é"} {
		f.Add(s)
	}
	clk := &fakeClock{t: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
	st, err := OpenStore(f.TempDir()+"/"+StoreFile, clk.now)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := st.CreateTenant("acme", TenantPolicy{}); err != nil {
		f.Fatal(err)
	}
	_, secret, err := st.CreateToken("fuzz", []Role{RoleReader}, []string{"acme"}, "", time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok := BearerToken(header)
		if ok {
			if tok == "" || tok != strings.TrimSpace(tok) {
				t.Fatalf("BearerToken(%q) = %q: empty or untrimmed", header, tok)
			}
			if !strings.EqualFold(header[:7], "bearer ") {
				t.Fatalf("BearerToken(%q) accepted a non-bearer scheme", header)
			}
		} else if tok != "" {
			t.Fatalf("BearerToken(%q) = %q, false", header, tok)
		}
		id, err := st.Authenticate(context.Background(), tok)
		if (err == nil) != (tok == secret) {
			t.Fatalf("Authenticate(%q) = %v, %v", tok, id, err)
		}
		if err != nil && !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("Authenticate error %v is not ErrUnauthenticated", err)
		}
	})
}
