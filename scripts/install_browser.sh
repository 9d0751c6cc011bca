#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (Playwright drives it; no browser download).
# Does nothing when chromium is already there; says why and carries on when it cannot install
# (not root, no apt-get): the browser tests then skip with a clear reason.
set -u
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: chromium not found and cannot apt-get install it here; browser tests will skip" >&2
  exit 0
fi
echo "install_browser: installing Debian's chromium for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
  || echo "install_browser: apt-get install chromium failed; browser tests will skip" >&2
exit 0
