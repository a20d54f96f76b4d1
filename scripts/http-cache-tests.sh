#!/usr/bin/env bash
# http-cache-tests.sh: the HTTP caching test suite (http-cache-tests on the npm registry, the
# suite behind cache-tests.fyi) against a reverse proxy with its cache on, on loopback.
#
#   scripts/http-cache-tests.sh --proxy nginx                   # nginx proxy_cache, 1 worker
#   scripts/http-cache-tests.sh --proxy turnpike [--turnpike-bin PATH]
#   scripts/http-cache-tests.sh --proxy direct                  # the suite's origin, no cache
#   scripts/http-cache-tests.sh --proxy nginx --json out.json   # every test's result too
#   scripts/http-cache-tests.sh --proxy turnpike --id freshness-max-age   # one test, verbose
#
# Installs the suite once into ~/.cache/turnpike/http-cache-tests (npm; Node >= 14.8, installed
# with apt when missing), starts its origin server on 127.0.0.1, the chosen proxy in front of it
# and runs the suite's command-line client against the proxy, then stops everything.
#
# The proxies:
#   nginx     1 worker, proxy_pass to the origin, proxy_cache (a keys zone on disk in the run's
#             temp dir) with proxy_cache_revalidate on: the configuration the suite's own docker
#             image tests nginx with, nothing else changed (NGINX_REVALIDATE=off: nginx's own
#             default, which revalidates a stale entry with a full GET instead of a conditional
#             one).
#   turnpike  1 worker, one API whose $default route is an http_proxy integration to the
#             origin (its URI has no path, so the request's path and query go through
#             unchanged), every method; the $default stage has `cache: { enabled: true, mode:
#             http }` (RFC 9111 behaviour). A binary that does not know the stage cache (one
#             built before it) runs without it, and the run says so: a no-cache baseline.
#   direct    no proxy: the client talks to the origin (what a cache that stores nothing scores).
#
# Counting. The client runs every test that is not browser-only (350 of 355 in 0.4.5). A
# test's raw result is true (passed) or an error. "passed N of M" counts the true ones among all
# M run, as the suite's own browser page totals them ("Total M tests, N passed"), whatever the
# test's kind: the suite has three kinds, "required" (conformance: a failure is a violation of
# RFC 9111), "optimal" (a failure means the cache did not reuse a stored response when it
# could) and "check" (no right answer: it records what the cache does, Y or N). The breakdown
# below the total gives each kind apart, and the failures the way the suite's result tables
# (cache-tests.fyi) show them: a test whose dependency did not pass is "dependency failed"
# there rather than failed, and a "setup" failure is the harness not getting the requests it
# expected (the proxy changed or refused something the test needs), not a caching verdict.
#
# Everything listens on 127.0.0.1 on ports chosen free for the run; processes started here are
# stopped on exit, and any left over by an earlier run that was killed are stopped first.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SUITE_VERSION=${HTTP_CACHE_TESTS_VERSION:-0.4.5}
CACHE_HOME=${HTTP_CACHE_TESTS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/turnpike/http-cache-tests}
PROXY=
TURNPIKE_BIN=${TURNPIKE:-$TARGET_DIR/release/turnpike}
OUT_JSON=
TEST_ID=
KEEP_TMP=${KEEP_TMP:-0}
# nginx's proxy_cache_revalidate: on (the suite's docker image) or off (nginx's default).
NGINX_REVALIDATE=${NGINX_REVALIDATE:-on}
# The stage cache turnpike runs with: mode http, freshness from the responses (no ttl_seconds,
# which would be a default lifetime for responses without one: the suite expects those not to be
# reused, and its dependency chains break when they are).
TURNPIKE_CACHE=${TURNPIKE_CACHE:-"{ enabled: true, capacity_bytes: 67108864, mode: http }"}


usage() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOF

Options:
  --proxy nginx|turnpike|direct   what the client talks to (required)
  --turnpike-bin PATH   the turnpike binary [TURNPIKE; default $TARGET_DIR/release/turnpike]
  --json OUT            every test's id, suite, kind, raw result and shown result, and the totals
  --id TEST-ID          run that one test, with its requests and responses printed
  --keep-tmp            keep the run's temp dir (configs, logs, the raw results) [KEEP_TMP=1]
Environment: NGINX_REVALIDATE=on|off (nginx's proxy_cache_revalidate, default on),
TURNPIKE_CACHE (the stage's cache, YAML; default "$TURNPIKE_CACHE"),
HTTP_CACHE_TESTS_VERSION (default $SUITE_VERSION), HTTP_CACHE_TESTS_HOME
(default ~/.cache/turnpike/http-cache-tests).
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --proxy) PROXY=$2; shift 2 ;;
        --turnpike-bin) TURNPIKE_BIN=$2; shift 2 ;;
        --json) OUT_JSON=$2; shift 2 ;;
        --id) TEST_ID=$2; shift 2 ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "http-cache-tests: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
case $PROXY in
    nginx | turnpike | direct) ;;
    *) echo "http-cache-tests: --proxy nginx|turnpike|direct is required (try --help)" >&2; exit 2 ;;
esac
[[ -z $OUT_JSON || $OUT_JSON == /* ]] || OUT_JSON=$PWD/$OUT_JSON

log() { echo "http-cache-tests: $*" >&2; }

# --- tools and the suite -----------------------------------------------------------------------
ensure_tools() {
    local missing=()
    export PATH="$PATH:/usr/sbin:/sbin"
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    command -v python3 >/dev/null || missing+=(python3)
    [[ $PROXY != nginx ]] || command -v nginx >/dev/null || missing+=(nginx)
    if [[ ${#missing[@]} -gt 0 ]]; then
        log "installing ${missing[*]} with apt"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    ((major >= 15)) || { log "Node $(node --version) is too old: this script needs 15 or later"; exit 1; }
}

# ensure_suite: http-cache-tests@SUITE_VERSION under CACHE_HOME (once; again if the version
# changes). SUITE is its package directory.
ensure_suite() {
    SUITE=$CACHE_HOME/node_modules/http-cache-tests
    local have=
    [[ -f $SUITE/package.json ]] && have=$(node -p "require('$SUITE/package.json').version")
    if [[ $have != "$SUITE_VERSION" ]]; then
        log "installing http-cache-tests@$SUITE_VERSION into $CACHE_HOME"
        mkdir -p "$CACHE_HOME"
        npm install --prefix "$CACHE_HOME" --no-audit --no-fund --omit=dev --loglevel=error \
            "http-cache-tests@$SUITE_VERSION" >&2
    fi
    [[ -f $SUITE/cli.mjs && -f $SUITE/server/server.mjs ]] ||
        { log "the suite is not where npm should have put it ($SUITE)"; exit 1; }
}

# --- processes ---------------------------------------------------------------------------------
# Every process started here is listed in CACHE_HOME/run.pids as "PID TMPDIR"; a later run stops
# the ones still alive whose command line names that temp dir (so never an unrelated process
# that got the pid since), and removes the temp dir.
RUN_PIDS=$CACHE_HOME/run.pids
kill_leftovers() {
    [[ -f $RUN_PIDS ]] || return 0
    local pid dir
    while read -r pid dir; do
        [[ -n $pid && -n $dir ]] || continue
        if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir"; then
            log "stopping pid $pid left over by an earlier run"
            kill "$pid" 2>/dev/null || true
            sleep 0.5
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        fi
        [[ $dir == */http-cache-tests.* && -d $dir ]] && rm -rf "$dir"
    done <"$RUN_PIDS"
    rm -f "$RUN_PIDS"
}

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -f "$RUN_PIDS"
    if [[ $KEEP_TMP == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}

# start NAME CMD...: CMD in the background, output to TMP/NAME.log; its command line must name
# TMP (see kill_leftovers).
start() {
    local name=$1
    shift
    "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    echo "$! $TMP" >>"$RUN_PIDS"
}

# free_port: a port on 127.0.0.1 nothing listens on now (the kernel's pick).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS PID: true once URL answers at all (any status); false after SECONDS or
# once PID has exited.
wait_http() {
    local url=$1 deadline=$((SECONDS + $2)) pid=$3
    while ((SECONDS < deadline)); do
        curl -s -o /dev/null -m 2 "$url" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

start_origin() {
    ORIGIN_PORT=$(free_port)
    # The suite's server listens on every address (server.listen(port)): a preload binds it to
    # loopback only.
    cat >"$TMP/loopback.cjs" <<'EOF'
const net = require('net')
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (port, ...rest) {
  if (rest.length === 0 && (typeof port === 'number' || typeof port === 'string')) {
    return listen.call(this, Number(port), '127.0.0.1')
  }
  return listen.call(this, port, ...rest)
}
EOF
    (cd "$SUITE" && npm_config_protocol=http npm_config_port=$ORIGIN_PORT \
        npm_config_pidfile="$TMP/origin.pid" \
        exec node --require "$TMP/loopback.cjs" server/server.mjs "$TMP") >"$TMP/origin.log" 2>&1 &
    PIDS+=($!)
    echo "$! $TMP" >>"$RUN_PIDS"
    wait_http "http://127.0.0.1:$ORIGIN_PORT/" 15 "${PIDS[-1]}" ||
        { log "the suite's origin server did not start:"; cat "$TMP/origin.log" >&2; exit 1; }
    log "origin (http-cache-tests@$SUITE_VERSION server) on 127.0.0.1:$ORIGIN_PORT"
}

start_nginx() {
    PROXY_PORT=$(free_port)
    mkdir -p "$TMP/nginx"
    # What the suite's docker image runs (docker/nginx/nginx.conf): proxy_cache and
    # proxy_cache_revalidate, nginx's defaults for the rest.
    cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 2048; }
http {
    access_log $TMP/nginx-access.log;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy-tmp;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    proxy_cache_path $TMP/nginx/cache levels=1:2 keys_zone=tests:8m max_size=1000m inactive=600m;
    server {
        listen 127.0.0.1:$PROXY_PORT;
        location / {
            proxy_pass http://127.0.0.1:$ORIGIN_PORT;
            proxy_cache tests;
            proxy_cache_revalidate $NGINX_REVALIDATE;
        }
    }
}
EOF
    start nginx nginx -p "$TMP/nginx" -c "$TMP/nginx.conf" -g 'daemon off;'
    wait_http "http://127.0.0.1:$PROXY_PORT/" 10 "${PIDS[-1]}" ||
        { log "nginx did not start:"; cat "$TMP/nginx.log" "$TMP/nginx-error.log" >&2 2>/dev/null; exit 1; }
    PROXY_DESC="nginx $(nginx -v 2>&1 | sed 's|.*/||'), proxy_cache + proxy_cache_revalidate $NGINX_REVALIDATE, 1 worker"
}

# turnpike_config FILE WITH_CACHE
turnpike_config() {
    local cache=
    [[ $2 == 1 ]] && cache=", cache: $TURNPIKE_CACHE"
    cat >"$1" <<EOF
gateway: { listen: ["127.0.0.1:$PROXY_PORT"], workers: 1 }
admin: { enabled: false }
apis:
  - name: cache-tests
    integrations:
      origin: { type: http_proxy, uri: "http://127.0.0.1:$ORIGIN_PORT" }
    routes:
      - { key: "\$default", integration: origin }
    stages:
      - { name: \$default$cache }
EOF
}

start_turnpike() {
    [[ -x $TURNPIKE_BIN ]] || { log "no turnpike binary at $TURNPIKE_BIN (build it, or --turnpike-bin PATH)"; exit 1; }
    PROXY_PORT=$(free_port)
    local conf=$TMP/turnpike.yaml cache_note="stage cache mode http"
    turnpike_config "$conf" 1
    if ! "$TURNPIKE_BIN" check --config "$conf" >"$TMP/turnpike.check" 2>&1; then
        if grep -q 'unknown field `cache`' "$TMP/turnpike.check"; then
            log "$TURNPIKE_BIN does not know the stage cache ($(head -1 "$TMP/turnpike.check" | sed 's|^[^:]*: ||')):"
            log "running it without: a no-cache baseline"
            cache_note="NO CACHE (this binary predates the stage cache)"
            turnpike_config "$conf" 0
        fi
        if ! "$TURNPIKE_BIN" check --config "$conf" >"$TMP/turnpike.check" 2>&1; then
            log "turnpike refuses $conf:"; cat "$TMP/turnpike.check" >&2; exit 1
        fi
    fi
    start turnpike "$TURNPIKE_BIN" serve --config "$conf"
    wait_http "http://127.0.0.1:$PROXY_PORT/" 10 "${PIDS[-1]}" ||
        { log "turnpike did not start:"; tail -20 "$TMP/turnpike.log" >&2; exit 1; }
    PROXY_DESC="turnpike ($TURNPIKE_BIN), $cache_note, 1 worker"
}

# --- the run -----------------------------------------------------------------------------------
run_client() {
    log "running the suite against $BASE ($PROXY_DESC)"
    local t0=$SECONDS
    # cli.mjs reads its options as npm would pass them (npm_config_*, falling back to
    # npm_package_config_*): the id must be the empty string to run every test.
    (cd "$SUITE" && npm_config_base=$BASE npm_config_id=$TEST_ID npm_package_config_id="" \
        exec node --no-warnings cli.mjs) >"$TMP/results.json" 2>"$TMP/client.err" ||
        { log "the client failed:"; tail -20 "$TMP/client.err" >&2; exit 1; }
    if [[ -n $TEST_ID ]]; then
        cat "$TMP/results.json"
        return
    fi
    [[ -s $TMP/client.err ]] && { log "client stderr:"; tail -20 "$TMP/client.err" >&2; }
    log "client done in $((SECONDS - t0)) s"
    summarize
}

# summarize: the totals (and with --json, every test) from the client's raw results, each test
# shown as the suite's result tables show it (lib/display.mjs: determineTestResult).
summarize() {
    cat >"$TMP/summarize.mjs" <<'EOF'
import fs from 'fs'
const [suite, resultsFile, outJson, proxy, desc, version] = process.argv.slice(2)
const tests = (await import(`${suite}/tests/index.mjs`)).default
tests.push((await import(`${suite}/tests/surrogate-control.mjs`)).default)
const raw = JSON.parse(fs.readFileSync(resultsFile, 'utf8'))
const byId = new Map()
for (const s of tests) for (const t of s.tests) byId.set(t.id, { suite: s.id, test: t })
const PASS = new Set(['pass', 'yes'])
const memo = new Map()
// As lib/display.mjs's determineTestResult (with dependencies honoured).
function shown (id) {
  if (memo.has(id)) return memo.get(id)
  const t = byId.get(id).test
  const r = raw[id]
  let v
  if (r === undefined) v = 'untested'
  else if (t.depends_on && t.depends_on.some(d => !PASS.has(shown(d)))) v = 'dependency_fail'
  else if (r[0] === 'Setup') v = r[1] === 'retry' ? 'retry' : 'setup_fail'
  else if (r !== true && r[0] !== 'Assertion') v = 'harness_fail'
  else {
    const kind = t.kind || 'required'
    if (kind === 'required') v = r === true ? 'pass' : 'fail'
    else if (kind === 'optimal') v = r === true ? 'pass' : 'optional_fail'
    else v = r === true ? 'yes' : 'no'
  }
  memo.set(id, v)
  return v
}
const ids = Object.keys(raw)
const passed = ids.filter(id => raw[id] === true).length
const kinds = {}
const perTest = {}
for (const id of ids) {
  const { suite: sid, test: t } = byId.get(id)
  const kind = t.kind || 'required'
  const k = (kinds[kind] ??= { run: 0, passed: 0, shown: {} })
  k.run++
  if (raw[id] === true) k.passed++
  const v = shown(id)
  k.shown[v] = (k.shown[v] || 0) + 1
  perTest[id] = { suite: sid, kind, name: t.name, passed: raw[id] === true, shown: v,
    error: raw[id] === true ? null : raw[id] }
}
console.log(`${proxy}: ${desc}`)
console.log(`passed ${passed} of ${ids.length} (http-cache-tests@${version}; every test the client runs, all kinds)`)
const names = { pass: 'pass', fail: 'FAIL', optional_fail: 'not optimal', yes: 'Y', no: 'N',
  setup_fail: 'setup failed', harness_fail: 'harness failed', dependency_fail: 'dependency failed',
  retry: 'retried', untested: 'untested' }
for (const kind of ['required', 'optimal', 'check']) {
  const k = kinds[kind]
  if (!k) continue
  const parts = Object.entries(k.shown).sort((a, b) => b[1] - a[1]).map(([v, n]) => `${n} ${names[v]}`)
  console.log(`  ${kind.padEnd(8)} ${String(k.passed).padStart(3)} of ${String(k.run).padStart(3)} passed; as the result tables show them: ${parts.join(', ')}`)
}
if (outJson) {
  fs.writeFileSync(outJson, JSON.stringify({ proxy, description: desc, suite_version: version,
    passed, run: ids.length, kinds, tests: perTest }, null, 2))
  console.log(`JSON: ${outJson}`)
}
EOF
    node "$TMP/summarize.mjs" "$SUITE" "$TMP/results.json" "$OUT_JSON" "$PROXY" "$PROXY_DESC" "$SUITE_VERSION"
}

main() {
    ensure_tools
    ensure_suite
    kill_leftovers
    TMP=$(mktemp -d -t http-cache-tests.XXXXXX)
    # nginx's worker runs as an unprivileged user: it must reach its cache and temp dirs here.
    chmod 755 "$TMP"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    start_origin
    case $PROXY in
        nginx) start_nginx ;;
        turnpike) start_turnpike ;;
        direct) PROXY_PORT=$ORIGIN_PORT PROXY_DESC="the suite's origin server itself, no cache" ;;
    esac
    BASE=http://127.0.0.1:$PROXY_PORT
    run_client
}

main
