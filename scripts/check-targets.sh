#!/usr/bin/env bash
# The library on platforms without a crash record (macOS, Windows), where the crash handler
# and the flight recorder compile to nothing: it must still build there, without warnings.
# Checked, not built, so no C cross compiler is needed; for that reason the features whose
# dependencies compile C (`mail-tls` and `forward`, through ring) are left out.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(x86_64-apple-darwin x86_64-pc-windows-gnu)
# Every feature but those that build C code for the target.
FEATURES=log,tracing,tokio,http,mail,dashboard,cli

installed=$(rustup target list --installed)
for target in "${TARGETS[@]}"; do
    if ! grep -qx "$target" <<<"$installed"; then
        echo "== rustup target add $target"
        rustup target add "$target"
    fi
    # With --target, RUSTFLAGS reaches only the target's crates, and dependencies' lints
    # are capped: warnings of this workspace fail the check.
    echo "== cargo check -p stacktrace --target $target"
    RUSTFLAGS="-D warnings" cargo check -p stacktrace --target "$target"
    echo "== cargo check -p stacktrace --target $target --features $FEATURES"
    RUSTFLAGS="-D warnings" cargo check -p stacktrace --target "$target" --features "$FEATURES"
done
