#!/usr/bin/env bash
# Object-storage figures: ferryd on the 3-node Garage cluster of deploy/cluster/, against the
# same bucket reached directly by boto3, and against pyftpdlib serving an s3fs FUSE mount of it
# (the way people serve a bucket over FTP without an S3-aware server). All in one run.
#
# Usage: bench/s3.sh [SIZE_MIB] [UPLOADS] [OBJECTS]   (default 1024 MiB, 20 uploads, 10000 objects)
# SECTIONS="single memory list" (the default: all) picks what runs; "single" includes the cut-off
# uploads.
# Needs garage, haproxy, s3fs, boto3 (pip), curl. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
UPLOADS=${2:-20}
OBJECTS=${3:-10000}
WORK=${WORK:-/tmp/ferry-s3-bench}
cargo build --release -q -p ferry-server --bin ferryd
FERRYD=$PWD/target/release/ferryd
deploy/cluster/stop.sh "$WORK/cluster" >/dev/null 2>&1 || true
fusermount -u "$WORK/mnt" 2>/dev/null || true
mkdir -p "$WORK"
deploy/cluster/start.sh "$WORK/cluster" >/dev/null
cleanup() {
  [ -n "${SOLO:-}" ] && kill "$SOLO" 2>/dev/null
  [ -n "${PYFTPD:-}" ] && kill "$PYFTPD" 2>/dev/null
  fusermount -u "$WORK/mnt" 2>/dev/null || true
  deploy/cluster/stop.sh "$WORK/cluster" >/dev/null 2>&1 || true
}
trap cleanup EXIT
creds="$WORK/cluster/credentials"
KEY=$(sed -n 's/^aws_access_key_id = //p' "$creds")
SECRET=$(sed -n 's/^aws_secret_access_key = //p' "$creds")
export AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=garage AWS_DEFAULT_REGION=garage AWS_ENDPOINT_URL=http://127.0.0.1:3900

big="$WORK/big.bin"
[ "$(stat -c %s "$big" 2>/dev/null || echo 0)" = $((SIZE_MIB * 1048576)) ] || head -c "${SIZE_MIB}M" /dev/urandom > "$big"

# One more ferryd, straight on the first store node (no proxy): the figures are ferryd's own.
"$FERRYD" --listen 127.0.0.1:2300 --root s3://ferry/pub --users-file "$WORK/cluster/users.toml" \
  --s3-endpoint http://127.0.0.1:3900 --s3-region garage --s3-credentials-file "$creds" \
  --max-sessions-per-ip 0 --log-level warn > "$WORK/solo.log" 2>&1 &
SOLO=$!
sleep 0.5

SECTIONS=${SECTIONS:-single memory list}
want() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }

seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N); echo "$end - $start" | bc; }
rate() { echo "scale=0; $SIZE_MIB / $1" | bc; }
row() { printf '| %-38s | %8.2f s | %6s MiB/s |\n' "$1" "$2" "$(rate "$2")"; }

if want single; then
echo "## ${SIZE_MIB} MiB, one transfer at a time"
echo
echo "| how | time | rate |"
echo "|---|---|---|"
t=$(seconds curl -sS -T "$big" ftp://demo:demo@127.0.0.1:2300/big.bin); row "ferryd STOR (curl)" "$t"
t=$(seconds curl -sS -o /dev/null ftp://demo:demo@127.0.0.1:2300/big.bin); row "ferryd RETR (curl)" "$t"
t=$(seconds python3 - "$big" <<'PY'
import sys, boto3, botocore.config
config = botocore.config.Config(request_checksum_calculation="when_required", response_checksum_validation="when_required")
boto3.client("s3", config=config).upload_file(sys.argv[1], "ferry", "direct/big.bin")
PY
); row "boto3 upload_file (direct)" "$t"
t=$(seconds python3 - <<'PY'
import boto3, botocore.config
config = botocore.config.Config(request_checksum_calculation="when_required", response_checksum_validation="when_required")
boto3.client("s3", config=config).download_file("ferry", "direct/big.bin", "/dev/null")
PY
); row "boto3 download_file (direct)" "$t"

mkdir -p "$WORK/mnt"
echo "$KEY:$SECRET" > "$WORK/s3fs.passwd"
chmod 600 "$WORK/s3fs.passwd"
s3fs ferry:/s3fs "$WORK/mnt" -o passwd_file="$WORK/s3fs.passwd",url=http://127.0.0.1:3900,use_path_request_style,endpoint=garage 2>/dev/null \
  || { python3 -c "import boto3; boto3.client('s3').put_object(Bucket='ferry', Key='s3fs/', Body=b'')"; \
       s3fs ferry:/s3fs "$WORK/mnt" -o passwd_file="$WORK/s3fs.passwd",url=http://127.0.0.1:3900,use_path_request_style,endpoint=garage; }
python3 bench/pyftpd_server.py 2301 "$WORK/mnt" 40000 40100 &
PYFTPD=$!
sleep 1
t=$(seconds curl -sS -T "$big" ftp://127.0.0.1:2301/big.bin); row "pyftpdlib on s3fs STOR (curl)" "$t"
t=$(seconds curl -sS -o /dev/null ftp://127.0.0.1:2301/big.bin); row "pyftpdlib on s3fs RETR (curl)" "$t"
echo
echo "## An upload cut off after 2 s: what is under its name"
exists() { python3 -c "import boto3,sys
try: boto3.client('s3').head_object(Bucket='ferry', Key=sys.argv[1]); print('an object of', boto3.client('s3').head_object(Bucket='ferry', Key=sys.argv[1])['ContentLength'], 'bytes')
except Exception: print('nothing')" "$1"; }
# Each server is given 20 s to finish what it does with the cut upload (s3fs uploads on close).
(timeout -s KILL 2 curl -sS -T "$big" ftp://127.0.0.1:2301/cut.bin 2>/dev/null) || true
sleep 20
echo "pyftpdlib on s3fs: $(exists s3fs/cut.bin)"
(timeout -s KILL 2 curl -sS -T "$big" ftp://demo:demo@127.0.0.1:2300/cut.bin 2>/dev/null) || true
sleep 20
echo "ferryd: $(exists home/cut.bin)"
kill "$PYFTPD"; PYFTPD=
fi

if want memory; then
echo
echo "## Memory: $UPLOADS concurrent ${SIZE_MIB} MiB uploads to one ferryd"
base=$(awk '/VmRSS/ {print $2}' /proc/$SOLO/status)
pids=()
for i in $(seq 1 "$UPLOADS"); do
  curl -sS -T "$big" "ftp://demo:demo@127.0.0.1:2300/many-$i.bin" & pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
peak=$(awk '/VmHWM/ {print $2}' /proc/$SOLO/status)

echo "ferryd RSS before: $((base / 1024)) MiB; peak (VmHWM) during: $((peak / 1024)) MiB; failed uploads: $failed"
echo "bound: base + $UPLOADS x part (8 MiB) x (parts in flight 4 + 1) = $(( base / 1024 + UPLOADS * 8 * 5 )) MiB (ferryd holds at most 4 parts an upload, plus its 2.5 MiB receive pipeline)"

fi

if want list; then
echo
echo "## Listing $OBJECTS objects"
python3 - "$OBJECTS" <<'PY'
import sys, boto3, concurrent.futures
s3 = boto3.client("s3")
n = int(sys.argv[1])
existing = sum(p.get("KeyCount", 0) for p in s3.get_paginator("list_objects_v2").paginate(Bucket="ferry", Prefix="pub/many/"))
if existing != n:
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket="ferry", Key=f"pub/many/file-{i:05d}.txt", Body=b"x"), range(n)))
PY
t=$(seconds python3 - <<'PY'
import boto3
s3 = boto3.client("s3")
n = sum(len(p.get("Contents", [])) for p in s3.get_paginator("list_objects_v2").paginate(Bucket="ferry", Prefix="pub/many/", Delimiter="/"))
assert n > 0
PY
); echo "boto3 list_objects_v2 (paged): $t s"
for run in 1 2; do
  t=$(seconds curl -sS -o "$WORK/list-$run.txt" ftp://127.0.0.1:2121/many/); echo "curl LIST through HAProxy, run $run: $t s ($(wc -l < "$WORK/list-$run.txt") lines)"
done
cmp -s "$WORK/list-1.txt" "$WORK/list-2.txt" && echo "LIST identical through both nodes" || echo "LIST DIFFERS between nodes"
for run in 1 2; do
  t=$(seconds python3 - "$WORK/mlsd-$run.txt" <<'PY'
import ftplib, sys
f = ftplib.FTP(); f.connect("127.0.0.1", 2121, timeout=60); f.login()
lines = []
f.retrlines("MLSD many", lines.append)
open(sys.argv[1], "w").write("\n".join(lines))
f.quit()
PY
); echo "ftplib MLSD through HAProxy, run $run: $t s ($(wc -l < "$WORK/mlsd-$run.txt") lines)"
done
cmp -s "$WORK/mlsd-1.txt" "$WORK/mlsd-2.txt" && echo "MLSD identical through both nodes" || echo "MLSD DIFFERS between nodes"
fi
