package main

import (
	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ingest"
)

// ingestConfig turns on OpenLineage ingestion and the drift report, and the
// webhook sources of --hooks-config when given.
func ingestConfig(cfg config, tokens *auth.Store) (*ingest.Config, error) {
	ic := &ingest.Config{Tokens: staticTokens{tokens}}
	if cfg.HooksConfig != "" {
		h, err := ingest.LoadHooksConfig(cfg.HooksConfig)
		if err != nil {
			return nil, err
		}
		ic.Hooks = h
	}
	return ic, nil
}

// staticTokens registers the webhook sources' in-process tokens in the
// store as static ones: known to this process only, never persisted.
type staticTokens struct{ store *auth.Store }

func (t staticTokens) Add(token string, id *auth.Identity) { t.store.AddStatic(token, id) }
