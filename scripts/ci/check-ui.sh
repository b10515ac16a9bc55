#!/usr/bin/env bash
# Rebuilds the web UI (ui/) from its sources with the locked npm packages,
# type-checks it, runs the verifier's tests, and fails when the committed
# ui/dist differs from the rebuild: like proto generation, the built assets
# are committed (go:embed serves them) and must match ui/src.
set -euo pipefail
cd "$(dirname "$0")/../../ui"
if ! command -v npm >/dev/null; then
  echo "check-ui.sh: node and npm are required to rebuild ui/dist" >&2
  exit 2
fi
npm ci --no-audit --no-fund --loglevel=error
npm run --silent typecheck
npm test --silent
npm run --silent build
if ! git diff --quiet -- dist || [[ -n $(git ls-files --others --exclude-standard -- dist) ]]; then
  echo "rebuilding ui/dist changed it: run (cd ui && npm ci && npm run build) and commit the result" >&2
  git status --short -- dist >&2
  exit 1
fi
