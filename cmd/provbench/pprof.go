//go:build pprof

package main

import (
	"log/slog"

	"github.com/provlog/provlog/internal/pprofserve"
)

// A build with -tags pprof serves net/http/pprof on $PROVBENCH_PPROF_ADDR
// (loopback): scripts/profile.sh. Release builds leave this file out.
func init() {
	if err := pprofserve.Start("PROVBENCH_PPROF_ADDR"); err != nil {
		slog.Error("pprof", "err", err)
	}
}
