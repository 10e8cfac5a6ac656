#!/usr/bin/env bash
# Installs the headless browser the dashboard tests drive: Debian's chromium and its
# WebDriver server. Does nothing when both are already there. Needs root (apt-get); says
# why and fails when it cannot install them.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
fail() {
    echo "install-browser.sh: $*; the dashboard browser tests need chromium and chromedriver" >&2
    exit 1
}
command -v apt-get >/dev/null 2>&1 \
    || fail "no apt-get here (not Debian or Ubuntu): install chromium and chromedriver by other means"
[ "$(id -u)" -eq 0 ] \
    || fail "installing needs root: run 'sudo apt-get install chromium chromium-driver'"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || fail "apt-get update failed (offline?)"
apt-get install -y -qq chromium chromium-driver >/dev/null \
    || fail "apt-get could not install chromium and chromium-driver"
command -v chromium >/dev/null && command -v chromedriver >/dev/null \
    || fail "chromium or chromedriver is still missing after installing"
