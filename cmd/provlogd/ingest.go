package main

import (
	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ingest"
)

// ingestConfig turns on OpenLineage ingestion and the drift report, and the
// webhook sources of --hooks-config when given.
func ingestConfig(cfg config, tokens *auth.Tokens) (*ingest.Config, error) {
	ic := &ingest.Config{Tokens: tokens}
	if cfg.HooksConfig != "" {
		h, err := ingest.LoadHooksConfig(cfg.HooksConfig)
		if err != nil {
			return nil, err
		}
		ic.Hooks = h
	}
	return ic, nil
}
