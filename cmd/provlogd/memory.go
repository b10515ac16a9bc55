package main

import (
	"github.com/prometheus/client_golang/prometheus"
)

// registerPebbleMemory exports what an embedded pebble store holds outside
// the Go heap: its block cache, which fills up to its fixed capacity as the
// store grows, and its memtables. Beside process_resident_memory_bytes and
// go_memstats_heap_inuse_bytes it tells a cache filling from a leak.
// Stores that are not embedded pebble (mem reports !ok) export nothing.
func registerPebbleMemory(reg prometheus.Registerer, store string, mem func() (cache, memtables int64, ok bool)) {
	if _, _, ok := mem(); !ok {
		return
	}
	for _, kind := range []string{"block_cache", "memtables"} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "provlog_pebble_memory_bytes",
			Help:        "Bytes an embedded pebble store holds outside the Go heap, by store and kind (block_cache, memtables).",
			ConstLabels: prometheus.Labels{"store": store, "kind": kind},
		}, func() float64 {
			c, m, _ := mem()
			if kind == "block_cache" {
				return float64(c)
			}
			return float64(m)
		}))
	}
}
