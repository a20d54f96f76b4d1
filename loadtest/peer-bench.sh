#!/usr/bin/env bash
# peer-bench.sh: turnpike side by side with nginx and HAProxy as reverse proxies to one backend.
#
# Starts a backend (its own nginx instance: a small body at /, 16 KiB at /16k, a 1 MiB POST sink
# at /upload), then nginx, HAProxy and turnpike as reverse proxies to it with the same number of
# workers and upstream keep-alive, proxies pinned to one CPU set and the load generator + backend
# to another. Runs interleaved rounds of the same load against direct, nginx, haproxy and
# turnpike with turnpike-load, and prints a table of medians with ratios to nginx; writes JSON.
#
#   loadtest/peer-bench.sh                      # defaults: 5 rounds, 5 s each, 64 connections
#   loadtest/peer-bench.sh --rounds 3 --duration 3s --scenarios "small rate"
#   loadtest/peer-bench.sh --wrk-check          # turnpike-load vs wrk against the backend
#   loadtest/peer-bench.sh --scrape-check       # turnpike with and without a /metrics scrape every 100 ms
#   loadtest/peer-bench.sh --idle-check         # resident memory per idle keep-alive connection
#   loadtest/peer-bench.sh --scenarios "tls tls-newconn tls-resume"  # proxies terminating TLS 1.3
#   loadtest/peer-bench.sh --idle-check --tls   # resident memory per idle TLS connection
#   TURNPIKE_BASE=old/turnpike loadtest/peer-bench.sh  # also a second turnpike binary, turnpike-base,
#                                               # with the same config: new against old
#   loadtest/peer-bench.sh --scenarios "small apikeys"  # an API key per request among 10,000
#   loadtest/peer-bench.sh --scenarios "small jwt"      # a JWT per request among 1,000
#   loadtest/peer-bench.sh --scenarios cache-hit        # every request a response-cache hit
#
# TLS scenarios (tls, tls-newconn, tls-resume) and --idle-check --tls: each proxy also
# terminates TLS 1.3 on a port of its own (turnpike :18443, nginx :18444, HAProxy :18445,
# turnpike-base :18446) with one ECDSA P-256 self-signed certificate made for the run
# (bench.turnpike.test and IP 127.0.0.1), proxying to the same plain-HTTP backend.
#
# apikeys scenario: each request carries an x-api-key drawn from APIKEYS (10,000) keys made for
# the run. nginx (a map over the keys, a limit_req zone keyed by the key), HAProxy (a map file, a
# stick table tracking each key's request rate) and turnpike (a route with api_key_required, a
# usage plan with a throttle, the keys imported through the admin API) each check the key and
# count it against a per-key limit too high to refuse anything, on ports of their own
# (nginx-apikeys, haproxy-apikeys, turnpike-apikeys), beside the same proxies without the check.
#
# jwt scenario: each request carries Authorization: Bearer <token>, one of JWTS (1,000)
# distinct RS256 tokens signed with a 2048-bit key made for the run (exp in 2100). turnpike-jwt
# (and turnpike-base-jwt) puts a JWT authorizer on the route, its keys fetched from the backend's
# /jwks; turnpike, nginx and HAProxy ignore the header. nginx and HAProxy have no built-in JWT
# check (nginx's auth_jwt is NGINX Plus only; HAProxy's jwt_verify needs Lua or ACL plumbing
# per claim), so they run plain, as context only.
#
# cache-hit scenario: GETs of one cacheable response (CACHE_BODY_BYTES, 1 KiB, of JSON;
# Cache-Control: max-age=3600, ETag, Last-Modified) from the backend's /cached, through nginx
# (proxy_cache, a keys zone on disk), HAProxy (a cache section in memory, max-object-size above
# the body) and turnpike (the stage cache, mode aws, TTL 3600 s), each on a port of its own
# (nginx-cache, haproxy-cache, turnpike-cache), beside the same proxies without a cache (every
# request a miss, for comparison). Each cache is warmed before the rounds (and checked: the
# backend must see none of 10 more requests), and the backend's own request counter (nginx
# stub_status) is read around every run: the table says how many requests reached it, so hits
# are seen to be hits. A turnpike that does not know the stage cache runs without it (its
# -cache rows are then misses, and its backend count says so).
#
# Every turnpike config sets gateway.throttle to TURNPIKE_THROTTLE (default null: the
# account-level throttle, 10,000 req/s by default, would otherwise cap every scenario); a binary
# that predates that field runs without the line.
#
# Everything runs on loopback high ports; every process started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONNS=${CONNS:-64}
UPLOAD_CONNS=${UPLOAD_CONNS:-8}
NEWCONN_CONNS=${NEWCONN_CONNS:-16}
WORKERS=${WORKERS:-1}
PROXY_CPUS=${PROXY_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}
SCENARIOS=${SCENARIOS:-"small big upload newconn rate"}
TARGETS_SET=${TARGETS:+1}
TARGETS=${TARGETS:-"direct nginx haproxy turnpike"}
JSON_SET=${OUT_JSON:+1}
OUT_JSON=${OUT_JSON:-$TARGET_DIR/peer-bench.json}
KEEP_TMP=${KEEP_TMP:-0}
# nginx's proxy_request_buffering: "on" (its default) reads a whole request body before it
# starts the upstream request; "off" streams it as turnpike and HAProxy do.
NGINX_REQUEST_BUFFERING=${NGINX_REQUEST_BUFFERING:-on}
TURNPIKE=${TURNPIKE:-$TARGET_DIR/release/turnpike}
LOAD=${LOAD:-$TARGET_DIR/release/turnpike-load}
# A second turnpike binary (say, one built from an earlier commit), run as turnpike-base with
# exactly the turnpike target's config on its own ports; a target only when this is set.
TURNPIKE_BASE=${TURNPIKE_BASE:-}
WRK_CHECK=0
SCRAPE_CHECK=0
IDLE_CHECK=0
# --idle-check --tls: the idle connections speak TLS.
IDLE_TLS=${IDLE_TLS:-0}
IDLE_CONNS=${IDLE_CONNS:-10000}
# --idle-check: longest wait for a proxy's RSS to stop moving once its connections are open.
IDLE_SETTLE_MAX=${IDLE_SETTLE_MAX:-15}
# The origin the policies scenario sends and the CORS policies allow.
CORS_ORIGIN=https://app.example.com
SCRAPE_ROUTES=${SCRAPE_ROUTES:-200}
# apikeys: distinct keys, and the per-key limit every proxy counts them against (requests per
# second and burst), far above what one key gets in a run so that nothing is refused.
APIKEYS=${APIKEYS:-10000}
APIKEY_RATE=${APIKEY_RATE:-1000000}
APIKEY_BURST=${APIKEY_BURST:-100000}
# jwt: distinct tokens; the Python that signs them (with pyca/cryptography when it imports,
# else through `openssl dgst -sign`, one process per token).
JWTS=${JWTS:-1000}
JWT_PYTHON=${JWT_PYTHON:-python3}
# cache-hit: the cached response's size (HAProxy's cache here takes objects up to 64 KiB) and
# the lifetime every cache gives it (longer than any run).
CACHE_BODY_BYTES=${CACHE_BODY_BYTES:-1024}
CACHE_TTL_S=3600
# cache-hit: the stage cache of turnpike's -cache targets (YAML).
TURNPIKE_STAGE_CACHE=${TURNPIKE_STAGE_CACHE:-"{ enabled: true, capacity_bytes: 67108864, ttl_seconds: $CACHE_TTL_S, mode: aws }"}
# turnpike's account-level throttle in every config written here (YAML); null turns it off.
TURNPIKE_THROTTLE=${TURNPIKE_THROTTLE:-null}

BACKEND_PORT=18000
TURNPIKE_PORT=18080
NGINX_PORT=18081
HAPROXY_PORT=18082
NGINX_POLICIES_PORT=18083
TURNPIKE_POLICIES_PORT=18084
ADMIN_PORT=18090
ADMIN_POLICIES_PORT=18091
TURNPIKE_BASE_PORT=18085
TURNPIKE_BASE_POLICIES_PORT=18086
ADMIN_BASE_PORT=18092
ADMIN_BASE_POLICIES_PORT=18093
# apikeys scenario: the proxies checking an API key per request.
NGINX_APIKEYS_PORT=18087
HAPROXY_APIKEYS_PORT=18088
TURNPIKE_APIKEYS_PORT=18089
TURNPIKE_BASE_APIKEYS_PORT=18094
ADMIN_APIKEYS_PORT=18095
ADMIN_BASE_APIKEYS_PORT=18096
# jwt scenario: the turnpikes with a JWT authorizer on the route.
TURNPIKE_JWT_PORT=18097
ADMIN_JWT_PORT=18098
TURNPIKE_BASE_JWT_PORT=18099
ADMIN_BASE_JWT_PORT=18100
# cache-hit scenario: the proxies with a response cache.
NGINX_CACHE_PORT=18101
HAPROXY_CACHE_PORT=18102
TURNPIKE_CACHE_PORT=18103
ADMIN_CACHE_PORT=18104
TURNPIKE_BASE_CACHE_PORT=18105
ADMIN_BASE_CACHE_PORT=18106
# TLS listeners (TLS scenarios and --idle-check --tls only); the backend stays plain HTTP.
TURNPIKE_TLS_PORT=18443
NGINX_TLS_PORT=18444
HAPROXY_TLS_PORT=18445
TURNPIKE_BASE_TLS_PORT=18446
# The certificate's name: sent as SNI by the TLS scenarios; its IP SAN is 127.0.0.1.
TLS_NAME=bench.turnpike.test
# Connection limits and client idle timeouts of the proxies; --idle-check raises them.
NGINX_WORKER_CONNECTIONS=16384
HAPROXY_MAXCONN=8000
CLIENT_IDLE_S=60
NGINX_KEEPALIVE_S=300

usage() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOF

Options (environment variable in brackets):
  --rounds N          interleaved rounds per scenario [ROUNDS=$ROUNDS]
  --duration D        measured time per run [DURATION=$DURATION]
  --warmup D          warm-up per run [WARMUP=$WARMUP]
  --conns N           connections for small/big/rate [CONNS=$CONNS]
  --workers N         proxy workers (nginx worker_processes, haproxy nbthread, turnpike workers) [WORKERS=$WORKERS]
  --proxy-cpus LIST   taskset CPU list for the proxies [PROXY_CPUS=$PROXY_CPUS]
  --load-cpus LIST    taskset CPU list for the generator and the backend [LOAD_CPUS=$LOAD_CPUS]
  --scenarios LIST    any of: small big upload newconn rate policies apikeys jwt cache-hit
                      tls tls-newconn tls-resume
                      [SCENARIOS="$SCENARIOS"]
                      tls: small GETs over kept-alive TLS 1.3 connections (--conns); tls-newconn:
                      a new TLS connection per request, full handshakes; tls-resume: the same,
                      each reconnect resuming a session (turnpike-load --tls-resume); both with
                      NEWCONN_CONNS=$NEWCONN_CONNS connections. Against nginx, haproxy, turnpike and
                      turnpike-base (not direct: the backend is plain HTTP), each terminating
                      TLS with the same ECDSA P-256 certificate (the generator skips the chain
                      check, --insecure, and sends SNI $TLS_NAME); the table adds each target's
                      negotiated protocol and cipher suite and its resumed handshakes
                      policies: small GETs with an Origin header against nginx and turnpike, each
                      plain and with CORS + a JSON access log to a file (nginx-policies,
                      turnpike-policies); ratios in its table are to nginx-policies
                      apikeys: small GETs each with an x-api-key drawn at random from APIKEYS
                      keys made for the run (turnpike-load --header-values), against nginx,
                      haproxy, turnpike and turnpike-base, each plain (the header ignored) and
                      checking the key (nginx-apikeys: map + limit_req zone keyed by the key;
                      haproxy-apikeys: map file + stick table of each key's request rate;
                      turnpike-apikeys: route with api_key_required, a usage plan with a
                      throttle and no quota, the keys imported with POST /v1/apikeys/import),
                      every per-key limit APIKEY_RATE r/s, burst APIKEY_BURST, so nothing is
                      refused; ratios in its table are to nginx-apikeys, and it adds each
                      target against itself without the check
                      jwt: small GETs each with Authorization: Bearer <one of JWTS RS256
                      tokens made for the run>, against turnpike and turnpike-base, each plain
                      (the header ignored) and with a JWT authorizer on the route (turnpike-jwt,
                      turnpike-base-jwt: keys from the backend's /jwks, verified tokens cached
                      per core), and nginx and haproxy plain only (neither has a built-in JWT
                      check); ratios to nginx, and each -jwt target against itself without
                      cache-hit: GETs of one cacheable CACHE_BODY_BYTES response, against
                      direct and nginx, haproxy, turnpike, turnpike-base each plain (misses)
                      and with its cache (nginx-cache: proxy_cache; haproxy-cache: a cache
                      section; turnpike-cache: the stage cache, mode aws), warmed first; the
                      table adds the requests the backend saw per response sent; ratios to
                      nginx-cache
  --targets LIST      any of: direct nginx haproxy turnpike turnpike-base [TARGETS="$TARGETS";
                      turnpike-base is added when TURNPIKE_BASE is set and --targets is not]
  --base PATH         a second turnpike binary, the turnpike-base target: the turnpike target's
                      config on its own port (and, in policies, turnpike-base-policies); the
                      summary ends with turnpike against turnpike-base [TURNPIKE_BASE]
  --json FILE         JSON results [OUT_JSON=$OUT_JSON; --idle-check: peer-bench-idle.json]
  --rate RPS          rate for the rate scenario [RATE; default: 50% of nginx's median max]
  --wrk-check         instead: turnpike-load vs wrk, interleaved, against the backend
  --idle-check        instead: resident memory (RSS) per idle keep-alive connection of nginx,
                      HAProxy, turnpike and turnpike-base (those in --targets), each restarted
                      fresh for every round: RSS before, open --idle-conns connections with one request each,
                      RSS once it settles, (after - before) / connections; medians of --rounds
  --idle-conns N      connections held open by --idle-check [IDLE_CONNS=$IDLE_CONNS]
  --tls               with --idle-check: the idle connections are TLS 1.3 ones, each through a
                      full handshake and one request [IDLE_TLS=1; JSON default:
                      peer-bench-idle-tls.json]
  --scrape-check      instead: turnpike's small-response throughput (or, with --rate, latency at that
                      constant rate) with and without a GET /metrics every 100 ms, interleaved
                      [SCRAPE_ROUTES=$SCRAPE_ROUTES routes besides \$default, so each scrape has
                      that many routes' series to merge and format]
  TURNPIKE=path       the turnpike binary; LOAD=path the turnpike-load binary
  APIKEYS=$APIKEYS APIKEY_RATE=$APIKEY_RATE APIKEY_BURST=$APIKEY_BURST  apikeys: keys, and the
                      per-key limit (r/s, burst) of every proxy's check
  JWTS=$JWTS             jwt: distinct tokens, drawn at random per request
  CACHE_BODY_BYTES=$CACHE_BODY_BYTES  cache-hit: the cached response's size (at most 65536)
  JWT_PYTHON=python3  jwt: the Python that mints the tokens; with pyca/cryptography importable it
                      signs in-process, else it runs openssl once per token
  APIKEY_PLAN='{...}' apikeys: the JSON body of turnpike's POST /v1/usageplans (default: the
                      bench API's \$default stage, the limit above, no quota; @RATE@ and
                      @BURST@ are replaced)
  TURNPIKE_THROTTLE='{ rate_limit: R, burst_limit: B }'  gateway.throttle of every turnpike
                      config [default null: off]
  TURNPIKE_BASE=path  the turnpike-base binary (same as --base)
  QUIET_MAX=10 QUIET_WAIT=120  before each run, wait up to QUIET_WAIT s for other load to fall
                      under QUIET_MAX % of the machine (runs that could not are counted as noisy)
  NGINX_REQUEST_BUFFERING=off  nginx streams request bodies upstream instead of reading each
                      whole first (its default, on)
  KEEP_TMP=1          keep the temp dir (configs, logs, per-run JSON) for a look afterwards
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --conns) CONNS=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --proxy-cpus) PROXY_CPUS=$2; shift 2 ;;
        --load-cpus) LOAD_CPUS=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --targets) TARGETS=$2; TARGETS_SET=1; shift 2 ;;
        --base) TURNPIKE_BASE=$2; shift 2 ;;
        --json) OUT_JSON=$2; JSON_SET=1; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --wrk-check) WRK_CHECK=1; shift ;;
        --scrape-check) SCRAPE_CHECK=1; shift ;;
        --idle-check) IDLE_CHECK=1; shift ;;
        --idle-conns) IDLE_CONNS=$2; shift 2 ;;
        --tls) IDLE_TLS=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "peer-bench: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done

log() { echo "peer-bench: $*" >&2; }

# is_tls SCENARIO: the scenarios that run over TLS, against the proxies' TLS ports.
is_tls() { [[ $1 == tls || $1 == tls-* ]]; }

# WANT_TLS=1: the proxies get TLS listeners and the run a certificate.
WANT_TLS=0
for scenario in $SCENARIOS; do is_tls "$scenario" && WANT_TLS=1; done
if [[ $IDLE_TLS == 1 ]]; then
    [[ $IDLE_CHECK == 1 ]] || { log "--tls goes with --idle-check (TLS scenarios are chosen with --scenarios)"; exit 2; }
    WANT_TLS=1
fi

# turnpike-base is a target only with a binary to run: added to the default targets when
# TURNPIKE_BASE is set, dropped from any targets when it is not.
if [[ -n $TURNPIKE_BASE ]]; then
    [[ -n $TARGETS_SET || " $TARGETS " == *" turnpike-base "* ]] || TARGETS+=" turnpike-base"
elif [[ " $TARGETS " == *" turnpike-base "* ]]; then
    log "turnpike-base needs TURNPIKE_BASE (or --base PATH): left out"
    TARGETS=$(echo " $TARGETS " | sed 's/ turnpike-base / /g; s/^ *//; s/ *$//')
fi

# --- tools -------------------------------------------------------------------------------------
ensure_tools() {
    local missing=()
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
    command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v python3 >/dev/null || missing+=(python3)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v curl >/dev/null || missing+=(curl)
    if [[ $WANT_TLS == 1 || " $SCENARIOS " == *" jwt "* ]]; then
        command -v openssl >/dev/null || missing+=(openssl)
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        log "installing ${missing[*]} with apt"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    export PATH="$PATH:/usr/sbin:/sbin"
}

ensure_binaries() {
    # --idle-check opens its connections with loadtest/idle-conns.py: no turnpike-load needed.
    if [[ ! -x $LOAD && $IDLE_CHECK != 1 ]]; then
        log "building turnpike-load (release)"
        (cd "$ROOT" && cargo build --release -p turnpike-load)
    fi
    # Not for a run without a turnpike target (--targets "nginx haproxy").
    if [[ ! -x $TURNPIKE && " $TARGETS " == *" turnpike "* ]]; then
        log "building turnpike (release)"
        (cd "$ROOT" && cargo build --release -p turnpike-proxy) ||
            log "turnpike did not build: its column will say missing"
    fi
}

# --- processes ---------------------------------------------------------------------------------
TMP=$(mktemp -d -t peer-bench.XXXXXX)
# nginx workers run as an unprivileged user: they must be able to read the bodies served here.
chmod 755 "$TMP"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $KEEP_TMP == 1 ]]; then
        echo "peer-bench: kept $TMP (per-run JSON in results/, server logs)" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT SECONDS [PID]: true once something accepts on 127.0.0.1:PORT; false after
# SECONDS, or as soon as PID (the server being waited for) has exited.
wait_port() {
    local port=$1 deadline=$((SECONDS + $2)) pid=${3:-}
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# start NAME CPUS CMD...: runs CMD pinned in the background, remembers its pid.
declare -A PID_OF=()
start() {
    local name=$1 cpus=$2
    shift 2
    taskset -c "$cpus" "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    PID_OF[$name]=$!
}

# cpu_ticks PID: user+system clock ticks used so far by PID and its children (nginx's workers
# are children of its master; turnpike and HAProxy are one process with threads).
cpu_ticks() {
    local pid=$1 total=0 p
    for p in $pid $(pgrep -P "$pid" 2>/dev/null); do
        if [[ -r /proc/$p/stat ]]; then
            # Fields 14 and 15 (utime, stime), counted after the command name's closing paren.
            total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
        fi
    done
    echo "$total"
}

# stop NAME [SIGNAL]: stops a process started with start (default SIGTERM) and waits for it.
stop() {
    local name=$1 sig=${2:-TERM} pid=${PID_OF[$1]:-}
    [[ -n $pid ]] || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
    unset "PID_OF[$name]"
}

# forget_pid PID: drops a process that has been waited for from the ones stopped on exit.
forget_pid() {
    local p keep=()
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# rss_kb PID: resident memory of PID and its children in KiB (Rss from smaps_rollup, VmRSS if
# that is unreadable): an nginx's master and workers together.
rss_kb() {
    local pid=$1 total=0 p v
    for p in $pid $(pgrep -P "$pid" 2>/dev/null); do
        v=$(awk '/^Rss:/ {print $2; exit}' "/proc/$p/smaps_rollup" 2>/dev/null ||
            awk '/^VmRSS:/ {print $2; exit}' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

nginx_common() {
    cat <<EOF
pid $TMP/$1.pid;
error_log $TMP/$1.error.log warn;
${NGINX_RLIMIT:+worker_rlimit_nofile $NGINX_RLIMIT;}
events { worker_connections $NGINX_WORKER_CONNECTIONS; multi_accept on; }
EOF
}

nginx_http_common() {
    cat <<EOF
    access_log off;
    client_body_temp_path $TMP/$1-body;
    proxy_temp_path $TMP/$1-proxy;
    fastcgi_temp_path $TMP/$1-fastcgi;
    uwsgi_temp_path $TMP/$1-uwsgi;
    scgi_temp_path $TMP/$1-scgi;
    keepalive_requests 10000000;
    keepalive_timeout ${NGINX_KEEPALIVE_S}s;
    client_max_body_size 2m;
    client_body_buffer_size 2m;
EOF
}

# make_cert: one self-signed ECDSA P-256 certificate for the run, for bench.turnpike.test and
# 127.0.0.1 (an end-entity certificate, CA:FALSE, so that strict verifiers such as rustls'
# accept it as its own trust anchor): cert.pem and key.pem (PKCS#8) for nginx and turnpike,
# bench.pem (both) for HAProxy.
make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -subj "/CN=$TLS_NAME" \
        -addext "subjectAltName=DNS:$TLS_NAME,IP:127.0.0.1" \
        -addext "basicConstraints=critical,CA:FALSE" \
        -addext "keyUsage=critical,digitalSignature" \
        -addext "extendedKeyUsage=serverAuth" 2>"$TMP/openssl.log" ||
        { log "openssl could not make the certificate:"; cat "$TMP/openssl.log" >&2; exit 1; }
    cat "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/bench.pem"
    chmod 644 "$TMP/cert.pem" "$TMP/key.pem" "$TMP/bench.pem"
}

# make_apikeys: APIKEYS distinct keys for the apikeys scenario, 40 characters of [A-Za-z0-9]
# as AWS makes them, drawn from the system's random source: apikeys.txt (one per line, what
# turnpike-load draws from), apikeys.nginx-map (the entries of nginx's map), apikeys.haproxy-map
# (HAProxy's map file). turnpike's import (JSON lines) is written once its usage plan exists.
make_apikeys() {
    python3 - "$TMP" "$APIKEYS" <<'PY'
import secrets, string, sys
tmp, n = sys.argv[1], int(sys.argv[2])
alphabet = string.ascii_letters + string.digits
keys = set()
while len(keys) < n:
    keys.add("".join(secrets.choice(alphabet) for _ in range(40)))
keys = sorted(keys)
with open(f"{tmp}/apikeys.txt", "w") as f:
    f.writelines(k + "\n" for k in keys)
with open(f"{tmp}/apikeys.nginx-map", "w") as f:
    f.writelines(f"{k} {k};\n" for k in keys)
with open(f"{tmp}/apikeys.haproxy-map", "w") as f:
    f.writelines(f"{k} 1\n" for k in keys)
PY
    chmod 644 "$TMP"/apikeys.*
    APIKEY_SAMPLE=$(head -1 "$TMP/apikeys.txt")
    log "apikeys: $(wc -l <"$TMP/apikeys.txt") keys made for the run"
}

# apikeys_check TARGET: a known key gets 200; no key and an unknown key get 403. True when so.
apikeys_check() {
    local url="http://127.0.0.1:$(port_of "$1")/" good none bad
    good=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $APIKEY_SAMPLE" "$url")
    none=$(curl -s -o /dev/null -w '%{http_code}' "$url")
    bad=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: not-a-key-of-this-run-0000000000000000" "$url")
    if [[ $good == 200 && $none == 403 && $bad == 403 ]]; then
        log "$1: a known key gets 200, none and an unknown one 403"
        return 0
    fi
    log "WARNING: $1 does not check keys as configured: known key $good, none $none, unknown $bad (want 200 403 403)"
    return 1
}

# make_jwts: JWTS distinct RS256 tokens for the jwt scenario, signed with a 2048-bit RSA key
# made for the run: jwks.json (the key set the backend serves at /jwks), jwts.txt ("Bearer
# <token>" per line, what turnpike-load draws from). Each token has the run's issuer (the
# backend's origin), audience "bench", its own sub and jti, and exp in 2100.
JWT_ISSUER=http://127.0.0.1:$BACKEND_PORT
make_jwts() {
    local t0=$SECONDS
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/jwt-key.pem" 2>"$TMP/openssl.log" ||
        { log "openssl could not make the JWT key:"; cat "$TMP/openssl.log" >&2; exit 1; }
    local how
    how=$("$JWT_PYTHON" - "$TMP" "$JWTS" "$JWT_ISSUER" <<'PY'

import base64, json, subprocess, sys, time
tmp, n, issuer = sys.argv[1], int(sys.argv[2]), sys.argv[3]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key_pem = open(f"{tmp}/jwt-key.pem", "rb").read()
try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    key = serialization.load_pem_private_key(key_pem, password=None)
    sign = lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    nums = key.public_key().public_numbers()
    modulus, exponent, how = nums.n, nums.e, "pyca/cryptography"
except ImportError:
    def sign(data):
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", f"{tmp}/jwt-key.pem"],
                              input=data, capture_output=True, check=True).stdout
    out = subprocess.run(["openssl", "rsa", "-in", f"{tmp}/jwt-key.pem", "-noout", "-modulus"],
                         capture_output=True, check=True, text=True).stdout
    modulus, exponent, how = int(out.strip().split("=", 1)[1], 16), 65537, "openssl"
as_bytes = lambda i: i.to_bytes((i.bit_length() + 7) // 8, "big")
kid = "bench-" + b64(as_bytes(modulus)[:6])
with open(f"{tmp}/jwks.json", "w") as f:
    json.dump({"keys": [{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                         "n": b64(as_bytes(modulus)), "e": b64(as_bytes(exponent))}]}, f)
header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}, separators=(",", ":")).encode())
now = int(time.time())
with open(f"{tmp}/jwts.txt", "w") as f:
    for i in range(n):
        claims = {"iss": issuer, "aud": "bench", "sub": f"user-{i:05d}", "jti": f"bench-{i}",
                  "iat": now, "exp": 4102444800, "scope": "bench/read"}
        data = header + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
        f.write(f"Bearer {data}.{b64(sign(data.encode()))}\n")
print(how)
PY
    ) || { log "could not mint the JWTs"; exit 1; }
    chmod 644 "$TMP/jwks.json" "$TMP/jwts.txt"
    JWT_SAMPLE=$(head -1 "$TMP/jwts.txt")
    log "jwt: $(wc -l <"$TMP/jwts.txt") RS256 tokens made for the run in $((SECONDS - t0)) s (signed with $how)"
}

# jwt_check TARGET: a run token gets 200; no token and a token with a broken signature get 401.
# True when so, within 10 s (the gateway fetches the key set in the background).
jwt_check() {
    local url="http://127.0.0.1:$(port_of "$1")/" good none bad deadline=$((SECONDS + 10))
    while :; do
        good=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $JWT_SAMPLE" "$url")
        [[ $good == 200 ]] || ((SECONDS >= deadline)) || { sleep 0.2; continue; }
        break
    done
    none=$(curl -s -o /dev/null -w '%{http_code}' "$url")
    bad=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: ${JWT_SAMPLE%??????}AAAAAA" "$url")
    if [[ $good == 200 && $none == 401 && $bad == 401 ]]; then
        log "$1: a run token gets 200, none and a forged one 401"
        return 0
    fi
    log "WARNING: $1 does not check tokens as configured: run token $good, none $none, forged $bad (want 200 401 401)"
    return 1
}

# TLS_UP[target]=1 once the target answers over TLS with the run's certificate.
declare -A TLS_UP=()

# tls_check TARGET: a GET over TLS that verifies the certificate (for IP 127.0.0.1) and says
# what was negotiated; marks the target's TLS port as serving.
tls_check() {
    local port info
    port=$(tls_port_of "$1")
    if ! wait_port "$port" 5; then
        info="nothing listens"
    elif info=$(curl -sf -o /dev/null --cacert "$TMP/cert.pem" -w '%{http_version} %{ssl_verify_result}' \
        "https://127.0.0.1:$port/" 2>&1); then
        TLS_UP[$1]=1
        log "$1: TLS on :$port verified, HTTP/$info (version, verify result)"
    else
        log "WARNING: $1 does not answer over TLS on :$port ($info): its TLS rows will say missing"
    fi
}

start_backend() {
    head -c 16384 /dev/zero | tr '\0' 'b' >"$TMP/16k"
    head -c 1048576 /dev/zero | tr '\0' 'u' >"$TMP/1m.bin"
    # cache-hit's response: a JSON document of exactly CACHE_BODY_BYTES.
    python3 -c 'import sys; n = int(sys.argv[1]); h = "{\"items\": \""; print(h + "x" * (n - len(h) - 3) + "\"}", end="\n")' \
        "$CACHE_BODY_BYTES" >"$TMP/cached.json"
    chmod 644 "$TMP/16k" "$TMP/1m.bin" "$TMP/cached.json"
    cat >"$TMP/backend.conf" <<EOF
worker_processes 1;
$(nginx_common backend)
http {
$(nginx_http_common backend)
    server {
        listen 127.0.0.1:$BACKEND_PORT backlog=4096 reuseport;
        location = / { default_type text/plain; return 200 "hello from the backend\n"; }
        location = /16k { default_type application/octet-stream; alias $TMP/16k; }
        # Reads (discards) the whole request body, then answers.
        location = /upload { default_type text/plain; return 200 "ok\n"; }
        # The jwt scenario's key set (written by make_jwts; 404 until then).
        location = /jwks { default_type application/json; alias $TMP/jwks.json; }
        # cache-hit's response, fresh for CACHE_TTL_S (Cache-Control: max-age, Expires; the
        # file gives ETag and Last-Modified).
        location = /cached { default_type application/json; alias $TMP/cached.json; expires ${CACHE_TTL_S}s; }
        # The backend's request counter (cache-hit counts the requests that reach it).
        location = /_status { stub_status; }
    }
}
EOF
    start backend "$LOAD_CPUS" nginx -p "$TMP" -c "$TMP/backend.conf" -g 'daemon off;'
    wait_port $BACKEND_PORT 5 || { log "backend nginx did not start:"; cat "$TMP/backend.log" >&2; exit 1; }
}

# start_nginx [policies]: nginx as a reverse proxy to the backend. With "policies": on its own
# port, answering CORS for $CORS_ORIGIN (the header only for that origin, Vary always, preflight
# answered here) and writing a JSON access log with the fields of AWS's JSON format, buffered as
# an operator would (64 KiB, flushed every second).
start_nginx() {
    local variant=${1:-} name=nginx port=$NGINX_PORT http_extra= server_extra= location_extra=
    if [[ -z $variant && $WANT_TLS == 1 ]]; then
        server_extra=$(cat <<EOF
        listen 127.0.0.1:$NGINX_TLS_PORT ssl backlog=4096 reuseport;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        ssl_session_tickets on;
EOF
)
    fi
    if [[ $variant == apikeys ]]; then
        name=nginx-apikeys port=$NGINX_APIKEYS_PORT
        # The map finds the key (a hash over the run's keys); limit_req counts each key in a
        # shared-memory zone (10m holds some 80,000 keys), as turnpike's usage plan does.
        http_extra=$(cat <<EOF
    map_hash_max_size $((APIKEYS * 2));
    map_hash_bucket_size 128;
    map \$http_x_api_key \$api_client { default ""; include $TMP/apikeys.nginx-map; }
    limit_req_zone \$api_client zone=keys:10m rate=${APIKEY_RATE}r/s;
    limit_req_status 429;
EOF
)
        location_extra=$(cat <<EOF
            if (\$api_client = "") { return 403; }
            limit_req zone=keys burst=$APIKEY_BURST nodelay;
EOF
)
    fi
    if [[ $variant == cache ]]; then
        name=nginx-cache port=$NGINX_CACHE_PORT
        # A keys zone in shared memory, the bodies in files under the run's temp dir (the page
        # cache keeps them); one request per key fills it while the others wait.
        http_extra="    proxy_cache_path $TMP/nginx-cache levels=1:2 keys_zone=bench:10m max_size=256m inactive=2h use_temp_path=off;"
        location_extra=$(cat <<EOF
            proxy_cache bench;
            proxy_cache_lock on;
EOF
)
    fi
    if [[ $variant == policies ]]; then
        name=nginx-policies port=$NGINX_POLICIES_PORT
        : >"$TMP/nginx-access.log"
        http_extra=$(cat <<EOF
    log_format aws_json escape=json '{"requestId":"\$request_id","ip":"\$remote_addr",'
        '"requestTime":"\$time_local","httpMethod":"\$request_method",'
        '"routeKey":"\$request_method \$uri","status":"\$status",'
        '"protocol":"\$server_protocol","responseLength":"\$body_bytes_sent"}';
    map \$http_origin \$cors_origin { default ""; "$CORS_ORIGIN" \$http_origin; }
EOF
)
        # In the server block: the http level has "access_log off", which a lower level overrides.
        server_extra="        access_log $TMP/nginx-access.log aws_json buffer=64k flush=1s;"
        location_extra=$(cat <<EOF
            add_header Access-Control-Allow-Origin \$cors_origin always;
            add_header Vary Origin always;
            if (\$request_method = OPTIONS) {
                add_header Access-Control-Allow-Origin \$cors_origin always;
                add_header Access-Control-Allow-Methods "GET, POST" always;
                add_header Access-Control-Max-Age 600 always;
                add_header Vary Origin always;
                return 204;
            }
EOF
)
    fi
    cat >"$TMP/$name.conf" <<EOF
worker_processes $WORKERS;
$(nginx_common $name)
http {
$(nginx_http_common $name)
$http_extra
    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; keepalive_requests 10000000; }
    server {
        listen 127.0.0.1:$port backlog=4096 reuseport;
$server_extra
        location / {
$location_extra
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering $NGINX_REQUEST_BUFFERING;
        }
    }
}
EOF
    start $name "$PROXY_CPUS" nginx -p "$TMP" -c "$TMP/$name.conf" -g 'daemon off;'
    wait_port $port 5 || { log "$name did not start"; cat "$TMP/$name.log" >&2; exit 1; }
    UP[$name]=1
    if [[ -z $variant && $WANT_TLS == 1 ]]; then tls_check nginx; fi
}

# start_haproxy [apikeys|cache]: HAProxy as a reverse proxy to the backend. With "apikeys": on
# its own port, refusing (403) a request whose x-api-key is not in the run's map file, and
# tracking each key's request rate in a stick table, refusing (429) past APIKEY_RATE per second.
# With "cache": on its own port, its backend storing and serving responses from a cache section
# (16 MB in memory, objects up to 64 KiB, lifetime up to CACHE_TTL_S).
start_haproxy() {
    local variant=${1:-} name=haproxy port=$HAPROXY_PORT HAPROXY_TLS_BIND= frontend_extra=
    local backend_extra= cache_section=
    if [[ -z $variant && $WANT_TLS == 1 ]]; then
        HAPROXY_TLS_BIND="bind 127.0.0.1:$HAPROXY_TLS_PORT ssl crt $TMP/bench.pem ssl-min-ver TLSv1.3 alpn http/1.1"
    fi
    if [[ $variant == apikeys ]]; then
        name=haproxy-apikeys port=$HAPROXY_APIKEYS_PORT
        frontend_extra=$(cat <<EOF
    stick-table type string len 128 size $((APIKEYS * 2)) expire 60s store http_req_rate(1s)
    http-request deny deny_status 403 if !{ req.hdr(x-api-key),map($TMP/apikeys.haproxy-map) -m found }
    http-request track-sc0 req.hdr(x-api-key)
    http-request deny deny_status 429 if { sc0_http_req_rate gt $APIKEY_RATE }
EOF
)
    fi
    if [[ $variant == cache ]]; then
        name=haproxy-cache port=$HAPROXY_CACHE_PORT
        cache_section=$(cat <<EOF
cache bench
    total-max-size 16
    max-object-size 65536
    max-age $CACHE_TTL_S
EOF
)
        backend_extra=$(cat <<EOF
    http-request cache-use bench
    http-response cache-store bench
EOF
)
    fi
    cat >"$TMP/$name.cfg" <<EOF
global
    nbthread $WORKERS
    maxconn $HAPROXY_MAXCONN
${HAPROXY_NO_STRICT_LIMITS:+    no strict-limits}
defaults
    mode http
    maxconn $HAPROXY_MAXCONN
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client ${CLIENT_IDLE_S}s
    timeout server 60s
    timeout http-keep-alive ${CLIENT_IDLE_S}s
frontend fe
    bind 127.0.0.1:$port
${HAPROXY_TLS_BIND:+    $HAPROXY_TLS_BIND}
${frontend_extra}
    default_backend be
backend be
${backend_extra}
    server s1 127.0.0.1:$BACKEND_PORT
${cache_section}
EOF
    start $name "$PROXY_CPUS" haproxy -db -f "$TMP/$name.cfg"
    wait_port $port 5 || { log "$name did not start"; cat "$TMP/$name.log" >&2; exit 1; }
    UP[$name]=1
    if [[ -z $variant && $WANT_TLS == 1 ]]; then tls_check haproxy; fi
}

# UP[target]=1 once the target serves; WHY_MISSING[target] says why a turnpike one does not.
# NO_CACHE[target]=1: a -cache target that runs without its cache (a turnpike that predates it).
declare -A UP=() WHY_MISSING=() NO_CACHE=()
# start_turnpike [NAME]: turnpike as a reverse proxy to the backend. NAME (default turnpike) is
# one of turnpike, turnpike-policies, turnpike-apikeys, turnpike-jwt, turnpike-cache,
# turnpike-base, turnpike-base-policies, turnpike-base-apikeys, turnpike-base-jwt,
# turnpike-base-cache: the -base ones run the TURNPIKE_BASE binary with the same config as
# their counterpart, on ports of their own. The -cache ones: on their own port and admin port,
# the $default stage with TURNPIKE_STAGE_CACHE; a binary that does not know the stage cache runs
# without it (NO_CACHE[NAME]=1), so its rows are misses.
# The -policies ones: on their own port and admin port, with the API's CORS policy for
# $CORS_ORIGIN and the stage's JSON access log written to a file (ACCESS_LOG[NAME]). The
# -apikeys ones: on their own port and admin port, the route requiring an API key, then the
# run's keys and a usage plan created through the admin API (provision_apikeys). The -jwt ones:
# on their own port and admin port, a JWT authorizer on the route (issuer JWT_ISSUER, audience
# "bench", keys from the backend's /jwks), checked with jwt_check. A binary that refuses this
# config (it predates CORS, access logs, API keys or JWT authorizers) leaves the rows
# "refused", with `turnpike check`'s reason logged. With TLS wanted, turnpike and
# turnpike-base also listen for https on their TLS port with the run's certificate; a binary
# that refuses that (it predates TLS) runs without it, and only its TLS rows say "refused".
# Every config sets gateway.throttle to TURNPIKE_THROTTLE; a binary that refuses the field (it
# predates it) runs without the line.
start_turnpike() {
    local name=${1:-turnpike} bin=$TURNPIKE port admin
    local state=$TMP/$name-state cors= stage="{ name: \$default }" tls_port= route=
    local throttle=$TURNPIKE_THROTTLE authorizers=
    case $name in
        turnpike) port=$TURNPIKE_PORT admin=$ADMIN_PORT tls_port=$TURNPIKE_TLS_PORT ;;
        turnpike-policies) port=$TURNPIKE_POLICIES_PORT admin=$ADMIN_POLICIES_PORT ;;
        turnpike-apikeys) port=$TURNPIKE_APIKEYS_PORT admin=$ADMIN_APIKEYS_PORT ;;
        turnpike-base) port=$TURNPIKE_BASE_PORT admin=$ADMIN_BASE_PORT bin=$TURNPIKE_BASE tls_port=$TURNPIKE_BASE_TLS_PORT ;;
        turnpike-base-policies) port=$TURNPIKE_BASE_POLICIES_PORT admin=$ADMIN_BASE_POLICIES_PORT bin=$TURNPIKE_BASE ;;
        turnpike-base-apikeys) port=$TURNPIKE_BASE_APIKEYS_PORT admin=$ADMIN_BASE_APIKEYS_PORT bin=$TURNPIKE_BASE ;;
        turnpike-jwt) port=$TURNPIKE_JWT_PORT admin=$ADMIN_JWT_PORT ;;
        turnpike-base-jwt) port=$TURNPIKE_BASE_JWT_PORT admin=$ADMIN_BASE_JWT_PORT bin=$TURNPIKE_BASE ;;
        turnpike-cache) port=$TURNPIKE_CACHE_PORT admin=$ADMIN_CACHE_PORT ;;
        turnpike-base-cache) port=$TURNPIKE_BASE_CACHE_PORT admin=$ADMIN_BASE_CACHE_PORT bin=$TURNPIKE_BASE ;;
        *) log "start_turnpike: unknown target $name"; exit 2 ;;
    esac
    if [[ $name == *-policies ]]; then
        ACCESS_LOG[$name]=$TMP/$name-access.log
        cors="    cors: { allow_origins: [\"$CORS_ORIGIN\"], allow_methods: [GET, POST], max_age: 600 }"
        stage="{ name: \$default, access_log: { destination: \"${ACCESS_LOG[$name]}\", format: json } }"
    fi
    if [[ $name == *-apikeys ]]; then route=", api_key_required: true"; fi
    if [[ $name == *-cache ]]; then stage="{ name: \$default, cache: $TURNPIKE_STAGE_CACHE }"; fi
    if [[ $name == *-jwt ]]; then
        route=", authorizer: bench"
        authorizers="    authorizers:
      bench: { type: jwt, issuer: \"$JWT_ISSUER\", audience: [bench], jwks_uri: \"http://127.0.0.1:$BACKEND_PORT/jwks\" }"
    fi
    if [[ ! -x $bin ]]; then
        log "no turnpike binary at '$bin': the $name column will say missing"
        WHY_MISSING[$name]=missing
        return
    fi
    [[ $WANT_TLS == 1 ]] || tls_port=
    turnpike_config "$name" "$port" "$admin" "$state" "$cors" "$stage" "$tls_port" "$throttle" "$route" "$authorizers"
    # Before the throttle's check: the refusal of an unknown stage field lists the known ones,
    # throttle among them.
    if [[ $name == *-cache ]] && ! "$bin" check --config "$TMP/$name.yaml" >"$TMP/$name.check" 2>&1 &&
        grep -q 'unknown field `cache`' "$TMP/$name.check"; then
        log "$name: $bin does not know the stage cache (it predates it): it runs without one, every request a miss"
        NO_CACHE[$name]=1
        stage="{ name: \$default }"
        turnpike_config "$name" "$port" "$admin" "$state" "$cors" "$stage" "$tls_port" "$throttle" "$route" "$authorizers"
    fi
    if [[ -n $throttle ]] && ! "$bin" check --config "$TMP/$name.yaml" >"$TMP/$name.check" 2>&1 &&
        grep -q throttle "$TMP/$name.check"; then
        log "$name: $bin does not know gateway.throttle (it predates the account-level throttle): its config leaves it out"
        throttle=
        turnpike_config "$name" "$port" "$admin" "$state" "$cors" "$stage" "$tls_port" "$throttle" "$route" "$authorizers"
    fi
    if [[ -n $tls_port ]] && ! "$bin" check --config "$TMP/$name.yaml" >"$TMP/$name.check" 2>&1; then
        log "ERROR: $bin refuses the $name config with TLS ($TMP/$name.yaml):"
        sed 's/^/peer-bench:   /' "$TMP/$name.check" >&2
        log "running $name without TLS: its TLS rows will say refused"
        cp "$TMP/$name.yaml" "$TMP/$name.tls-refused.yaml"
        WHY_MISSING[$name@tls]=refused
        tls_port=
        turnpike_config "$name" "$port" "$admin" "$state" "$cors" "$stage" "" "$throttle" "$route" "$authorizers"
    fi
    if ! "$bin" check --config "$TMP/$name.yaml" >"$TMP/$name.check" 2>&1; then
        log "ERROR: $bin refuses the $name config ($TMP/$name.yaml):"
        sed 's/^/peer-bench:   /' "$TMP/$name.check" >&2
        log "its rows will say refused"
        WHY_MISSING[$name]=refused
        return
    fi
    start $name "$PROXY_CPUS" "$bin" serve --config "$TMP/$name.yaml"
    if ! wait_port $port 10 "${PIDS[-1]}"; then
        log "$name did not start: its column will say missing"
        tail -5 "$TMP/$name.log" >&2 || true
        WHY_MISSING[$name]=missing
        return
    fi
    if [[ $name == *-apikeys ]]; then
        # Its route answers 403 until the keys are in: provision, then check like the others.
        if provision_apikeys "$name" "$admin" "$port" "$state" && apikeys_check "$name"; then
            UP[$name]=1
        else
            WHY_MISSING[$name]=unprovisioned
        fi
        return
    fi
    if [[ $name == *-jwt ]]; then
        if jwt_check "$name"; then UP[$name]=1; else WHY_MISSING[$name]=unchecked; fi
        return
    fi
    if curl -sf -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
        UP[$name]=1
        if [[ $name == *-policies ]]; then SANITY_REQUESTS[$name]=$((${SANITY_REQUESTS[$name]:-0} + 1)); fi
        if [[ -n $tls_port ]]; then tls_check "$name"; fi
    else
        log "$name does not proxy: its column will say missing"
        tail -5 "$TMP/$name.log" >&2 || true
        WHY_MISSING[$name]=missing
    fi
}

# The usage plan turnpike's -apikeys targets create (POST /v1/usageplans): the bench API's
# $default stage, a throttle per key of APIKEY_RATE r/s and burst APIKEY_BURST (@RATE@, @BURST@),
# no quota.
APIKEY_PLAN=${APIKEY_PLAN:-'{"name": "bench", "api_stages": [{"api": "bench", "stage": "$default"}], "throttle": {"rate_limit": @RATE@, "burst_limit": @BURST@}}'}

# admin_call NAME ADMIN STATE METHOD PATH [CURL-ARGS...]: one admin API request with the bearer
# token from STATE; the body goes to $TMP/NAME.admin-response, the status to stdout.
admin_call() {
    local name=$1 admin=$2 state=$3 method=$4 path=$5
    shift 5
    curl -s -m 300 -o "$TMP/$name.admin-response" -w '%{http_code}' -X "$method" \
        -H "Authorization: Bearer $(cat "$state/admin.token")" "$@" "http://127.0.0.1:$admin$path"
}

# provision_apikeys NAME ADMIN PORT STATE: through turnpike's admin API, creates the usage plan
# (APIKEY_PLAN) and imports the run's keys into it (POST /v1/apikeys/import, JSON lines
# {"name", "value", "usage_plans": [plan id]}), then waits (up to 10 s) for a key to get
# through. Not part of any measured run. False, with the admin's answer logged, on any failure.
provision_apikeys() {
    local name=$1 admin=$2 port=$3 state=$4 status plan t0=$SECONDS
    local body=${APIKEY_PLAN//@RATE@/$APIKEY_RATE}
    body=${body//@BURST@/$APIKEY_BURST}
    status=$(admin_call "$name" "$admin" "$state" POST /v1/usageplans \
        -H 'Content-Type: application/json' --data-binary "$body")
    if [[ $status != 2?? ]] || ! plan=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' \
        "$TMP/$name.admin-response" 2>/dev/null); then
        log "ERROR: $name: POST /v1/usageplans answered $status: $(head -c 300 "$TMP/$name.admin-response" 2>/dev/null)"
        return 1
    fi
    python3 - "$TMP/apikeys.txt" "$plan" >"$TMP/$name.import.jsonl" <<'PY'
import json, sys
plan = sys.argv[2]
for i, key in enumerate(open(sys.argv[1]).read().split()):
    print(json.dumps({"name": f"bench-{i}", "value": key, "usage_plan_ids": [plan]}))
PY
    status=$(admin_call "$name" "$admin" "$state" POST /v1/apikeys/import \
        -H 'Content-Type: application/x-ndjson' --data-binary "@$TMP/$name.import.jsonl")
    if [[ $status != 2?? ]]; then
        log "ERROR: $name: POST /v1/apikeys/import answered $status: $(head -c 300 "$TMP/$name.admin-response")"
        return 1
    fi
    log "$name: usage plan $plan and $APIKEYS keys imported in $((SECONDS - t0)) s"
    # A key takes effect within a second of its import.
    local deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $APIKEY_SAMPLE" "http://127.0.0.1:$port/") == 200 ]] &&
            return 0
        sleep 0.2
    done
    log "ERROR: $name: a key imported 10 s ago still does not get through"
    return 1
}

# turnpike_config NAME PORT ADMIN STATE CORS STAGE TLS_PORT THROTTLE ROUTE AUTHORIZERS: writes
# $TMP/NAME.yaml; with a TLS_PORT, an https listener there whose default certificate is the
# run's; with a THROTTLE, gateway.throttle set to it; ROUTE is added to the $default route's
# fields; AUTHORIZERS (YAML lines) goes into the API beside CORS.
turnpike_config() {
    local name=$1 port=$2 admin=$3 state=$4 cors=$5 stage=$6 tls_port=$7 throttle=$8 route=$9
    local authorizers=${10:-} listen tls=
    listen="\"127.0.0.1:$port\""
    if [[ -n $tls_port ]]; then
        listen+=", \"https://127.0.0.1:$tls_port\""
        tls=", tls: { certificate: bench }"
    fi
    cat >"$TMP/$name.yaml" <<EOF
gateway: { listen: [$listen]$tls, workers: $WORKERS, idle_timeout_ms: $((CLIENT_IDLE_S * 1000))${throttle:+, throttle: $throttle} }
admin: { listen: "127.0.0.1:$admin", state_dir: "$state", token_file: "$state/admin.token" }
EOF
    if [[ -n $tls_port ]]; then
        cat >>"$TMP/$name.yaml" <<EOF
certificates:
  - { name: bench, certificate_chain: "$TMP/cert.pem", private_key: "$TMP/key.pem" }
EOF
    fi
    cat >>"$TMP/$name.yaml" <<EOF
apis:
  - name: bench
$cors
$authorizers
    integrations:
      backend: { type: http_proxy, uri: "http://127.0.0.1:$BACKEND_PORT" }
    routes:
      - { key: "\$default", integration: backend$route }
EOF
    # --scrape-check: more routes, each with its own series in /metrics.
    if [[ $SCRAPE_CHECK == 1 ]]; then
        local i
        for ((i = 0; i < SCRAPE_ROUTES; i++)); do
            echo "      - { key: \"GET /r$i/{id}\", integration: backend }"
        done >>"$TMP/$name.yaml"
    fi
    cat >>"$TMP/$name.yaml" <<EOF
    stages:
      - $stage
EOF
}

port_of() {
    case $1 in
        direct) echo $BACKEND_PORT ;;
        nginx) echo $NGINX_PORT ;;
        haproxy) echo $HAPROXY_PORT ;;
        turnpike) echo $TURNPIKE_PORT ;;
        nginx-policies) echo $NGINX_POLICIES_PORT ;;
        turnpike-policies) echo $TURNPIKE_POLICIES_PORT ;;
        turnpike-base) echo $TURNPIKE_BASE_PORT ;;
        turnpike-base-policies) echo $TURNPIKE_BASE_POLICIES_PORT ;;
        nginx-apikeys) echo $NGINX_APIKEYS_PORT ;;
        haproxy-apikeys) echo $HAPROXY_APIKEYS_PORT ;;
        turnpike-apikeys) echo $TURNPIKE_APIKEYS_PORT ;;
        turnpike-base-apikeys) echo $TURNPIKE_BASE_APIKEYS_PORT ;;
        turnpike-jwt) echo $TURNPIKE_JWT_PORT ;;
        turnpike-base-jwt) echo $TURNPIKE_BASE_JWT_PORT ;;
        nginx-cache) echo $NGINX_CACHE_PORT ;;
        haproxy-cache) echo $HAPROXY_CACHE_PORT ;;
        turnpike-cache) echo $TURNPIKE_CACHE_PORT ;;
        turnpike-base-cache) echo $TURNPIKE_BASE_CACHE_PORT ;;
    esac
}

tls_port_of() {
    case $1 in
        nginx) echo $NGINX_TLS_PORT ;;
        haproxy) echo $HAPROXY_TLS_PORT ;;
        turnpike) echo $TURNPIKE_TLS_PORT ;;
        turnpike-base) echo $TURNPIKE_BASE_TLS_PORT ;;
    esac
}

# --- runs --------------------------------------------------------------------------------------
# busy_percent: CPU use of the whole machine over half a second, in percent of all CPUs. Taken
# between runs, when the servers started here sit idle, so it measures somebody else's load.
busy_percent() {
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    sleep 0.5
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        d = y[2] - x[2]; print (d > 0 ? int(100 * (y[1] - x[1]) / d) : 0) }'
}

# wait_quiet: a shared machine skews every number; wait (up to QUIET_WAIT s) for other load to
# drop under QUIET_MAX percent before a run, and count the runs that had to go ahead anyway.
QUIET_MAX=${QUIET_MAX:-10}
QUIET_WAIT=${QUIET_WAIT:-120}
NOISY_RUNS=0
wait_quiet() {
    local deadline=$((SECONDS + QUIET_WAIT)) busy warned=0
    while busy=$(busy_percent) && ((busy > QUIET_MAX)); do
        if ((SECONDS >= deadline)); then
            log "machine still ${busy}% busy with other work: running anyway (counted as noisy)"
            NOISY_RUNS=$((NOISY_RUNS + 1))
            return
        fi
        if ((warned == 0)); then
            log "machine ${busy}% busy with other work: waiting up to ${QUIET_WAIT}s for quiet"
            warned=1
        fi
        sleep 2
    done
}

# load_args SCENARIO: the turnpike-load arguments (without the URL) for a scenario.
load_args() {
    case $1 in
        small) echo "-c $CONNS" ;;
        big) echo "-c $CONNS" ;;
        upload) echo "-c $UPLOAD_CONNS -m POST --body-file $TMP/1m.bin -H Content-Type:application/octet-stream" ;;
        newconn) echo "-c $NEWCONN_CONNS --new-conn" ;;
        rate) echo "-c $CONNS --rate $RATE" ;;
        policies) echo "-c $CONNS -H Origin:$CORS_ORIGIN" ;;
        # Every target gets the same requests: the plain ones ignore the header.
        apikeys) echo "-c $CONNS --header-values x-api-key=$TMP/apikeys.txt" ;;
        jwt) echo "-c $CONNS --header-values Authorization=$TMP/jwts.txt" ;;
        cache-hit) echo "-c $CONNS" ;;
        # The chain check (--insecure skips it) would only cost the generator's CPU: every
        # proxy does the same work either way. The handshake signature is still verified.
        tls) echo "-c $CONNS --insecure --sni $TLS_NAME" ;;
        tls-newconn) echo "-c $NEWCONN_CONNS --new-conn --insecure --sni $TLS_NAME" ;;
        tls-resume) echo "-c $NEWCONN_CONNS --new-conn --tls-resume --insecure --sni $TLS_NAME" ;;
    esac
}

path_of() {
    case $1 in
        big) echo /16k ;;
        upload) echo /upload ;;
        cache-hit) echo /cached ;;
        *) echo / ;;
    esac
}

# run_one SCENARIO TARGET ROUND: one measurement into results/SCENARIO.TARGET.ROUND.json.
run_one() {
    local scenario=$1 target=$2 round=$3
    local out="$TMP/results/$scenario.$target.$round.json"
    local url="http://127.0.0.1:$(port_of "$target")$(path_of "$scenario")"
    if is_tls "$scenario"; then url="https://127.0.0.1:$(tls_port_of "$target")$(path_of "$scenario")"; fi
    wait_quiet
    local server=${PID_OF[$target]:-} cpu0 cpu1 t0 t1 b0=
    [[ $target == direct ]] && server=${PID_OF[backend]:-}
    # cache-hit: the requests that reach the backend during the run (warm-up included).
    [[ $scenario == cache-hit ]] && b0=$(backend_count)
    cpu0=$(cpu_ticks "$server"); t0=$(date +%s.%N)
    # shellcheck disable=SC2046 # word splitting of the argument list is intended
    if taskset -c "$LOAD_CPUS" "$LOAD" -q -t 1 -d "$DURATION" --warmup "$WARMUP" \
        $(load_args "$scenario") --json "$out" --svg "${out%.json}.svg" "$url" >"$TMP/last-run.txt" 2>&1; then
        cpu1=$(cpu_ticks "$server"); t1=$(date +%s.%N)
        # The server's CPU share over the whole run (warm-up included, as is its request count
        # in the ratio below: both span the same interval).
        echo "{\"cpu_seconds\": $(python3 -c "print(($cpu1 - $cpu0) / $(getconf CLK_TCK))"), \"wall_seconds\": $(python3 -c "print($t1 - $t0)")}" \
            >"${out%.json}.cpu"
        if [[ -n $b0 ]]; then
            echo "{\"backend_requests\": $(($(backend_count) - b0 - 1))}" >"${out%.json}.backend"
        fi
        printf '  %-8s %-9s round %s: %s\n' "$scenario" "$target" "$round" \
            "$(grep -E 'requests ' "$TMP/last-run.txt" | tr -s ' ')" >&2
    else
        log "$scenario/$target round $round failed: $(tail -1 "$TMP/last-run.txt")"
        rm -f "$out"
    fi
}

median_rps() { # median_rps SCENARIO TARGET
    python3 - "$TMP/results" "$1" "$2" <<'EOF'
import glob, json, statistics, sys
d, s, t = sys.argv[1:]
v = [json.load(open(f))["requests_per_sec"] for f in glob.glob(f"{d}/{s}.{t}.*.json")]
print(int(statistics.median(v)) if v else 0)
EOF
}

# targets_for SCENARIO: the targets a scenario runs against, whether they serve or not (the
# table lists the ones that do not as missing). policies: nginx, turnpike and turnpike-base from
# TARGETS, each plain and with its policies. apikeys: the proxies from TARGETS, each plain and
# checking keys. jwt: nginx and haproxy plain, turnpike and turnpike-base each plain and with
# the JWT authorizer. cache-hit: direct, and each proxy plain and with its cache. TLS scenarios:
# the proxies (not direct).
targets_for() {
    local t
    for t in $TARGETS; do
        if [[ $1 == policies ]]; then
            [[ $t == nginx || $t == turnpike || $t == turnpike-base ]] && printf '%s\n' "$t" "$t-policies"
        elif [[ $1 == apikeys ]]; then
            if [[ $t != direct ]]; then printf '%s\n' "$t" "$t-apikeys"; fi
        elif [[ $1 == cache-hit ]]; then
            if [[ $t == direct ]]; then echo direct; else printf '%s\n' "$t" "$t-cache"; fi
        elif [[ $1 == jwt ]]; then
            case $t in
                nginx | haproxy) echo "$t" ;;
                turnpike | turnpike-base) printf '%s\n' "$t" "$t-jwt" ;;
            esac
        elif is_tls "$1"; then
            if [[ $t != direct ]]; then echo "$t"; fi
        else
            echo "$t"
        fi
    done
}

# active_targets SCENARIO: those of targets_for that serve.
active_targets() {
    local t
    for t in $(targets_for "$1"); do
        if is_tls "$1"; then
            [[ ${TLS_UP[$t]:-0} == 1 ]] && echo "$t"
        else
            [[ $t == direct || ${UP[$t]:-0} == 1 ]] && echo "$t"
        fi
    done
}

# The policies targets' log files, and the requests sent to them outside turnpike-load's runs.
declare -A ACCESS_LOG=() SANITY_REQUESTS=()

# cors_check TARGET: the allowed origin gets Access-Control-Allow-Origin, another origin does not.
cors_check() {
    local url="http://127.0.0.1:$(port_of "$1")/" good bad
    good=$(curl -s -o /dev/null -D - -H "Origin: $CORS_ORIGIN" "$url" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "access-control-allow-origin" {print $2}')
    bad=$(curl -s -o /dev/null -D - -H "Origin: https://other.example.com" "$url" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "access-control-allow-origin" {print $2}')
    SANITY_REQUESTS[$1]=$((${SANITY_REQUESTS[$1]:-0} + 2))
    if [[ $good == "$CORS_ORIGIN" && -z $bad ]]; then
        log "$1: CORS answers $CORS_ORIGIN and nobody else"
    else
        log "WARNING: $1 CORS is not as configured: allowed origin got '${good}', another got '${bad}'"
    fi
}

start_policies() {
    if [[ " $TARGETS " == *" nginx "* ]]; then
        start_nginx policies
        ACCESS_LOG[nginx-policies]=$TMP/nginx-access.log
        cors_check nginx-policies
    fi
    local t
    for t in turnpike turnpike-base; do
        if [[ " $TARGETS " == *" $t "* ]]; then
            start_turnpike "$t-policies"
            [[ ${UP[$t-policies]:-0} == 1 ]] && cors_check "$t-policies"
        fi
    done
    return 0
}

# start_apikeys: the keys, and the proxies of TARGETS checking them, each on its own port.
start_apikeys() {
    make_apikeys
    if [[ " $TARGETS " == *" nginx "* ]]; then
        start_nginx apikeys
        apikeys_check nginx-apikeys || { UP[nginx-apikeys]=0; WHY_MISSING[nginx-apikeys]=unchecked; }
    fi
    if [[ " $TARGETS " == *" haproxy "* ]]; then
        start_haproxy apikeys
        apikeys_check haproxy-apikeys || { UP[haproxy-apikeys]=0; WHY_MISSING[haproxy-apikeys]=unchecked; }
    fi
    local t
    for t in turnpike turnpike-base; do
        if [[ " $TARGETS " == *" $t "* ]]; then start_turnpike "$t-apikeys"; fi
    done
    return 0
}

# start_jwt: the tokens and key set, and the turnpikes of TARGETS checking them.
start_jwt() {
    make_jwts
    local t
    for t in turnpike turnpike-base; do
        if [[ " $TARGETS " == *" $t "* ]]; then start_turnpike "$t-jwt"; fi
    done
    return 0
}

# backend_count: the backend's request counter (nginx stub_status), this request included.
backend_count() {
    curl -s -m 5 "http://127.0.0.1:$BACKEND_PORT/_status" | awk 'NR == 3 { print $3 }'
}

# warm_cache TARGET: fills TARGET's cache with cache-hit's response (8 requests per worker, each
# on a new connection, so that every worker's cache gets it when caches are per core), then
# sends 10 more and counts how many reach the backend: none when it serves from its cache.
warm_cache() {
    local target=$1 url i before after reached
    url="http://127.0.0.1:$(port_of "$1")$(path_of cache-hit)"
    for ((i = 0; i < 8 * WORKERS; i++)); do curl -s -o /dev/null "$url" || true; done
    before=$(backend_count)
    for ((i = 0; i < 10; i++)); do curl -s -o /dev/null "$url" || true; done
    after=$(backend_count)
    reached=$((after - before - 1))
    if ((reached == 0)); then
        log "$target: warm; none of 10 more requests reached the backend"
    elif [[ -n ${NO_CACHE[$target]:-} ]]; then
        log "$target: no cache: $reached of 10 requests reached the backend (its rows are misses)"
    else
        log "WARNING: $target: warmed, yet $reached of 10 more requests reached the backend: it does not serve $(path_of cache-hit) from its cache"
    fi
}

# start_cache: the proxies of TARGETS with their caches, each on its own port, warmed.
start_cache() {
    if [[ " $TARGETS " == *" nginx "* ]]; then start_nginx cache; fi
    if [[ " $TARGETS " == *" haproxy "* ]]; then start_haproxy cache; fi
    local t
    for t in turnpike turnpike-base; do
        if [[ " $TARGETS " == *" $t "* ]]; then start_turnpike "$t-cache"; fi
    done
    for t in nginx-cache haproxy-cache turnpike-cache turnpike-base-cache; do
        if [[ ${UP[$t]:-0} == 1 ]]; then warm_cache "$t"; fi
    done
    return 0
}

# count_access_logs: stops the policies proxies gracefully (nginx flushes its log buffer on the
# way out, turnpike drains) and writes results/policies.logs.json: per target, access log lines
# and the responses it sent (turnpike-load's counted and warm-up responses, plus the checks').
count_access_logs() {
    local t lines
    [[ -n ${UP[nginx-policies]:-} ]] && stop nginx-policies QUIT
    [[ -n ${UP[turnpike-policies]:-} ]] && stop turnpike-policies TERM
    [[ -n ${UP[turnpike-base-policies]:-} ]] && stop turnpike-base-policies TERM
    for t in "${!ACCESS_LOG[@]}"; do
        [[ ${UP[$t]:-0} == 1 ]] || continue
        lines=$(wc -l 2>/dev/null <"${ACCESS_LOG[$t]}" || echo 0)
        echo "$t $lines ${SANITY_REQUESTS[$t]:-0}"
    done | python3 -c '
import glob, json, sys
d = sys.argv[1]
out = {}
for line in sys.stdin:
    t, lines, extra = line.split()
    runs = [json.load(open(f)) for f in glob.glob(f"{d}/policies.{t}.*.json")]
    sent = sum(r["requests"] + r["warmup_requests"] for r in runs) + int(extra)
    out[t] = {"log_lines": int(lines), "responses": sent}
    if int(lines) != sent:
        print(f"peer-bench: WARNING: {t} logged {lines} lines for {sent} responses", file=sys.stderr)
json.dump(out, open(f"{d}/policies.logs.json", "w"))
' "$TMP/results"
}

run_scenarios() {
    mkdir -p "$TMP/results"
    local targets scenario round i n
    RATE=${RATE:-}
    for scenario in $SCENARIOS; do
        mapfile -t targets < <(active_targets "$scenario")
        n=${#targets[@]}
        if [[ $scenario == rate && -z $RATE ]]; then
            local max
            max=$(median_rps small nginx)
            if [[ $max == 0 ]]; then
                log "measuring nginx's max for the rate scenario"
                for ((round = 1; round <= ROUNDS; round++)); do run_one small nginx "$round"; done
                max=$(median_rps small nginx)
            fi
            RATE=$((max / 2))
            log "rate scenario at $RATE req/s (50% of nginx's median max $max)"
        fi
        log "scenario $scenario: $ROUNDS rounds over ${targets[*]}"
        for ((round = 1; round <= ROUNDS; round++)); do
            # Rotate the order each round so no target always runs first (or last).
            for ((i = 0; i < n; i++)); do
                run_one "$scenario" "${targets[$(((i + round - 1) % n))]}" "$round"
            done
        done
        if [[ $scenario == policies ]]; then count_access_logs; fi
    done
}

summarize() {
    # Each scenario's targets ("small=direct nginx;policies=nginx nginx-policies") and why
    # a turnpike target has no runs ("turnpike-policies=refused").
    local s t spec= why=
    for s in $SCENARIOS; do spec+="$s=$(targets_for "$s" | tr '\n' ' ');"; done
    for t in "${!WHY_MISSING[@]}"; do why+="$t=${WHY_MISSING[$t]};"; done
    python3 - "$TMP/results" "$OUT_JSON" "$ROUNDS" "$DURATION" "$WORKERS" "$PROXY_CPUS" "$LOAD_CPUS" \
        "${RATE:-}" "$spec" "$why" "$NOISY_RUNS" "$*" "$TURNPIKE" "$TURNPIKE_BASE" "$APIKEYS" "$JWTS" \
        "${!NO_CACHE[*]}" "$CACHE_BODY_BYTES" <<'EOF'
import glob, json, os, platform, statistics, sys
results, out, rounds, duration, workers, pcpu, lcpu, rate, spec, why, noisy, argv, tp, tp_base, apikeys, jwts, no_cache, cache_bytes = sys.argv[1:]
no_cache = no_cache.split()
scenario_targets = dict(kv.split("=", 1) for kv in spec.split(";") if kv)
why = dict(kv.split("=", 1) for kv in why.split(";") if kv)
def med(v):
    return statistics.median(v) if v else None
logs = {}
if os.path.exists(f"{results}/policies.logs.json"):
    logs = json.load(open(f"{results}/policies.logs.json"))
table = {}
for s, targets in scenario_targets.items():
    table[s] = {}
    for t in targets.split():
        runs = [json.load(open(f)) for f in sorted(glob.glob(f"{results}/{s}.{t}.*.json"))]
        if not runs:
            table[s][t] = None
            continue
        cpu_files = [f[:-5] + ".cpu" for f in sorted(glob.glob(f"{results}/{s}.{t}.*.json"))]
        cpus = [json.load(open(c)) for c in cpu_files if os.path.exists(c)]
        # Requests per CPU-second the proxy (or, for direct, the backend) spent: its share of
        # a core while serving the measured rate. Warm-up and measurement both count on each
        # side: requests over the run's wall time versus CPU over the same time.
        per_cpu = [
            r["requests_per_sec"] / (c["cpu_seconds"] / c["wall_seconds"])
            for r, c in zip(runs, cpus)
            if c["cpu_seconds"] > 0 and c["wall_seconds"] > 0
        ]
        table[s][t] = {
            "rounds": len(runs),
            "requests_per_sec": med([r["requests_per_sec"] for r in runs]),
            "cpu_share": med([c["cpu_seconds"] / c["wall_seconds"] for c in cpus if c["wall_seconds"] > 0]),
            "requests_per_cpu_second": med(per_cpu),
            "p50_us": med([r["latency_us"]["p50"] for r in runs]),
            "p99_us": med([r["latency_us"]["p99"] for r in runs]),
            "p99_9_us": med([r["latency_us"]["p99_9"] for r in runs]),
            "service_p99_us": med([r["service_time_us"]["p99"] for r in runs]),
            "errors": sum(r["errors"]["total"] for r in runs),
            "non_2xx": sum(r["requests"] - r["status"]["2xx"] for r in runs),
        }
        if t in logs:
            table[s][t]["access_log"] = logs[t]
        # cache-hit: the requests that reached the backend against the responses sent (warm-up
        # included on both sides).
        backend = [f[:-5] + ".backend" for f in sorted(glob.glob(f"{results}/{s}.{t}.*.json"))]
        if any(os.path.exists(b) for b in backend):
            table[s][t]["backend"] = {
                "requests": sum(json.load(open(b))["backend_requests"] for b in backend if os.path.exists(b)),
                "responses": sum(r["requests"] + r["warmup_requests"] for r in runs),
            }
            if t in no_cache:
                table[s][t]["no_cache"] = True
        tls = [r["tls"] for r in runs if r.get("tls")]
        if tls:
            table[s][t]["tls"] = {
                "protocol": tls[-1]["protocol"],
                "cipher_suite": tls[-1]["cipher_suite"],
                "full_handshakes": sum(x["full_handshakes"] for x in tls),
                "resumed_handshakes": sum(x["resumed_handshakes"] for x in tls),
            }
    # policies, apikeys, jwt: each target with its policies (its key or token check) against
    # itself without.
    for t, r in table[s].items():
        suffix = next((x for x in ("-policies", "-apikeys", "-jwt", "-cache") if t.endswith(x)), None)
        plain = table[s].get(t[: -len(suffix)]) if suffix else None
        if r and plain:
            r["vs_plain"] = {k: r[k] / plain[k] for k in ("requests_per_sec", "requests_per_cpu_second")
                             if r[k] and plain[k]}
cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
except OSError:
    pass
machine = {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release()}
doc = {"machine": machine, "rounds": int(rounds), "duration": duration, "workers": int(workers),
       "proxy_cpus": pcpu, "load_cpus": lcpu, "rate": int(rate) if rate else None,
       "noisy_runs": int(noisy), "command": argv, "scenarios": table,
       "missing": why, "no_cache": no_cache}
# turnpike against turnpike-base (the same config, another binary): per scenario and pair, the
# ratios new / base of req/s, req per CPU-second and p99 (for p99, below 1.00x is better).
VS_KEYS = ("requests_per_sec", "requests_per_cpu_second", "p99_us")
vs_base = {}
for s, row in table.items():
    for new, old in (("turnpike", "turnpike-base"), ("turnpike-policies", "turnpike-base-policies")):
        a, b = row.get(new), row.get(old)
        if a and b:
            vs_base.setdefault(s, {})[f"{new}/{old}"] = {k: a[k] / b[k] for k in VS_KEYS if a[k] and b[k]}
if tp_base:
    doc["turnpike"], doc["turnpike_base"], doc["vs_base"] = tp, tp_base, vs_base
# apikeys: issue 9's bars, in requests per proxy CPU-second: turnpike checking keys against
# plain turnpike (at least 0.95x), both in this scenario's interleaved rounds and against the
# small scenario's turnpike when that ran; and against nginx checking keys (goal 1.2x).
def per_cpu(s, t):
    r = table.get(s, {}).get(t)
    return r["requests_per_cpu_second"] if r else None
bars = {}
for new, plain, peer in (("turnpike-apikeys", "turnpike", "nginx-apikeys"),
                         ("turnpike-base-apikeys", "turnpike-base", "nginx-apikeys")):
    k = per_cpu("apikeys", new)
    if not k:
        continue
    b = {}
    for name, v in (("vs_plain_same_requests", per_cpu("apikeys", plain)),
                    ("vs_plain_small", per_cpu("small", plain)),
                    ("vs_nginx_apikeys", per_cpu("apikeys", peer))):
        if v:
            b[name] = k / v
    bars[new] = b
if bars:
    doc["apikeys_bars"] = bars
# jwt: the issue's bar, in requests per proxy CPU-second: turnpike with a JWT authorizer (every
# token verified once per core, then served from the per-core cache) against plain turnpike, at
# least 0.9x, in this scenario's interleaved rounds and against the small scenario's turnpike.
jwt_bars = {}
for new, plain in (("turnpike-jwt", "turnpike"), ("turnpike-base-jwt", "turnpike-base")):
    k = per_cpu("jwt", new)
    if not k:
        continue
    b = {}
    for name, v in (("vs_plain_same_requests", per_cpu("jwt", plain)), ("vs_plain_small", per_cpu("small", plain))):
        if v:
            b[name] = k / v
    jr, pr = table["jwt"][new], table["jwt"].get(plain)
    if pr:
        b["requests_per_sec"] = (jr["requests_per_sec"], pr["requests_per_sec"])
        b["p99_us"] = (jr["p99_us"], pr["p99_us"])
    jwt_bars[new] = b
if jwt_bars:
    doc["jwt_bars"] = jwt_bars
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
def fmt_ms(us):
    return "-" if us is None else (f"{us/1000:.2f}ms" if us >= 1000 else f"{us:.0f}us")
def ratio(v, base, invert=False):
    if v is None or not base:
        return ""
    return f" ({v/base:.2f}x)"
print(f"machine: {cpu}, {os.cpu_count()} CPUs, kernel {platform.release()}; "
      f"{workers} proxy worker(s) on CPU {pcpu}, generator+backend on CPU {lcpu}; "
      f"medians of {rounds} interleaved rounds of {duration}; "
      f"{noisy} run(s) started while other work used the machine")
print(f"command: {argv}")
for s, row in table.items():
    pol = s == "policies"
    keys = s == "apikeys"
    jwt = s == "jwt"
    cache = s == "cache-hit"
    tls = s == "tls" or s.startswith("tls-")
    title = s + (f" (constant rate {rate} req/s)" if s == "rate" and rate else "")
    title += " (CORS + JSON access log to a file; ratios to nginx-policies)" if pol else ""
    title += (f" (an x-api-key per request drawn from {apikeys} keys, checked and counted against a "
              f"per-key limit by the -apikeys targets, ignored by the others; ratios to nginx-apikeys)") if keys else ""
    title += (f" (Authorization: Bearer, one of {jwts} RS256 tokens per request, verified by the -jwt "
              f"targets' JWT authorizer, ignored by the others; nginx and HAProxy have no built-in JWT "
              f"check; ratios to nginx)") if jwt else ""
    title += (f" (GETs of one cacheable {cache_bytes}-byte response: the -cache targets serve it from their "
              f"caches, warmed first, the others from the backend; ratios to nginx-cache)") if cache else ""
    title += {"tls": " (TLS 1.3, kept-alive connections)",
              "tls-newconn": " (TLS 1.3, a new connection per request, full handshakes)",
              "tls-resume": " (TLS 1.3, a new connection per request, resumed sessions)"}.get(s, "")
    print(f"\n### {title}\n")
    extra_head, extra_rule = (" without policies: req/s, req per CPU-s | log lines / responses |", "---|---|") if pol else ("", "")
    if tls:
        extra_head, extra_rule = (" handshakes resumed | negotiated |", "---|---|")
    if keys or jwt:
        extra_head, extra_rule = (" against itself without the check: req/s, req per CPU-s |", "---|")
    if cache:
        extra_head, extra_rule = (" against itself without the cache: req/s, req per CPU-s | backend requests / responses |", "---|---|")
    print(f"| target | req/s | server CPU | req per CPU-second | p50 | p99 | p99.9 |{extra_head}")
    print(f"|---|---|---|---|---|---|---|{extra_rule}")
    base = row.get("nginx-policies" if pol else "nginx-apikeys" if keys else "nginx-cache" if cache else "nginx")
    for t in scenario_targets[s].split():
        r = row.get(t)
        if r is None:
            m = why.get(f"{t}@tls", why.get(t, "missing")) if tls else why.get(t, "missing")
            print(f"| {t} | {m} | {m} | {m} | {m} | {m} | {m} |" + (f" {m} | {m} |" if pol or tls or cache else f" {m} |" if keys or jwt else ""))
            continue
        extra = ""
        if pol:
            vp = r.get("vs_plain", {})
            extra = " " + (" / ".join(f"{vp[k]:.2f}x" for k in ("requests_per_sec", "requests_per_cpu_second") if k in vp) or "-") + " |"
            lg = r.get("access_log")
            extra += f" {lg['log_lines']} / {lg['responses']} |" if lg else " - |"
        if keys or jwt or cache:
            vp = r.get("vs_plain", {})
            extra = " " + (" / ".join(f"{vp[k]:.2f}x" for k in ("requests_per_sec", "requests_per_cpu_second") if k in vp) or "-") + " |"
        if cache:
            bk = r.get("backend")
            if bk:
                share = bk["requests"] / bk["responses"] if bk["responses"] else 0
                extra += f" {bk['requests']} / {bk['responses']} ({100 * share:.1f}%)" + (" NO CACHE in this binary |" if r.get("no_cache") else " |")
            else:
                extra += " - |"
        if tls:
            h = r.get("tls")
            if h:
                n = h["full_handshakes"] + h["resumed_handshakes"]
                extra = f" {h['resumed_handshakes']} of {n} |" if n else " - |"
                extra += f" {h['protocol'] or '-'} {h['cipher_suite'] or '-'} |"
            else:
                extra = " - | - |"
        b = base or {}
        errs = f" [{r['errors']} errors]" if r["errors"] else ""
        errs += f" [{r['non_2xx']} non-2xx]" if r["non_2xx"] else ""
        share = "-" if r["cpu_share"] is None else f"{100 * r['cpu_share']:.0f}%"
        per_cpu = "-" if r["requests_per_cpu_second"] is None else (
            f"{r['requests_per_cpu_second']:.0f}{ratio(r['requests_per_cpu_second'], b.get('requests_per_cpu_second'))}")
        print(f"| {t} | {r['requests_per_sec']:.0f}{ratio(r['requests_per_sec'], b.get('requests_per_sec'))}{errs} "
              f"| {share} | {per_cpu} "
              f"| {fmt_ms(r['p50_us'])}{ratio(r['p50_us'], b.get('p50_us'))} "
              f"| {fmt_ms(r['p99_us'])}{ratio(r['p99_us'], b.get('p99_us'))} "
              f"| {fmt_ms(r['p99_9_us'])}{ratio(r['p99_9_us'], b.get('p99_9_us'))} |{extra}")
if "cache-hit" in table:
    for t, r in table["cache-hit"].items():
        bk = r and r.get("backend")
        if t.endswith("-cache") and bk and bk["responses"] and bk["requests"] > 0.01 * bk["responses"]:
            why_not = "it runs without a cache, its binary predating the stage cache" if r.get("no_cache") else "its cache did not serve them"
            print(f"\npeer-bench: WARNING: cache-hit: {bk['requests']} of {t}'s {bk['responses']} requests reached the backend: "
                  f"its figures are not cache hits; {why_not}")
if bars:
    print(f"\n### apikeys against issue 9's bars (requests per proxy CPU-second)\n")
    print("| target | vs plain, same requests (bar 0.95x) | vs plain in small (bar 0.95x) | vs nginx-apikeys (goal 1.2x) |")
    print("|---|---|---|---|")
    cell = lambda b, k: f"{b[k]:.2f}x" if k in b else "-"
    for t, b in bars.items():
        print(f"| {t} | {cell(b, 'vs_plain_same_requests')} | {cell(b, 'vs_plain_small')} | {cell(b, 'vs_nginx_apikeys')} |")
if jwt_bars:
    print(f"\n### jwt against the issue's bar (requests per proxy CPU-second)\n")
    print("| target | vs plain, same requests (bar 0.9x) | vs plain in small (bar 0.9x) | req/s with / without | p99 with / without |")
    print("|---|---|---|---|---|")
    cell = lambda b, k: f"{b[k]:.2f}x" if k in b else "-"
    for t, b in jwt_bars.items():
        rps = f"{b['requests_per_sec'][0]:.0f} / {b['requests_per_sec'][1]:.0f}" if "requests_per_sec" in b else "-"
        p99 = f"{fmt_ms(b['p99_us'][0])} / {fmt_ms(b['p99_us'][1])}" if "p99_us" in b else "-"
        print(f"| {t} | {cell(b, 'vs_plain_same_requests')} | {cell(b, 'vs_plain_small')} | {rps} | {p99} |")
if tp_base:
    print(f"\n### turnpike against turnpike-base\n")
    print(f"turnpike: {tp}; turnpike-base: {tp_base}; the same config. Each cell: turnpike / "
          f"turnpike-base (ratio); for p99, below 1.00x is better.\n")
    print("| scenario | pair | req/s | req per CPU-second | p99 |")
    print("|---|---|---|---|---|")
    for s, pairs in vs_base.items():
        for pair, v in pairs.items():
            new, old = (table[s][t] for t in pair.split("/"))
            cell = lambda k, f: f"{f(new[k])} / {f(old[k])} ({v[k]:.2f}x)" if k in v else "-"
            print(f"| {s} | {pair.replace('/', ' / ')} | {cell('requests_per_sec', lambda x: f'{x:.0f}')} "
                  f"| {cell('requests_per_cpu_second', lambda x: f'{x:.0f}')} | {cell('p99_us', fmt_ms)} |")
    if not vs_base:
        print("| - | no scenario has runs of both | | | |")
print(f"\nJSON: {out}")
EOF
}

# --wrk-check: the generator must not be the bottleneck. turnpike-load and wrk, one thread each,
# the same connections, interleaved rounds against the backend nginx (pinned to PROXY_CPUS, the
# generators to LOAD_CPUS).
wrk_check() {
    local round w t
    local wrk_rps=() load_rps=()
    for ((round = 1; round <= ROUNDS; round++)); do
        wait_quiet
        w=$(taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$BACKEND_PORT/" |
            awk '/^Requests\/sec/ {print $2}')
        wait_quiet
        t=$(taskset -c "$LOAD_CPUS" "$LOAD" -q -t 1 -c "$CONNS" -d "$DURATION" --json "$TMP/wrk-check.json" \
            "http://127.0.0.1:$BACKEND_PORT/" >/dev/null &&
            python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_per_sec"])' "$TMP/wrk-check.json")
        log "round $round: wrk $w req/s, turnpike-load $t req/s"
        wrk_rps+=("$w")
        load_rps+=("$t")
    done
    python3 - "${wrk_rps[*]}" "${load_rps[*]}" "$CONNS" "$DURATION" "$ROUNDS" "$NOISY_RUNS" <<'EOF'
import statistics, sys
w = [float(x) for x in sys.argv[1].split()]
t = [float(x) for x in sys.argv[2].split()]
mw, mt = statistics.median(w), statistics.median(t)
print(f"wrk -t1 -c{sys.argv[3]} -d{sys.argv[4]}: median {mw:.0f} req/s; "
      f"turnpike-load -t1 -c{sys.argv[3]}: median {mt:.0f} req/s; ratio {mt/mw:.2f} "
      f"({sys.argv[5]} interleaved rounds; {sys.argv[6]} run(s) started on a busy machine)")
EOF
}

# --scrape-check: scraping must not slow the data plane. turnpike's small-response throughput
# without and with a GET /metrics every 100 ms (a scraper on the load CPUs, so each scrape's cost
# on the gateway side lands on the proxy's own CPU), interleaved rounds, the order alternating.
# scrape_loop TOKEN: GET /metrics every 100 ms on one kept-alive connection until killed (run it
# in the background: it becomes the scraper process, pinned to the load CPUs),
# reading and discarding each response; writes "scrapes failed" to $TMP/scrapes. A raw socket
# rather than curl in a loop: a process per scrape would cost the load CPU more than the scrape
# costs the gateway, and the generator's own slowdown would be charged to the gateway.
scrape_loop() {
    exec taskset -c "$LOAD_CPUS" python3 - "$1" "$ADMIN_PORT" "$TMP/scrapes" <<'EOF'
import socket, sys, time
token, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
req = f"GET /metrics HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
ok = bad = 0
s = socket.create_connection(("127.0.0.1", port))
while True:
    try:
        s.sendall(req)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:"))
        left = length - len(rest)
        while left > 0:
            chunk = s.recv(min(left, 1 << 20))
            if not chunk:
                raise ConnectionError("closed")
            left -= len(chunk)
        ok += head.startswith(b"HTTP/1.1 200")
        bad += not head.startswith(b"HTTP/1.1 200")
    except (OSError, StopIteration):
        bad += 1
        s = socket.create_connection(("127.0.0.1", port))
    with open(out, "w") as f:
        f.write(f"{ok} {bad}\n")
    time.sleep(0.1)
EOF
}

scrape_check() {
    local token i round mode out
    token=$(cat "$TMP/turnpike-state/admin.token")
    # Every route gets traffic once, so every series has data to merge.
    for ((i = 0; i < SCRAPE_ROUTES; i++)); do
        curl -sf -o /dev/null "http://127.0.0.1:$TURNPIKE_PORT/r$i/1" || true
    done
    log "one scrape is $(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$ADMIN_PORT/metrics" | wc -c) bytes"
    mkdir -p "$TMP/results"
    for ((round = 1; round <= ROUNDS; round++)); do
        for mode in $( ((round % 2)) && echo "none scrape" || echo "scrape none"); do
            local scraper=
            if [[ $mode == scrape ]]; then
                wait_quiet
                scrape_loop "$token" &
                scraper=$!
            fi
            out="$TMP/results/scrape.$mode.$round.json"
            [[ $mode == none ]] && wait_quiet
            taskset -c "$LOAD_CPUS" "$LOAD" -q -t 1 -c "$CONNS" -d "$DURATION" --warmup "$WARMUP" --json "$out" \
                ${RATE:+--rate "$RATE"} "http://127.0.0.1:$TURNPIKE_PORT/" >/dev/null
            if [[ -n $scraper ]]; then
                kill "$scraper" 2>/dev/null; wait "$scraper" 2>/dev/null || true
                log "round $round with scrapes: $(awk '{print $1 " scrapes, " $2 " failed"}' "$TMP/scrapes")"
            fi
        done
    done
    python3 - "$TMP/results" "$ROUNDS" "$CONNS" "$DURATION" "$SCRAPE_ROUTES" "$NOISY_RUNS" "${RATE:-}" <<'EOF'
import glob, json, statistics, sys
d, rounds, conns, duration, routes, noisy, rate = sys.argv[1:]
rate = f" --rate {rate}" if rate else ""
def med(mode, field):
    runs = [json.load(open(f)) for f in glob.glob(f"{d}/scrape.{mode}.*.json")]
    return statistics.median(r["requests_per_sec"] if field == "rps" else r["latency_us"][field] for r in runs)
rn, rs = med("none", "rps"), med("scrape", "rps")
pn, ps = med("none", "p99"), med("scrape", "p99")
print(f"turnpike -c{conns} -d{duration}{rate}, {int(routes) + 1} routes: without scrapes median {rn:.0f} req/s, p99 {pn:.0f} us; "
      f"with a scrape every 100 ms {rs:.0f} req/s ({rs/rn:.3f}x), p99 {ps:.0f} us ({ps/pn:.2f}x) "
      f"({rounds} interleaved rounds; {noisy} run(s) started on a busy machine)")
EOF
}

# --idle-check: resident memory per idle keep-alive connection. For each round and proxy (the
# order rotating each round), a fresh proxy process: warmed by 32 connections with a request
# each (closed again), RSS once it is steady ("before"); then loadtest/idle-conns.py opens
# IDLE_CONNS connections, one keep-alive GET on each, and holds them idle; RSS once steady
# again ("after"); the connections are checked to be still open, closed, and the RSS read once
# more ("closed"). (after - before) / connections held is the figure; medians over rounds.
IDLE_HELPER=$ROOT/loadtest/idle-conns.py

# rss_settled PID: RSS in KiB once two readings a second apart differ by under 0.2 % (or 64
# KiB), or after IDLE_SETTLE_MAX seconds; prints "KIB SECONDS".
rss_settled() {
    local pid=$1 t0=$SECONDS prev cur
    prev=$(rss_kb "$pid")
    while sleep 1; do
        cur=$(rss_kb "$pid")
        local d=$((cur > prev ? cur - prev : prev - cur)) tol=$((cur / 500 > 64 ? cur / 500 : 64))
        if ((d <= tol || SECONDS - t0 >= IDLE_SETTLE_MAX)); then break; fi
        prev=$cur
    done
    echo "$cur $((SECONDS - t0))"
}

idle_one() {
    local target=$1 round=$2 port pid line before after closed settle ready check
    port=$(port_of "$target")
    case $target in turnpike*) start_turnpike "$target" ;; *) "start_$target" ;; esac
    if [[ ${UP[$target]:-0} != 1 ]]; then stop "$target"; return; fi
    pid=${PID_OF[$target]}
    echo quit | taskset -c "$LOAD_CPUS" python3 "$IDLE_HELPER" --port "$port" --conns 32 >/dev/null
    read -r before _ < <(rss_settled "$pid")
    coproc IDLE { exec taskset -c "$LOAD_CPUS" python3 "$IDLE_HELPER" --port "$port" --conns "$IDLE_CONNS" --hold-max 600 2>"$TMP/idle-conns.err"; }
    local helper=$IDLE_PID out=${IDLE[0]} in=${IDLE[1]}
    PIDS+=("$helper")
    if ! read -r -t 300 -u "$out" ready; then ready="ready 0 $IDLE_CONNS -"; fi
    read -r after settle < <(rss_settled "$pid")
    echo check >&"$in"
    if ! read -r -t 30 -u "$out" check; then check="open 0 closed ?"; fi
    echo quit >&"$in"
    wait "$helper" 2>/dev/null || true
    forget_pid "$helper"
    sleep 2
    closed=$(rss_kb "$pid")
    stop "$target"
    UP[$target]=0
    [[ -s $TMP/idle-conns.err ]] && sed 's/^/peer-bench:   /' "$TMP/idle-conns.err" >&2
    read -r _ opened failed open_s <<<"$ready"
    read -r _ still _ gone <<<"$check"
    echo "{\"before_kb\": $before, \"after_kb\": $after, \"closed_kb\": $closed, \"opened\": $opened," \
        "\"failed\": $failed, \"open_seconds\": \"$open_s\", \"settle_seconds\": $settle," \
        "\"still_open\": ${still:-0}}" >"$TMP/results/idle.$target.$round.json"
    local per=0
    ((opened > 0)) && per=$(((after - before) * 1024 / opened))
    printf '  idle %-9s round %s: %s held (%s failed, %s closed by the server), RSS %s -> %s KiB (%s B/conn), %s KiB after closing\n' \
        "$target" "$round" "$opened" "$failed" "${gone:-?}" "$before" "$after" "$per" "$closed" >&2
}

idle_check() {
    local targets=() t round i n
    for t in $TARGETS; do
        case $t in
            nginx | haproxy) targets+=("$t") ;;
            turnpike) [[ -x $TURNPIKE ]] && targets+=("$t") ;;
            turnpike-base) [[ -x $TURNPIKE_BASE ]] && targets+=("$t") ;;
        esac
    done
    n=${#targets[@]}
    ((n > 0)) || { log "--idle-check: no proxy among --targets"; exit 1; }
    # Descriptors: the helper holds IDLE_CONNS, each proxy as many plus its upstream and listeners.
    local need=$((IDLE_CONNS + 1024))
    if (($(ulimit -Hn) < need)); then ulimit -Hn "$need" 2>/dev/null || true; fi
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    if (($(ulimit -n) < need)); then
        log "--idle-conns $IDLE_CONNS needs $need open files; the limit is $(ulimit -n) (hard $(ulimit -Hn)):" \
            "use --idle-conns $(($(ulimit -Hn) - 1024)) or less"
        exit 1
    fi
    # nginx closes idle keep-alive connections once fewer than 1/16 of worker_connections are
    # free: leave it a quarter to spare.
    NGINX_RLIMIT=$(ulimit -n)
    NGINX_WORKER_CONNECTIONS=$((IDLE_CONNS * 5 / 4 + 1024))
    # HAProxy reserves two descriptors per connection (client and server side) and by default
    # refuses to start when it cannot raise its limit that far; idle clients need one each.
    HAPROXY_MAXCONN=$((IDLE_CONNS + 512))
    HAPROXY_NO_STRICT_LIMITS=1
    # Idle timeouts far longer than a measurement (turnpike's gateway.idle_timeout_ms follows).
    CLIENT_IDLE_S=600
    NGINX_KEEPALIVE_S=600
    mkdir -p "$TMP/results"
    for ((round = 1; round <= ROUNDS; round++)); do
        for ((i = 0; i < n; i++)); do
            idle_one "${targets[$(((i + round - 1) % n))]}" "$round"
        done
    done
    python3 - "$TMP/results" "$OUT_JSON" "$ROUNDS" "$IDLE_CONNS" "$PROXY_CPUS" "${targets[*]}" "$*" \
        "${WHY_MISSING[turnpike]:-}" "$IDLE_TLS" <<'EOF'
import glob, json, os, platform, statistics, sys
d, out, rounds, conns, pcpu, targets, argv, tp_missing, tls = sys.argv[1:]
tls = tls == "1"
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip(); break
table = {}
for t in targets.split():
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{d}/idle.{t}.*.json"))]
    runs = [r for r in runs if r["opened"] > 0]
    if not runs:
        table[t] = None
        continue
    per = [(r["after_kb"] - r["before_kb"]) * 1024 / r["opened"] for r in runs]
    table[t] = {
        "rounds": len(runs),
        "bytes_per_conn": statistics.median(per),
        "bytes_per_conn_rounds": [round(p) for p in per],
        "before_kb": statistics.median(r["before_kb"] for r in runs),
        "after_kb": statistics.median(r["after_kb"] for r in runs),
        "closed_kb": statistics.median(r["closed_kb"] for r in runs),
        "opened": min(r["opened"] for r in runs),
        "failed": sum(r["failed"] for r in runs),
        "closed_by_server": sum(r["opened"] - r["still_open"] for r in runs),
        "settle_seconds_max": max(r["settle_seconds"] for r in runs),
    }
base = (table.get("nginx") or {}).get("bytes_per_conn")
for r in table.values():
    if r and base:
        r["ratio_to_nginx"] = r["bytes_per_conn"] / base
doc = {"machine": {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release()},
       "idle_conns": int(conns), "tls": tls, "rounds": int(rounds), "proxy_cpus": pcpu, "command": argv,
       "idle": table}
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
json.dump(doc, open(out, "w"), indent=2)
print(f"machine: {cpu}, {os.cpu_count()} CPUs, kernel {platform.release()}; one proxy worker on CPU {pcpu}; "
      f"{conns} idle keep-alive connections, "
      f"{'TLS 1.3 (ECDSA P-256 certificate), a full handshake and one request each' if tls else 'one request each'}; "
      f"medians of {rounds} interleaved rounds, "
      f"a fresh proxy process each")
print(f"command: {argv}\n")
print("| proxy | bytes per idle connection | vs nginx | RSS before | RSS with the connections | RSS after closing them | per round |")
print("|---|---|---|---|---|---|---|")
mib = lambda kb: f"{kb / 1024:.1f} MiB"
for t in targets.split():
    r = table[t]
    if r is None:
        print(f"| {t} | missing | | | | | |")
        continue
    warn = ""
    if r["failed"] or r["closed_by_server"]:
        warn = f" [{r['failed']} failed, {r['closed_by_server']} closed by the server]"
    ratio = f"{r['ratio_to_nginx']:.2f}x" if "ratio_to_nginx" in r else "-"
    print(f"| {t} | {r['bytes_per_conn']:.0f}{warn} | {ratio} | {mib(r['before_kb'])} | {mib(r['after_kb'])} "
          f"| {mib(r['closed_kb'])} | {', '.join(str(p) for p in r['bytes_per_conn_rounds'])} |")
new, old = table.get("turnpike"), table.get("turnpike-base")
if new and old and old["bytes_per_conn"] > 0:
    print(f"\nturnpike / turnpike-base: {new['bytes_per_conn']:.0f} / {old['bytes_per_conn']:.0f} bytes per idle "
          f"connection ({new['bytes_per_conn'] / old['bytes_per_conn']:.2f}x)")
print(f"\nJSON: {out}")
EOF
}

# ensure_ports_free: refuses to run when something already listens on a port this run uses
# (another peer-bench run, above all): its proxies would answer in place of this run's, whose
# own could not bind, and the figures (an RSS of 0, throughput of the wrong process) be wrong.
ensure_ports_free() {
    local name p busy=()
    for name in direct nginx haproxy turnpike turnpike-base nginx-policies turnpike-policies \
        turnpike-base-policies nginx-apikeys haproxy-apikeys turnpike-apikeys turnpike-base-apikeys \
        turnpike-jwt turnpike-base-jwt nginx-cache haproxy-cache turnpike-cache turnpike-base-cache; do
        for p in $(port_of "$name") $(tls_port_of "$name"); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then busy+=("$p ($name)"); fi
        done
    done
    if ((${#busy[@]} > 0)); then
        log "ERROR: something already listens on ${busy[*]}: another peer-bench run, or another" \
            "server; stop it first"
        exit 1
    fi
}

main() {
    ensure_tools
    ensure_binaries
    ensure_ports_free
    if [[ $WRK_CHECK == 1 || $SCRAPE_CHECK == 1 ]]; then
        WANT_TLS=0
    fi
    if [[ $WANT_TLS == 1 ]]; then make_cert; fi
    if [[ $WRK_CHECK == 1 ]]; then
        # The backend gets the proxies' CPU here: the generators have the other one to themselves.
        LOAD_CPUS=$PROXY_CPUS start_backend
        wrk_check
        return
    fi
    if [[ $SCRAPE_CHECK == 1 ]]; then
        start_backend
        start_turnpike
        [[ ${UP[turnpike]:-0} == 1 ]] || exit 1
        scrape_check
        return
    fi
    if [[ $IDLE_CHECK == 1 ]]; then
        local tls_flag=
        if [[ $IDLE_TLS == 1 ]]; then tls_flag="--tls "; fi
        [[ -n $JSON_SET ]] || OUT_JSON=$TARGET_DIR/peer-bench-idle${tls_flag:+-tls}.json
        start_backend
        idle_check "$0 --idle-check $tls_flag${TURNPIKE_BASE:+--base $TURNPIKE_BASE }--idle-conns $IDLE_CONNS --rounds $ROUNDS --proxy-cpus $PROXY_CPUS --load-cpus $LOAD_CPUS --targets \"$TARGETS\""
        return
    fi
    start_backend
    if [[ " $TARGETS " == *" nginx "* ]]; then start_nginx; fi
    if [[ " $TARGETS " == *" haproxy "* ]]; then start_haproxy; fi
    if [[ " $TARGETS " == *" turnpike "* ]]; then start_turnpike; fi
    if [[ " $TARGETS " == *" turnpike-base "* ]]; then start_turnpike turnpike-base; fi
    if [[ " $SCENARIOS " == *" policies "* ]]; then start_policies; fi
    if [[ " $SCENARIOS " == *" apikeys "* ]]; then start_apikeys; fi
    if [[ " $SCENARIOS " == *" jwt "* ]]; then start_jwt; fi
    if [[ " $SCENARIOS " == *" cache-hit "* ]]; then start_cache; fi
    run_scenarios
    local env_note=
    [[ $NGINX_REQUEST_BUFFERING != on ]] && env_note="NGINX_REQUEST_BUFFERING=$NGINX_REQUEST_BUFFERING "
    summarize "$env_note$0 ${TURNPIKE_BASE:+--base $TURNPIKE_BASE }--rounds $ROUNDS --duration $DURATION --warmup $WARMUP --conns $CONNS --workers $WORKERS --proxy-cpus $PROXY_CPUS --load-cpus $LOAD_CPUS --scenarios \"$SCENARIOS\""
}

main
