#!/usr/bin/env bash
# Installs Debian's chromium for the web UI's browser tests (ui/), unless
# it is already there. Idempotent; needs root (or sudo) when it installs.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
sudo=""
if [[ $(id -u) != 0 ]]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
