package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/provlog/provlog/log/auth"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Limits are token buckets per authenticated identity and per tenant. A
// request costs one token, an AppendBatch one per event (charged to each
// event's tenant). Admin identities are not limited. A rate of 0 turns that
// limit off.
type Limits struct {
	// IdentityRate is the sustained requests (events) per second of one
	// identity; IdentityBurst the bucket size.
	IdentityRate  float64
	IdentityBurst int
	// TenantRate and TenantBurst: the same for all callers of one tenant.
	TenantRate  float64
	TenantBurst int
}

// limiter holds the buckets. Buckets are never dropped: identities and
// tenants are created by admins, so their number is bounded by them.
type limiter struct {
	cfg      Limits
	mu       sync.Mutex
	identity map[string]*rate.Limiter
	tenant   map[string]*rate.Limiter
	refused  func(kind string)
}

func newLimiter(cfg Limits, refused func(kind string)) *limiter {
	return &limiter{cfg: cfg, identity: map[string]*rate.Limiter{}, tenant: map[string]*rate.Limiter{}, refused: refused}
}

func (l *limiter) bucket(m map[string]*rate.Limiter, key string, r float64, burst int) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := m[key]
	if !ok {
		b = rate.NewLimiter(rate.Limit(r), max(burst, 1))
		m[key] = b
	}
	return b
}

// tenantCosts is what a request costs each tenant it names.
func tenantCosts(req any) map[string]int {
	switch r := req.(type) {
	case *pb.AppendRequest:
		return map[string]int{r.GetEvent().GetTenant(): 1}
	case *pb.AppendBatchRequest:
		out := map[string]int{}
		for _, ev := range r.GetEvents() {
			out[ev.GetTenant()]++
		}
		return out
	case *pb.AppendStreamRequest: // one request of a stream, as a batch
		return tenantCosts(&pb.AppendBatchRequest{Events: r.GetEvents()})
	case interface{ GetTenant() string }:
		return map[string]int{r.GetTenant(): 1}
	}
	return nil
}

func requestCost(req any) int {
	switch r := req.(type) {
	case *pb.AppendBatchRequest:
		return max(len(r.GetEvents()), 1)
	case *pb.AppendStreamRequest:
		return max(len(r.GetEvents()), 1)
	}
	return 1
}

// allow takes the request's tokens from every bucket it touches, or none:
// a refusal gives back what it took and says how long to wait.
func (l *limiter) allow(id *auth.Identity, req any) error {
	if id == nil || slices.Contains(id.Roles, auth.RoleAdmin) {
		return nil
	}
	now := time.Now()
	type taken struct {
		r    *rate.Reservation
		kind string
	}
	var got []taken
	release := func() {
		for _, t := range got {
			t.r.CancelAt(now)
		}
	}
	try := func(b *rate.Limiter, n int, kind, what string) error {
		r := b.ReserveN(now, n)
		if !r.OK() {
			release()
			l.refused(kind)
			return status.Errorf(codes.ResourceExhausted, "%s: a request of %d exceeds the %s limit's burst of %d; send smaller batches", what, n, kind, b.Burst())
		}
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			release()
			l.refused(kind)
			st := status.New(codes.ResourceExhausted, fmt.Sprintf("%s: rate limit exceeded; retry after %v (RetryInfo)", what, d.Round(time.Millisecond)))
			if ds, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)}); err == nil {
				st = ds
			}
			return st.Err()
		}
		got = append(got, taken{r, kind})
		return nil
	}
	if l.cfg.IdentityRate > 0 {
		b := l.bucket(l.identity, id.Name, l.cfg.IdentityRate, l.cfg.IdentityBurst)
		if err := try(b, requestCost(req), "identity", "identity "+id.Name); err != nil {
			return err
		}
	}
	if l.cfg.TenantRate > 0 {
		costs := tenantCosts(req)
		tenants := make([]string, 0, len(costs))
		for t := range costs {
			tenants = append(tenants, t)
		}
		slices.Sort(tenants)
		for _, t := range tenants {
			if t == "" || !id.CanActFor(t) {
				continue // refused later as invalid or foreign; no bucket for it
			}
			b := l.bucket(l.tenant, t, l.cfg.TenantRate, l.cfg.TenantBurst)
			if err := try(b, costs[t], "tenant", "tenant "+t); err != nil {
				return err
			}
		}
	}
	return nil
}

// guardUnary rate-limits and audits each call, after authentication.
func guardUnary(l *limiter, a *accessAudit) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		id := auth.FromContext(ctx)
		if err := l.allow(id, req); err != nil {
			return nil, err
		}
		resp, err := handler(ctx, req)
		a.observe(ctx, id, info.FullMethod, status.Code(err))
		return resp, err
	}
}

// newGuard builds the rate-limit and access-audit interceptor of a server,
// and returns its limiter for AppendStream, which checks each request.
func newGuard(cfg Config) (grpc.UnaryServerInterceptor, *limiter) {
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "provlog_rate_limited_total",
		Help: "Requests refused with ResourceExhausted by a rate limit, by limit kind (identity, tenant)."}, []string{"kind"})
	cfg.Registry.MustRegister(limited)
	l := newLimiter(cfg.Limits, func(kind string) { limited.WithLabelValues(kind).Inc() })
	return guardUnary(l, newAccessAudit(cfg.AccessAudit, cfg.Registry, cfg.Logger)), l
}
