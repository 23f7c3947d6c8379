#!/usr/bin/env bash
# Debian's Chromium + ChromeDriver for the HTML report's browser test (idempotent).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver >/dev/null
echo "browser.sh: $(chromium --version)"
