#!/usr/bin/env bash
# Regenerates everything generated from proto/: Go messages, gRPC stubs, the
# grpc-gateway REST handlers and the OpenAPI description. Plugin versions are
# pinned here; they install from the Go module proxy into .tools/ (ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
GRPC_GATEWAY_VERSION=v2.33.0

export GOBIN="$PWD/.tools/bin"
export PATH="$GOBIN:$PATH"
install() { # install PKG VERSION, skipping when the pinned version is already there
  local pkg=$1 ver=$2 bin
  bin=$GOBIN/$(basename "$pkg")
  if [[ -x $bin ]] && go version -m "$bin" 2>/dev/null | grep -q "	mod	.*	$ver	"; then return; fi
  go install "$pkg@$ver"
}
install github.com/bufbuild/buf/cmd/buf "$BUF_VERSION"
install google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway "$GRPC_GATEWAY_VERSION"
install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2 "$GRPC_GATEWAY_VERSION"

buf lint
find proto -name '*.pb.go' -o -name '*.pb.gw.go' -o -name '*.swagger.json' | xargs -r rm -f
buf generate
