#!/usr/bin/env bash
# Where the HTTP layer's time goes under load. Records the load phase of the HTTP bench with
# `perf` (Linux), the apps driven in alternating rounds as the bench does, gives each sample
# to the app whose round it fell in, and prints, per request served, the CPU time of each
# symbol (its own time, not its callees') for the first app and the others, largest
# difference first. Needs `perf` and Python 3; not run by CI.
#
#   scripts/profile-http.sh                      # bare, capture, capture+tracking
#   APPS="bare,log line,capture+tracking" ROUNDS=20 TOP=50 scripts/profile-http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

APPS=${APPS:-bare,capture,capture+tracking}
ROUNDS=${ROUNDS:-10}
FREQ=${FREQ:-1999}
TOP=${TOP:-40}
command -v perf >/dev/null || { echo "profile-http: perf is not installed" >&2; exit 2; }

bin=$(cargo bench -p stacktrace --features http --bench http --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "http" and m.get("executable"):
        print(m["executable"])')
[ -n "$bin" ] || { echo "profile-http: the bench did not build" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
STACKTRACE_BENCH_APPS="$APPS" STACKTRACE_BENCH_ROUNDS="$ROUNDS" \
    STACKTRACE_BENCH_ROUNDS_FILE="$out/rounds" \
    perf record -k CLOCK_MONOTONIC -F "$FREQ" -o "$out/perf.data" "$bin" --bench zzz-none \
    >"$out/bench.txt" 2>"$out/perf.err" || {
    echo "profile-http: recording the bench failed:" >&2
    tail -n 20 "$out/bench.txt" "$out/perf.err" >&2
    exit 1
}
[ -s "$out/rounds" ] || { echo "profile-http: the bench drove no round" >&2; exit 1; }
# The bench's table, from its header to the host's steal.
sed -n '/^app /,/^host steal/p' "$out/bench.txt"
perf script -i "$out/perf.data" -F time,ip,sym,dso --ns 2>/dev/null >"$out/samples"

python3 - "$out/rounds" "$out/samples" "$FREQ" "$TOP" "$APPS" <<'PY'
import bisect, re, sys
rounds_file, samples_file, freq, top = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
order = sys.argv[5].split(",")
rounds = []
for line in open(rounds_file):
    app, start, end, served = line.rstrip("\n").split("\t")
    rounds.append((int(start), int(end), app, int(served)))
rounds.sort()
starts = [r[0] for r in rounds]
served = {}
for _, _, app, n in rounds:
    served[app] = served.get(app, 0) + n
syms = {app: {} for app in served}
kind = {}
def kind_of(sym):
    if "stacktrace::" in sym:
        return "stacktrace's own code"
    if re.search(r"malloc|free|_int_|tcache|unlink_chunk|__rust_(de|re)?alloc|__rdl_|alloc_shim", sym):
        return "allocator"
    if re.search(r"mem(move|cpy|cmp|set)", sym):
        return "memory copy and compare"
    if re.search(r"clock_gettime|read_tsc|Instant|Timespec", sym):
        return "clock"
    if re.search(r"axum|tower", sym):
        return "axum and tower"
    return "other (hyper, tokio, std)"
for line in open(samples_file):
    m = re.match(r"\s*(\d+)\.(\d+):\s*[0-9a-f]+\s*(.*)", line)
    if not m:
        continue
    t = int(m.group(1)) * 1_000_000_000 + int(m.group(2).ljust(9, "0")[:9])
    i = bisect.bisect_right(starts, t) - 1
    if i < 0 or t > rounds[i][1]:
        continue
    app = rounds[i][2]
    rest = m.group(3).strip()
    kernel = rest.endswith("([kernel.kallsyms])")
    rest = re.sub(r"\s*\([^()]*\)$", "", rest)
    sym = re.sub(r"\+0x[0-9a-f]+$", "", rest) or "[unknown]"
    if sym not in kind:
        kind[sym] = "kernel" if kernel else kind_of(sym)
    syms[app][sym] = syms[app].get(sym, 0) + 1
apps = [a for a in order if a in served]
per = {a: {k: v * 1e6 / freq / max(served[a], 1) for k, v in syms[a].items()} for a in apps}
base_name, base = apps[0], per[apps[0]]
print(f"\nCPU µs per request served (own time of each symbol, all threads), against {base_name}")
for a in apps:
    print(f"  {a}: {sum(per[a].values()):.2f} µs in all, {served[a]} requests")
for a in apps[1:]:
    s = per[a]
    print(f"\n{a} - {base_name}: {sum(s.values()) - sum(base.values()):+.2f} µs")
    kinds = {}
    for k in set(s) | set(base):
        kinds[kind[k]] = kinds.get(kind[k], 0) + s.get(k, 0) - base.get(k, 0)
    for name, d in sorted(kinds.items(), key=lambda x: -x[1]):
        print(f"  {d:+7.3f}  {name}")
    print("  by symbol:")
    keys = sorted(set(s) | set(base), key=lambda k: -(s.get(k, 0) - base.get(k, 0)))
    for k in keys[:top]:
        print(f"  {s.get(k, 0) - base.get(k, 0):+7.3f}  {base.get(k, 0):6.3f} -> {s.get(k, 0):6.3f}  {k[:100]}")
PY
