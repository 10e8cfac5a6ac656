#!/usr/bin/env bash
# Sentry's own normalizer and data scrubber (Relay, from the `sentry-relay` package) as a
# referee of the events the tracker stores and sends.
#
#   scripts/relay.sh install       install if needed (done by check too)
#   scripts/relay.sh check FILE    check the events of FILE (one Sentry event, JSON, a
#                                  line) with scripts/relay_check.py; prints its findings
#
# The virtualenv goes under target/relay/ on first use and is reused after.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
home="$here/target/relay"
venv="$home/venv"
version="0.10.1"

# The virtualenv, made once: "installed" is written last, so a half-made one (an
# interrupted first run) is made again. Tests check at once: one of them installs, the
# others wait for it.
install() {
    mkdir -p "$home"
    (
        flock 9
        if [ "$(cat "$home/installed" 2>/dev/null)" != "$version" ]; then
            if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
                echo "sentry-relay needs Python 3.11 or later; found $(python3 --version 2>&1)" >&2
                exit 1
            fi
            rm -rf "$venv" "$home/installed"
            if ! python3 -m venv "$venv" >"$home/venv.log" 2>&1; then
                echo "python3 -m venv could not make $venv:" >&2
                cat "$home/venv.log" >&2
                exit 1
            fi
            if ! "$venv/bin/pip" install -q --disable-pip-version-check "sentry-relay==$version" \
                >"$home/pip.log" 2>&1; then
                echo "pip could not install sentry-relay==$version (is PyPI reachable?):" >&2
                cat "$home/pip.log" >&2
                exit 1
            fi
            echo "$version" >"$home/installed"
        fi
    ) 9>"$home/lock"
}

check() {
    local file="$1"
    install
    "$venv/bin/python" "$here/scripts/relay_check.py" "$file"
}

case "${1:-}" in
    install) install ;;
    check) check "$2" ;;
    *) echo "usage: $0 install | check FILE" >&2; exit 2 ;;
esac
