package witness

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests     *prometheus.CounterVec
	cosignatures *prometheus.CounterVec
	forks        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "provwitness_http_requests_total",
			Help: "Witness HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		cosignatures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "provwitness_cosignatures_total",
			Help: "Checkpoints cosigned, by log origin.",
		}, []string{"origin"}),
		forks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "provwitness_forks_detected_total",
			Help: "Checkpoints validly signed by a log but inconsistent with the witnessed state, by log origin and kind.",
		}, []string{"origin", "kind"}),
	}
}
