#!/usr/bin/env bash
# The scale-out topology on loopback, for trying it and for the tests:
#   HAProxy on 127.0.0.1:2121 -> two ferryd nodes (127.0.0.2:2121, 127.0.0.3:2121), PROXY
#   protocol v2 on every server line; each node's passive ports (30000-30099 on node A,
#   30100-30199 on node B) forwarded by HAProxy to that node;
#   both nodes on bucket "ferry" of a 3-node Garage cluster (replication factor 3) on
#   127.0.0.1:3900, :3910, :3920, reached through HAProxy on 127.0.0.1:3990.
#
# Usage: deploy/cluster/start.sh [WORKDIR]     (default /tmp/ferry-cluster; stop.sh WORKDIR stops it)
# Needs: garage 2.5.0 (cargo install garage --version 2.5.0 --locked), haproxy, and ferryd
# (FERRYD=path, default target/release/ferryd, built if missing). Anonymous users read
# s3://ferry/pub; the user "demo" (password "demo") writes s3://ferry/home.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-/tmp/ferry-cluster}
FERRYD=${FERRYD:-target/release/ferryd}
GARAGE=${GARAGE:-$(command -v garage || echo "$HOME/.cargo/bin/garage")}
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
[ -x "$GARAGE" ] || { echo "garage not found: cargo install garage --version 2.5.0 --locked" >&2; exit 1; }
[ -x "$HAPROXY" ] || { echo "haproxy not found: apt-get install haproxy" >&2; exit 1; }
[ -x "$FERRYD" ] || cargo build --release -p ferry-server --bin ferryd
if [ -e "$WORK/pids" ]; then echo "$WORK is in use: deploy/cluster/stop.sh $WORK first" >&2; exit 1; fi
mkdir -p "$WORK"
: > "$WORK/pids"

# Retries a command until it succeeds, for at most 60 seconds.
until_ok() {
  local deadline=$((SECONDS + 60))
  until "$@" > "$WORK/last.out" 2> "$WORK/last.err"; do
    if [ $SECONDS -ge $deadline ]; then cat "$WORK/last.err" >&2; echo "failed: $*" >&2; exit 1; fi
    sleep 0.25
  done
  cat "$WORK/last.out"
}

# --- Garage: three nodes, one zone, replication factor 3 ---
secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
for n in 1 2 3; do
  dir="$WORK/garage$n"
  mkdir -p "$dir/meta" "$dir/data"
  cat > "$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:39${n}1"
rpc_public_addr = "127.0.0.1:39${n}1"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:39$((n - 1))0"
root_domain = ".s3.garage.localhost"
TOML
  RUST_LOG=garage=warn "$GARAGE" -c "$dir/garage.toml" server > "$dir/garage.log" 2>&1 &
  echo $! >> "$WORK/pids"
done
g() { RUST_LOG=garage=warn "$GARAGE" -c "$WORK/garage1/garage.toml" "$@"; }
ids=()
for n in 1 2 3; do
  ids+=("$(until_ok env RUST_LOG=garage=warn "$GARAGE" -c "$WORK/garage$n/garage.toml" node id -q)")
done
until_ok g node connect "${ids[1]}" > /dev/null
until_ok g node connect "${ids[2]}" > /dev/null
for id in "${ids[@]}"; do until_ok g layout assign -z dc1 -c 1G "${id%%@*}" > /dev/null; done
until_ok g layout apply --version 1 > /dev/null
until_ok g bucket create ferry > /dev/null
key_id="GK$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
key_secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
until_ok g key import -n ferry --yes "$key_id" "$key_secret" > /dev/null
until_ok g bucket allow --read --write --owner ferry --key "$key_id" > /dev/null
umask 077
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$key_id" "$key_secret" > "$WORK/credentials"
umask 022

# --- HAProxy ---
sed "s|@WORK@|$WORK|g" deploy/cluster/haproxy.cfg > "$WORK/haproxy.cfg"
"$HAPROXY" -f "$WORK/haproxy.cfg" -D -p "$WORK/haproxy.pid"
cat "$WORK/haproxy.pid" >> "$WORK/pids"

# --- two ferryd nodes ---
hash=$(echo demo | "$FERRYD" --hash-password)
cat > "$WORK/users.toml" <<TOML
[[user]]
name = "demo"
password = "$hash"
root = "s3://ferry/home"
writable = true
TOML
# Each node's start is a script of its own ($WORK/ferryd-a.sh), to start it again after a crash.
write_node() { # name address passive-ports garage-endpoint
  cat > "$WORK/ferryd-$1.sh" <<SH
#!/bin/sh
"$(realpath "$FERRYD")" --listen "$2:2121" --root s3://ferry/pub --users-file "$WORK/users.toml" \\
  --server-name ftp.cluster.test \\
  --passive-ports "$3" --passive-address 127.0.0.1 --proxy-protocol-from 127.0.0.1/32 \\
  --s3-endpoint "$4" --s3-region garage --s3-credentials-file "$WORK/credentials" \\
  --stall-timeout "${FERRY_STALL:-300}" --abandoned-upload "${FERRY_ABANDONED:-86400}" \\
  ${FERRYD_EXTRA:-} >> "$WORK/ferryd-$1.log" 2>&1 &
echo \$! >> "$WORK/pids"
echo \$! > "$WORK/ferryd-$1.pid"
SH
  chmod +x "$WORK/ferryd-$1.sh"
  "$WORK/ferryd-$1.sh"
}
write_node a 127.0.0.2 30000-30099 http://127.0.0.1:3990
write_node b 127.0.0.3 30100-30199 http://127.0.0.1:3990

# Ready when a greeting comes through HAProxy from each node.
for node in a b; do
  deadline=$((SECONDS + 30))
  until grep -q "listening on" "$WORK/ferryd-$node.log"; do
    [ $SECONDS -lt $deadline ] || { cat "$WORK/ferryd-$node.log" >&2; exit 1; }
    sleep 0.1
  done
done
# ... and HAProxy has found both up: four greetings in a row through it.
greeted=0
deadline=$((SECONDS + 30))
while [ $greeted -lt 4 ]; do
  [ $SECONDS -lt $deadline ] || { echo "no greeting through HAProxy" >&2; exit 1; }
  if exec 3<>/dev/tcp/127.0.0.1/2121 && read -r -t 2 line <&3 && [ "${line:0:3}" = 220 ]; then
    greeted=$((greeted + 1))
  else
    greeted=0
    sleep 0.2
  fi
  exec 3>&- 3<&- 2>/dev/null || true
done
echo "cluster up in $WORK: ftp://127.0.0.1:2121 (anonymous, or demo/demo); stop with deploy/cluster/stop.sh $WORK"
