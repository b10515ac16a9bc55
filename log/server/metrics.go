package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

type metrics struct {
	reg           *prometheus.Registry
	appends       *prometheus.CounterVec
	appendLatency *prometheus.HistogramVec
	rpcs          *prometheus.CounterVec
	rpcLatency    *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg: reg,
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provlog_appends_total",
			Help: "Events submitted for append, by result (new, duplicate, invalid, error).",
		}, []string{"result"}),
		appendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "provlog_append_latency_seconds",
			Help:    "Time from receiving an append to the event being sequenced or published.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"stage"}),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provlog_grpc_requests_total",
			Help: "gRPC requests handled, by method and status code.",
		}, []string{"method", "code"}),
		rpcLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "provlog_grpc_request_seconds",
			Help:    "gRPC request handling time, by method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"method"}),
	}
	m.reg.MustRegister(m.appends, m.appendLatency, m.rpcs, m.rpcLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) appended(result string) { m.appends.WithLabelValues(result).Inc() }

func (m *metrics) appendDone(dup bool, d time.Duration, stage string) {
	if dup {
		m.appended("duplicate")
	} else {
		m.appended("new")
	}
	m.appendLatency.WithLabelValues(stage).Observe(d.Seconds())
}

func (m *metrics) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.rpcs.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
		m.rpcLatency.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
		return resp, err
	}
}

func (m *metrics) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		m.rpcs.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
		return err
	}
}
