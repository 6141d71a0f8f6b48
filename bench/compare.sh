#!/usr/bin/env bash
# Compares ferryd with vsftpd, Pure-FTPd, pyftpdlib and unFTP 0.16 on loopback using
# ferry-bench, one server after the other.
#
#   bench/compare.sh           # full: 1 GiB file, 10 s per concurrent workload (~20 minutes)
#   bench/compare.sh --quick   # smoke: 64 MiB file, 2 s per concurrent workload, small counts
#
# Every network workload is given the server's pid, so besides its speed it reports the CPU
# time the server's process tree used (reaped session processes included): CPU s/GiB for big
# transfers, µs per login and per small transfer, ms per listing.
#
# Idle sessions (RSS per session, time to establish): 10,000 for the one-process servers
# (ferryd, pyftpdlib, unFTP), 500 for the forking ones (vsftpd and Pure-FTPd run a process of
# several MiB per session: 10,000 would need tens of GB), and 50,000 for ferryd alone on a fresh
# server (the issue asks for 50,000 logged-in sessions held by one ferryd; one source address
# has only ~28,000 ephemeral ports, so past 20,000 sessions the bench spreads its connections
# over 127.0.0.1, 127.0.0.2, ...). Both ferryd and the bench
# then need a descriptor limit above 50,000: the bench raises its own (root, CAP_SYS_RESOURCE),
# and ferryd is started under `prlimit --nofile=1048576:1048576` when that is allowed.
#
# Listings: LIST, MLSD and NLST of a 10,000-entry and a 100,000-entry folder (ms, and µs per
# entry, to see whether the cost stays flat).
#
# Every server is also measured downloading the big file in TYPE A (retr-big-ascii; vsftpd is
# configured to convert, which it does not by default) and under slow readers (many clients each
# reading the big file at 64 KiB/s through a small receive buffer, with the server's RSS sampled
# every second).
#
# Every server is also measured over explicit FTPS with one throwaway self-signed certificate:
# logins with a full TLS handshake each (tls-logins: AUTH TLS, USER, PASS, QUIT; no session
# resumption between logins), retr-big-tls and stor-big-tls. pyftpdlib needs pyopenssl for it
# (TLS_FTPHandler); Pure-FTPd takes the certificate with `-2 CERT,KEY`. A peer whose FTPS fails
# gets an error row, and the run goes on.
#
# unFTP is installed with `cargo install unftp --version 0.16.0 --locked` when missing (set
# UNFTP to use another binary); it serves anonymous users from the generated data, writable.
#
# Needs root (it installs packages and runs the peers). Every server listens on 127.0.0.1 only
# and is stopped on exit. For a moment while Pure-FTPd runs, the `ftp` user's home folder points
# at the generated data (Pure-FTPd serves anonymous users from it); it is restored on exit.
set -euo pipefail

QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
if ((QUICK)); then
    BIG_MIB=64 SECONDS_EACH=2 LOGIN_CLIENTS="4 20" PACED_CLIENTS=20 PACE=500 SMALL_CLIENTS=4 RUNS=1 LIST_RUNS=2
    TLS_LOGIN_CLIENTS=20 FOLDER_ENTRIES=1000 FOLDER_ENTRIES_BIG=10000
    IDLE_CLIENTS=200 IDLE_CLIENTS_FORKING=50 IDLE_CLIENTS_FERRYD=1000
    SLOW_CLIENTS=20 SLOW_SECONDS=3
else
    BIG_MIB=1024 SECONDS_EACH=10 LOGIN_CLIENTS="20 200" PACED_CLIENTS=200 PACE=2000 SMALL_CLIENTS=50 RUNS=5 LIST_RUNS=5
    TLS_LOGIN_CLIENTS=20 FOLDER_ENTRIES=10000 FOLDER_ENTRIES_BIG=100000
    IDLE_CLIENTS=10000 IDLE_CLIENTS_FORKING=500 IDLE_CLIENTS_FERRYD=50000
    SLOW_CLIENTS=200 SLOW_SECONDS=20
fi
# SERVERS="ferryd unftp" bash bench/compare.sh runs only those (ferryd first for the ratios).
SERVERS=${SERVERS:-"ferryd vsftpd pure-ftpd pyftpdlib unftp"}
UNFTP=${UNFTP:-$HOME/.cargo/bin/unftp}
SLOW_RATE=65536

REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/ferry-compare.XXXXXX)
DATA="$WORK/data"
RESULTS="$WORK/results.tsv"
CERT="$WORK/cert.pem"
KEY="$WORK/key.pem"
RUNNING_PID=""
FTP_HOME=""

cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "== $*" >&2; }

stop_server() {
    if [[ -n "$RUNNING_PID" ]]; then
        kill "$RUNNING_PID" 2>/dev/null || true
        wait "$RUNNING_PID" 2>/dev/null || true
        RUNNING_PID=""
    fi
    if [[ -n "$FTP_HOME" ]]; then
        usermod -d "$FTP_HOME" ftp || true
        FTP_HOME=""
    fi
}

install_peers() {
    say "installing peers"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
    fi
    command -v vsftpd >/dev/null || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq vsftpd >/dev/null
    }
    python3 -c 'import pyftpdlib' 2>/dev/null || python3 -m pip install -q pyftpdlib
    mkdir -p "$WORK/pure-ftpd" /var/run/vsftpd/empty
    (cd "$WORK/pure-ftpd" && apt-get download -qq pure-ftpd 2>/dev/null && dpkg -x pure-ftpd_*.deb root)
    # A failed install leaves unFTP out (its start fails and gets an error row).
    if [[ ! -x "$UNFTP" ]]; then
        nice cargo install -q unftp --version 0.16.0 --locked || say "cannot install unFTP"
    fi
}

build() {
    say "building ferryd and ferry-bench (release)"
    (cd "$REPO" && nice cargo build --release -q -p ferry-server -p ferry-bench)
    FERRYD="${CARGO_TARGET_DIR:-$REPO/target}/release/ferryd"
    BENCH="${CARGO_TARGET_DIR:-$REPO/target}/release/ferry-bench"
}

make_data() {
    say "generating data: ${BIG_MIB} MiB file, 1715-byte file, ${FOLDER_ENTRIES}- and ${FOLDER_ENTRIES_BIG}-entry folders"
    mkdir -p "$DATA/many" "$DATA/many100k" "$DATA/upload"
    head -c "$((BIG_MIB * 1024 * 1024))" /dev/urandom > "$DATA/big.bin"
    head -c 1715 /dev/urandom > "$DATA/small.bin"
    (cd "$DATA/many" && seq -f 'file-%05.0f.txt' 1 "$FOLDER_ENTRIES" | xargs touch)
    (cd "$DATA/many100k" && seq -f 'file-%06.0f.txt' 1 "$FOLDER_ENTRIES_BIG" | xargs touch)
    chmod 755 "$WORK" "$DATA" "$DATA/many" "$DATA/many100k"
    chown ftp "$DATA/upload"
    # The peers' certificate (ferryd makes its own with --tls-self-signed); outside $DATA.
    openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
        -keyout "$KEY" -out "$CERT" 2>/dev/null
}

# Runs a server under a descriptor limit of 1048576 when this machine allows raising it (root
# with CAP_SYS_RESOURCE), else as it is (the hard limit stays what it was). It execs, so that
# when run in the background, $! is the server itself (to measure, and to stop).
with_file_limit() {
    if prlimit --nofile=1048576:1048576 true 2>/dev/null; then
        exec prlimit --nofile=1048576:1048576 "$@"
    else
        exec "$@"
    fi
}

wait_for_port() {
    local port=$1
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    say "nothing listening on port $port"
    return 1
}

start_ferryd() {
    with_file_limit "$FERRYD" --listen 127.0.0.1:2121 --root "$DATA" --anonymous-writable \
        --log-level warn --passive-ports 20000-20999 --max-sessions 60000 --max-sessions-per-ip 0 \
        --tls-self-signed >"$WORK/ferryd.log" 2>&1 &
    SERVER_PID=$!
    PORT=2121
}

start_vsftpd() {
    cat > "$WORK/vsftpd.conf" <<CONF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=2122
background=NO
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$DATA
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
anon_umask=022
pasv_enable=YES
pasv_min_port=21000
pasv_max_port=21999
ascii_download_enable=YES
max_clients=0
max_per_ip=0
xferlog_enable=NO
secure_chroot_dir=/var/run/vsftpd/empty
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=NO
force_anon_data_ssl=NO
require_ssl_reuse=YES
ssl_ciphers=HIGH
rsa_cert_file=$CERT
rsa_private_key_file=$KEY
CONF
    vsftpd "$WORK/vsftpd.conf" >"$WORK/vsftpd.log" 2>&1 &
    SERVER_PID=$!
    PORT=2122
}

start_pure_ftpd() {
    FTP_HOME=$(getent passwd ftp | cut -d: -f6)
    usermod -d "$DATA" ftp
    "$WORK/pure-ftpd/root/usr/sbin/pure-ftpd" -S 127.0.0.1,2123 -p 22000:22999 -c 4000 -C 4000 \
        -H -A -L 200000:8 -Y 1 -2 "$CERT,$KEY" >"$WORK/pure-ftpd.log" 2>&1 &
    SERVER_PID=$!
    PORT=2123
}

start_pyftpdlib() {
    python3 "$REPO/bench/pyftpd_server.py" 2124 "$DATA" 23000 23999 --tls "$CERT" "$KEY" \
        >"$WORK/pyftpdlib.log" 2>&1 &
    SERVER_PID=$!
    PORT=2124
}

# unFTP: anonymous (its default) on the local file system, FTPS offered, warnings only (its
# default level, as ferryd's --log-level warn), its metrics HTTP server kept on loopback.
start_unftp() {
    "$UNFTP" --bind-address 127.0.0.1:2125 --bind-address-http 127.0.0.1:2126 --root-dir "$DATA" \
        --passive-ports 28000-28999 --auth-type anonymous --log-level warn \
        --ftps-certs-file "$CERT" --ftps-key-file "$KEY" >"$WORK/unftp.log" 2>&1 &
    SERVER_PID=$!
    PORT=2125
}

# Runs one workload with the server's pid (for its CPU time, and memory where measured);
# appends `SERVER<TAB>JSON` (or an error record) to the results. An error record names the
# workload with `-ascii` or `-tls` appended when `--ascii` or `--tls` is among the arguments,
# and `@N` with `--clients N` for logins and idle (as table.py keys their rows).
workload() {
    local server=$1 name=$2
    shift 2
    local label=$name
    [[ " $* " == *" --ascii "* ]] && label="$label-ascii"
    [[ " $* " == *" --tls "* ]] && label="$label-tls"
    [[ "$name" == logins || "$name" == idle ]] && [[ " $* " =~ " --clients "([0-9]+) ]] &&
        label="$label@${BASH_REMATCH[1]}"
    local output
    if output=$(RUST_BACKTRACE=0 "$BENCH" --port "$PORT" --pid "$SERVER_PID" "$name" "$@" 2>"$WORK/bench-error"); then
        printf '%s\t%s\n' "$server" "$output" >> "$RESULTS"
        echo "$server $output" >&2
    else
        record_error "$server" "$label"
    fi
}

# Appends an error record for `server`'s `label`, the message read from $WORK/bench-error.
record_error() {
    local server=$1 label=$2 message
    message=$(python3 -c 'import json, sys; print(json.dumps(" ".join(sys.stdin.read().split())[:400]))' < "$WORK/bench-error")
    printf '%s\t{"workload":"%s","error":%s}\n' "$server" "$label" "$message" >> "$RESULTS"
    say "$server $label failed: $message"
}

# Starts `server` and waits for its port; false (with an error row) if it does not come up.
start_server() {
    local server=$1
    "start_${server//-/_}"
    RUNNING_PID=$SERVER_PID
    # A server that exited (say, its port was taken) must not be measured through another
    # process answering on that port.
    if ! wait_for_port "$PORT" || ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "did not start: $(tail -c 300 "$WORK/$server.log" 2>/dev/null)" > "$WORK/bench-error"
        record_error "$server" start
        stop_server
        return 1
    fi
}

# How many idle sessions `server` is measured with: a process per session is too big for
# 10,000 at once (see the header).
idle_clients() {
    case $1 in
        # unFTP 0.16 closed every connection and stopped answering at 10,000 (2026-12-06).
        vsftpd | pure-ftpd | unftp) echo "$IDLE_CLIENTS_FORKING" ;;
        *) echo "$IDLE_CLIENTS" ;;
    esac
}

bench_server() {
    local server=$1
    say "benchmarking $server"
    start_server "$server" || return 0
    # Idle first, on a fresh server: after big transfers an allocator keeps freed buffers, and
    # new sessions would fit in them without raising the RSS at all.
    workload "$server" idle --clients "$(idle_clients "$server")"
    # Slow readers next, for the same reason: their RSS gain is measured from a server that has
    # not yet made (and kept) big transfer buffers.
    workload "$server" slow-readers --clients "$SLOW_CLIENTS" --rate "$SLOW_RATE" \
        --seconds "$SLOW_SECONDS" --path big.bin
    workload "$server" retr-big --path big.bin --runs "$RUNS"
    workload "$server" retr-big --path big.bin --runs "$RUNS" --ascii
    workload "$server" stor-big --size "$((BIG_MIB * 1024 * 1024))" --path upload/stor.bin --runs "$RUNS"
    workload "$server" retr-big --path big.bin --runs "$RUNS" --tls
    workload "$server" stor-big --size "$((BIG_MIB * 1024 * 1024))" --path upload/stor-tls.bin \
        --runs "$RUNS" --tls
    rm -f "$DATA"/upload/*
    for clients in $LOGIN_CLIENTS; do
        workload "$server" logins --clients "$clients" --seconds "$SECONDS_EACH"
    done
    # Latency at a fixed offered load (one the fastest peer sustains), not at saturation.
    workload "$server" logins --clients "$PACED_CLIENTS" --seconds "$SECONDS_EACH" --pace "$PACE"
    workload "$server" logins --clients "$TLS_LOGIN_CLIENTS" --seconds "$SECONDS_EACH" --tls
    workload "$server" retr-small --path small.bin --clients "$SMALL_CLIENTS" --seconds "$SECONDS_EACH"
    workload "$server" list-big --path many --runs "$LIST_RUNS"
    workload "$server" list-big --path many100k --runs "$LIST_RUNS"
    stop_server
    sleep 1
    if [[ "$server" == ferryd ]]; then
        # The most sessions, on a fresh server of their own (see the header).
        start_server "$server" || return 0
        workload "$server" idle --clients "$IDLE_CLIENTS_FERRYD"
        stop_server
        sleep 1
    fi
}

main() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    install_peers
    build
    make_data
    : > "$RESULTS"
    say "loopback ceiling"
    printf 'loopback\t%s\n' "$("$BENCH" ceiling --file "$DATA/big.bin" --runs "$RUNS")" >> "$RESULTS"
    for server in $SERVERS; do
        bench_server "$server"
    done
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "Mode: $( ((QUICK)) && echo quick || echo full ): ${BIG_MIB} MiB file, logins ${LOGIN_CLIENTS} (and ${PACED_CLIENTS} paced at ${PACE}/s) and retr-small ${SMALL_CLIENTS} clients x ${SECONDS_EACH} s," \
        "tls-logins ${TLS_LOGIN_CLIENTS} clients, ${FOLDER_ENTRIES}- and ${FOLDER_ENTRIES_BIG}-entry folders," \
        "idle sessions ${IDLE_CLIENTS} (vsftpd, Pure-FTPd ${IDLE_CLIENTS_FORKING}; ferryd also ${IDLE_CLIENTS_FERRYD})," \
        "${SLOW_CLIENTS} slow readers at ${SLOW_RATE} B/s x ${SLOW_SECONDS} s," \
        "${RUNS} run(s) per big transfer (median)"
    echo
    python3 "$REPO/bench/table.py" "$RESULTS"
}

main
