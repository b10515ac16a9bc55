package ledger

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NewWitnessHTTPClient returns the HTTP client tessera uses to ask witnesses
// for cosignatures, instrumented per witness URL: requests by result,
// latency, and the time of the last success.
func NewWitnessHTTPClient(reg prometheus.Registerer, timeout time.Duration) *http.Client {
	m := &witnessMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provlog_witness_requests_total",
			Help: "add-checkpoint requests sent to each witness, by result (HTTP status code; error: no answer, including timeouts; canceled: not waited for because the quorum had already cosigned).",
		}, []string{"witness", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "provlog_witness_request_seconds",
			Help:    "add-checkpoint request latency per witness.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"witness"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "provlog_witness_last_success_timestamp_seconds",
			Help: "Unix time of each witness's last 200 answer.",
		}, []string{"witness"}),
	}
	reg.MustRegister(m.requests, m.latency, m.lastSuccess)
	return &http.Client{Timeout: timeout, Transport: &witnessTransport{next: http.DefaultTransport, m: m}}
}

type witnessMetrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
}

type witnessTransport struct {
	next http.RoundTripper
	m    *witnessMetrics
}

func (t *witnessTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := r.URL.Host + r.URL.Path
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	if err != nil && errors.Is(r.Context().Err(), context.Canceled) {
		// Tessera cancels the requests still in flight once the quorum has
		// cosigned: the witness did not fail, it was not waited for. (A
		// timeout ends the context with DeadlineExceeded: that is an error.)
		t.m.requests.WithLabelValues(w, "canceled").Inc()
		return nil, err
	}
	t.m.latency.WithLabelValues(w).Observe(time.Since(start).Seconds())
	if err != nil {
		t.m.requests.WithLabelValues(w, "error").Inc()
		return nil, err
	}
	t.m.requests.WithLabelValues(w, strconv.Itoa(resp.StatusCode)).Inc()
	if resp.StatusCode == http.StatusOK {
		t.m.lastSuccess.WithLabelValues(w).SetToCurrentTime()
	}
	return resp, nil
}
