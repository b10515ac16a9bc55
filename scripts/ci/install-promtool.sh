#!/usr/bin/env bash
# Puts promtool into .tools/bin for deploy/'s tests, which check and
# unit-test the alert rules with it (they skip that part without it). It is
# taken from Debian's prometheus package, unpacked rather than installed, so
# no Prometheus service is set up. Idempotent; needs no root.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=.tools/bin/promtool
if [[ -x $bin ]] || command -v promtool >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-promtool.sh: no apt-get; deploy tests will skip promtool" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) ||
  { echo "install-promtool.sh: apt-get download prometheus failed; deploy tests will skip promtool" >&2; exit 0; }
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
mkdir -p .tools/bin
install -m 0755 "$tmp/x/usr/bin/promtool" "$bin"
"$bin" --version | head -1
