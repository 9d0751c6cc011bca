#!/usr/bin/env sh
# Debian's Chromium for the browser tests (pytest -m browser); Playwright drives /usr/bin/chromium,
# so no `playwright install` / browser download is needed. Needs root (or sudo).
set -eu
if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium
