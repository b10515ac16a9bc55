package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/server"
)

// serverTLS builds the TLS config of both listeners from --tls-cert,
// --tls-key and --client-ca, or returns nil for plaintext. With a client CA,
// a client certificate is verified against it when one is sent (a bearer
// token remains enough without one); an untrusted certificate fails the
// handshake.
func serverTLS(cfg config) (*tls.Config, error) {
	if cfg.TLSCert == "" && cfg.TLSKey == "" {
		if cfg.ClientCA != "" {
			return nil, errors.New("--client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if cfg.TLSCert == "" || cfg.TLSKey == "" {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("couldn't load the TLS certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("couldn't read --client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--client-ca %s holds no PEM certificate", cfg.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// checkPlaintext refuses to listen without TLS anywhere but on loopback:
// bearer tokens would cross the network in clear.
func checkPlaintext(flag, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--%s %q: %w", flag, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--%s %s is not a loopback address: serving without TLS is allowed on loopback only (give --tls-cert and --tls-key)", flag, addr)
}

// limits turns --rate-identity and --rate-tenant into server limits: bursts
// of twice the rate, and at least one full batch.
func limits(cfg config) server.Limits {
	burst := func(r float64) int { return max(int(2*r), event.MaxBatch) }
	return server.Limits{IdentityRate: cfg.RateIdentity, IdentityBurst: burst(cfg.RateIdentity),
		TenantRate: cfg.RateTenant, TenantBurst: burst(cfg.RateTenant)}
}
