#!/usr/bin/env bash
# The whole test suite: what README.md tells a newcomer to run and what CI
# runs (.ci/run). It installs what it needs (pinned protobuf plugins, from the
# Go module proxy) and checks formatting, vet, generated code and go.mod
# before running every test, end-to-end ones included.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null; then
  echo "test.sh: Go 1.26 is required (https://go.dev/dl/)" >&2
  exit 2
fi

echo "== gofmt"
unformatted=$(git ls-files -co --exclude-standard '*.go' | xargs gofmt -l)
if [[ -n $unformatted ]]; then
  echo "not gofmt-ed:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go mod tidy"
go mod tidy -diff

echo "== go vet"
go vet ./...
go vet -tags pprof ./cmd/provlogd ./cmd/provbench # the profiling builds (scripts/profile.sh)

echo "== generated code matches proto/"
before=$(find proto -type f -print0 | sort -z | xargs -0 sha256sum)
scripts/gen-proto.sh
after=$(find proto -type f -print0 | sort -z | xargs -0 sha256sum)
if [[ $before != "$after" ]]; then
  echo "regenerating proto/ changed it: run scripts/gen-proto.sh and commit the result" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi

echo "== web UI: ui/dist matches ui/src; chromium for its browser tests (issue 9)"
# Separate lines: under set -e a failure inside an && list does not stop the script.
scripts/ci/check-ui.sh
scripts/ci/install-chromium.sh
export PROVLOG_UI_REQUIRE_BROWSER=1

scripts/ci/install-promtool.sh

source scripts/ci/services.sh # MariaDB + versitygw for the aws backend's integration tests (issue 8)
echo "== go test"
go test -race -count=1 -timeout 30m ./...
