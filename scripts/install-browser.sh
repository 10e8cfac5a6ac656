#!/usr/bin/env bash
# Installs the headless browser the dashboard tests drive: Debian's chromium and its
# WebDriver server. Does nothing when both are already there. Needs root (apt-get).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver >/dev/null
command -v chromium >/dev/null && command -v chromedriver >/dev/null
