#!/usr/bin/env bash
# The browser for tests/test_app.py's headless test: Debian's chromium (and fonts for readable screenshots).
# Idempotent: does nothing when chromium is there.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(command -v chromium) (already installed)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium fonts-liberation fonts-dejavu-core
command -v chromium
