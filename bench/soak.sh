#!/usr/bin/env bash
# Soak: ferry-bench's soak workload against a release ferryd on 127.0.0.1, the server sampled
# every 10 s. Prints the JSON report and a summary; exits non-zero on an unexpected error, a
# content mismatch, descriptors or threads not back at their baseline within 30 s, or RSS at
# the end more than 10 % above RSS after the first minute.
#
#   bench/soak.sh                    # 1000 sessions for 10 minutes
#   bench/soak.sh 200 1              # SESSIONS MINUTES
#
# On an object store: SOAK_ROOT is the root of both the anonymous and the named user, and
# FERRYD_EXTRA adds flags, e.g. with deploy/cluster/start.sh /tmp/ferry-cluster running:
#   SOAK_ROOT=s3://ferry/soak FERRYD_EXTRA="--s3-endpoint http://127.0.0.1:3990 --s3-region garage
#     --s3-credentials-file /tmp/ferry-cluster/credentials" bench/soak.sh 200 3
# (On that cluster the 3 Garage replicas share one disk: 1000 sessions for 10 minutes write about
# 48 GB; start from a fresh cluster.)
# BENCH_EXTRA adds ferry-bench flags, e.g. BENCH_EXTRA="--io-timeout 120" for clients that wait
# longer than 30 s for a reply (lftp waits 300 s).
set -euo pipefail

SESSIONS=${1:-1000}
MINUTES=${2:-10}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/ferry-soak.XXXXXX)
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

(cd "$REPO" && cargo build --release -q -p ferry-server -p ferry-bench)
FERRYD="$REPO/target/release/ferryd"
BENCH="$REPO/target/release/ferry-bench"
mkdir -p "$WORK/root"
ROOT=${SOAK_ROOT:-$WORK/root}
HASH=$(echo 'soak password' | "$FERRYD" --hash-password)
printf '[[user]]\nname = "soaker"\npassword = "%s"\nroot = "%s"\nwritable = true\n' \
    "$HASH" "$ROOT" > "$WORK/users.toml"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
"$FERRYD" --listen "127.0.0.1:$PORT" --root "$ROOT" --anonymous-writable ${FERRYD_EXTRA:-} \
    --users-file "$WORK/users.toml" --tls-self-signed --max-sessions $((SESSIONS * 2 + 100)) \
    --max-sessions-per-ip 0 --ban-after-failures 0 --log-level warn >"$WORK/ferryd.out" 2>"$WORK/ferryd.err" &
SERVER_PID=$!
for _ in $(seq 1 50); do grep -q "listening on" "$WORK/ferryd.out" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC2086
"$BENCH" --port "$PORT" --user soaker --password 'soak password' ${BENCH_EXTRA:-} \
    soak --sessions "$SESSIONS" --minutes "$MINUTES" --pid "$SERVER_PID" --tls-every 10 | tee "$WORK/soak.json"
set +e
python3 - "$WORK/soak.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ops = r["operations"]
print(f"{r['sessions']} sessions, {r['seconds']:.0f} s: {sum(o['count'] for o in ops.values())} operations")
for kind, o in sorted(ops.items()):
    print(f"  {kind:18} {o['count']:>9}  p50 {o['p50_ms']:8.2f} ms  p99 {o['p99_ms']:8.2f} ms")
print("unexpected errors:", r["unexpected_errors"], r["errors"])
print("provoked:", r["provoked"])
print("content mismatches:", r["mismatches"])
for s in r["samples"]:
    print(f"  t={s['second']:>4}s rss={s['rss_kib']} KiB fds={s['fds']} threads={s['threads']} sessions={s['sessions']} passive={s['passive_listeners']}")
b, a = r["baseline"], r["after"]
print("baseline:", b)
print("after:   ", a, "recovered after", r["recovered_after_seconds"], "s")
print(f"RSS after the first minute {r['rss_after_first_minute_kib']} KiB, at the end {r['rss_at_end_kib']} KiB ({r['rss_growth_percent']:+.1f} %)")
ok = (r["unexpected_errors"] == 0 and r["mismatches"] == 0 and r["recovered_after_seconds"] is not None
      and r["rss_growth_percent"] is not None and r["rss_growth_percent"] <= 10.0)
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
STATUS=$?
# ferryd's warnings that are not the soak's own doing (resets, ABOR) are worth a look.
grep -v -e "Connection reset by peer" -e "transfer aborted" -e "Broken pipe" "$WORK/ferryd.err" | tail -n 20 || true
exit $STATUS
