#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser tests (Playwright drives it; never a downloaded browser).
set -euo pipefail
if ! [ -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
