#!/usr/bin/env bash
# function-bench.sh: what it costs to run a Lambda handler behind turnpike.
#
# The function is loadtest/function-bench/handler.py, a trivial Python handler
# (return {"statusCode": 200, "body": "ok"}), on a route GET /fn ({type: function}) with the
# account throttle off and one gateway worker. Two measurements, in interleaved rounds:
#
#  1. throughput: invocations per second with 1, 2 and 4 runtime processes (functions[].
#     concurrency), closed loop (turnpike-load -c CONNS), and the CPU time per invocation of
#     turnpike and of its runtime processes (from /proc/PID/stat before and after each run);
#  2. latency: p50 and p99 at a constant RATE (well below saturation, one process) through
#     turnpike, against the same handler called in a plain Python loop
#     (function-bench/plain_call.py: handler(event, ctx) with a prebuilt payload 2.0 event,
#     each call timed with time.perf_counter_ns). The gateway's added latency is gateway p50 -
#     plain-call p50.
#
# Each is run with two runtimes: AWS's awslambdaric (python -m awslambdaric handler.handler,
# its C client doing the Runtime API's next/response over libcurl) and raw_runtime.py, a
# minimal Python runtime that does next/response itself on one kept-alive socket, so that the
# runtime client's share can be told apart from the gateway's. The raw runtime also times,
# inside the process, its handler with the JSON and its POST .../response round trip.
#
#   loadtest/function-bench.sh                        # 3 rounds, 5 s each
#   PYTHON=.venv/bin/python loadtest/function-bench.sh --rounds 3 --duration 5s
#   loadtest/function-bench.sh --procs "1 2" --runtimes awslambdaric --rate 100
#
# Nothing is pinned: the runtimes need both cores of a small box as much as the generator and
# the gateway do. Everything runs on loopback ports 18200-18221; every process started here is
# stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
FN_DIR=$ROOT/loadtest/function-bench

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONNS=${CONNS:-16}
PROCS=${PROCS:-"1 2 4"}
RUNTIMES=${RUNTIMES:-"awslambdaric raw"}
RATE=${RATE:-200}
RATE_CONNS=${RATE_CONNS:-4}
CALLS=${CALLS:-20000}
TURNPIKE=${TURNPIKE:-$TARGET_DIR/release/turnpike}
LOAD=${LOAD:-$TARGET_DIR/release/turnpike-load}
# The Python that runs the runtimes and the plain-call loop: awslambdaric must import in it.
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x $ROOT/.venv/bin/python ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
JSON_SET=${OUT_JSON:+1}
OUT_JSON=${OUT_JSON:-$TARGET_DIR/function-bench.json}
KEEP_TMP=${KEEP_TMP:-0}
QUIET_MAX=${QUIET_MAX:-10}
QUIET_WAIT=${QUIET_WAIT:-60}

# Throughput targets listen on 18200+N (awslambdaric) and 18210+N (raw) for N processes; the
# latency targets (one process each) on 18220 (awslambdaric) and 18221 (raw).
PORT_BASE=18200

usage() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOF

Options (environment variable in brackets):
  --rounds N          interleaved rounds [ROUNDS=$ROUNDS]
  --duration D        measured time per run, both measurements [DURATION=$DURATION]
  --warmup D          warm-up per run [WARMUP=$WARMUP]
  --conns N           closed-loop connections [CONNS=$CONNS]
  --procs LIST        runtime process counts for the throughput runs, each 1-9 [PROCS="$PROCS"]
  --runtimes LIST     awslambdaric and/or raw [RUNTIMES="$RUNTIMES"]
  --rate RPS          constant rate of the latency runs [RATE=$RATE]
  --rate-conns N      connections of the latency runs [RATE_CONNS=$RATE_CONNS]
  --calls N           calls per round of the plain-call loop [CALLS=$CALLS]
  --json FILE         summary JSON [OUT_JSON=$OUT_JSON]
  -h, --help

Environment: TURNPIKE, LOAD (binaries; built with cargo when missing), PYTHON (with
awslambdaric; default $ROOT/.venv/bin/python if present, else python3), KEEP_TMP=1 keeps
configs, logs and per-run JSON, QUIET_MAX/QUIET_WAIT (wait up to QUIET_WAIT s before a run for
other CPU use to fall under QUIET_MAX %).
EOF
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --conns) CONNS=$2; shift 2 ;;
        --procs) PROCS=$2; shift 2 ;;
        --runtimes) RUNTIMES=$2; shift 2 ;;
        --rate) RATE=$2; shift 2 ;;
        --rate-conns) RATE_CONNS=$2; shift 2 ;;
        --calls) CALLS=$2; shift 2 ;;
        --json) OUT_JSON=$2; JSON_SET=1; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "function-bench: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done

log() { echo "function-bench: $*" >&2; }

for n in $PROCS; do
    [[ $n =~ ^[1-9]$ ]] || { log "--procs: $n is not 1-9"; exit 2; }
done
for r in $RUNTIMES; do
    [[ $r == awslambdaric || $r == raw ]] || { log "--runtimes: $r is not awslambdaric or raw"; exit 2; }
done

# --- tools -------------------------------------------------------------------------------------
ensure_tools() {
    if [[ ! -x $LOAD ]]; then
        log "building turnpike-load (release)"
        (cd "$ROOT" && cargo build --release -p turnpike-load)
    fi
    if [[ ! -x $TURNPIKE ]]; then
        log "building turnpike (release)"
        (cd "$ROOT" && cargo build --release -p turnpike-proxy)
    fi
    command -v curl >/dev/null || { log "curl is needed"; exit 1; }
    if [[ " $RUNTIMES " == *" awslambdaric "* ]] && ! "$PYTHON" -c 'import awslambdaric' 2>/dev/null; then
        log "ERROR: $PYTHON cannot import awslambdaric (pip install awslambdaric, or set PYTHON)"
        exit 1
    fi
}

# --- processes ---------------------------------------------------------------------------------
TMP=$(mktemp -d -t function-bench.XXXXXX)
mkdir -p "$TMP/results"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ $KEEP_TMP == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT SECONDS PID: true once something accepts on 127.0.0.1:PORT; false after
# SECONDS, or as soon as PID has exited.
wait_port() {
    local port=$1 deadline=$((SECONDS + $2)) pid=$3
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# ensure_ports_free: refuses to run when something already listens on a port this run uses:
# it would answer in place of this run's gateway.
ensure_ports_free() {
    local p busy=()
    for ((p = PORT_BASE; p <= PORT_BASE + 21; p++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then busy+=("$p"); fi
    done
    if ((${#busy[@]} > 0)); then
        log "ERROR: something already listens on ${busy[*]}: another function-bench run? stop it first"
        exit 1
    fi
}

# command_of RUNTIME: the function's command, as a YAML flow list.
command_of() {
    case $1 in
        awslambdaric) echo "[\"$PYTHON\", -m, awslambdaric, handler.handler]" ;;
        raw) echo "[\"$PYTHON\", \"$FN_DIR/raw_runtime.py\", handler.handler]" ;;
    esac
}

# start_gateway NAME PORT RUNTIME PROCS [ENV]: turnpike with the function on GET /fn, its
# runtime processes started; waits (up to 20 s) for a 200 from /fn. ENV is YAML map entries
# for the function's environment.
declare -A PID_OF=() PORT_OF=()
start_gateway() {
    local name=$1 port=$2 runtime=$3 procs=$4 env=${5:-}
    cat >"$TMP/$name.yaml" <<EOF
gateway: { listen: ["127.0.0.1:$port"], workers: 1, throttle: off }
admin: { enabled: false }
functions:
  - name: bench
    command: $(command_of "$runtime")
    working_dir: "$FN_DIR"
    concurrency: $procs
    environment: { $env }
apis:
  - name: bench
    integrations:
      fn: { type: function, function: bench }
    routes:
      - { key: "GET /fn", integration: fn }
    stages:
      - { name: \$default }
EOF
    "$TURNPIKE" serve --config "$TMP/$name.yaml" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    PID_OF[$name]=$!
    PORT_OF[$name]=$port
    if ! wait_port "$port" 10 "${PID_OF[$name]}"; then
        log "ERROR: $name did not start:"; tail -20 "$TMP/$name.log" >&2; exit 1
    fi
    local deadline=$((SECONDS + 20))
    until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/fn") == 200 ]]; do
        if ((SECONDS >= deadline)); then
            log "ERROR: $name: GET /fn does not answer 200:"; tail -20 "$TMP/$name.log" >&2; exit 1
        fi
        sleep 0.2
    done
}

# stop_gateway NAME: SIGTERM, and waits for it (it stops its runtimes first).
stop_gateway() {
    local pid=${PID_OF[$1]}
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# cpu_ticks PID: "SELF CHILDREN": user+system clock ticks of PID and of its live children
# (the runtime processes).
cpu_ticks() {
    local pid=$1 self kids=0 child t
    self=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$child/stat" 2>/dev/null) || continue
        kids=$((kids + t))
    done
    echo "$self $kids"
}

# busy_percent: CPU use of the whole machine over half a second, in percent of all CPUs.
busy_percent() {
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    sleep 0.5
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        d = y[2] - x[2]; print (d > 0 ? int(100 * (y[1] - x[1]) / d) : 0) }'
}

# wait_quiet: waits (up to QUIET_WAIT s) for other load to fall under QUIET_MAX percent, and
# counts the runs that had to start regardless.
NOISY_RUNS=0
wait_quiet() {
    local deadline=$((SECONDS + QUIET_WAIT)) busy
    while busy=$(busy_percent) && ((busy > QUIET_MAX)); do
        if ((SECONDS >= deadline)); then
            log "machine still ${busy}% busy with other work: running anyway (counted as noisy)"
            NOISY_RUNS=$((NOISY_RUNS + 1))
            return
        fi
        sleep 2
    done
}

# run_load NAME ROUND ARGS...: one turnpike-load run against NAME's /fn; its JSON report and
# the CPU ticks of the gateway and its runtimes before and after go to results/.
run_load() {
    local name=$1 round=$2 before after out
    shift 2
    out=$TMP/results/$name.$round
    wait_quiet
    before=$(cpu_ticks "${PID_OF[$name]}")
    "$LOAD" -q -t 1 -d "$DURATION" --warmup "$WARMUP" --json "$out.json" "$@" \
        "http://127.0.0.1:${PORT_OF[$name]}/fn" >"$out.txt" 2>&1 ||
        log "WARNING: turnpike-load failed against $name: $(tail -1 "$out.txt")"
    after=$(cpu_ticks "${PID_OF[$name]}")
    echo "$before $after $(getconf CLK_TCK)" >"$out.cpu"
}

# rotate LIST ROUND: LIST rotated left by ROUND places, so that no target always runs first.
rotate() {
    local -a a=($1)
    local n=${#a[@]} i
    for ((i = 0; i < n; i++)); do echo -n "${a[(i + $2) % n]} "; done
}

throughput() {
    local runtime n targets= round name port
    for runtime in $RUNTIMES; do
        for n in $PROCS; do
            name=$runtime-$n port=$((PORT_BASE + n))
            [[ $runtime == raw ]] && port=$((port + 10))
            start_gateway "$name" "$port" "$runtime" "$n"
            targets+="$name "
        done
    done
    for ((round = 1; round <= ROUNDS; round++)); do
        for name in $(rotate "$targets" $((round - 1))); do
            log "throughput round $round/$ROUNDS: $name"
            run_load "$name" "$round" -c "$CONNS"
        done
    done
    for name in $targets; do stop_gateway "$name"; done
}

latency() {
    local runtime targets= round name env port
    for runtime in $RUNTIMES; do
        name=rate-$runtime env= port=$((PORT_BASE + 20))
        if [[ $runtime == raw ]]; then
            # The raw runtime's own timings, written when the gateway stops it.
            env="RAW_RUNTIME_STATS: \"$TMP/results/raw-runtime-stats.json\""
            port=$((port + 1))
        fi
        start_gateway "$name" "$port" "$runtime" 1 "$env"
        targets+="$name "
    done
    for ((round = 1; round <= ROUNDS; round++)); do
        for name in $(rotate "$targets plain" $((round - 1))); do
            log "latency round $round/$ROUNDS: $name"
            if [[ $name == plain ]]; then
                wait_quiet
                (cd "$FN_DIR" && "$PYTHON" plain_call.py "$CALLS") >"$TMP/results/plain.$round.json"
            else
                run_load "$name" "$round" -c "$RATE_CONNS" --rate "$RATE"
            fi
        done
    done
    for name in $targets; do stop_gateway "$name"; done
    # The raw runtime writes its timings once it sees the gateway go.
    local i
    for ((i = 0; i < 30; i++)); do
        [[ " $RUNTIMES " != *" raw "* || -s $TMP/results/raw-runtime-stats.json ]] && break
        sleep 0.1
    done
}

summarize() {
    python3 - "$TMP/results" "$OUT_JSON" "$1" "$ROUNDS" "$NOISY_RUNS" "$RATE" "$CONNS" \
        "$RUNTIMES" "$PROCS" <<'EOF'
import glob, json, os, statistics, sys

results, out, command, rounds, noisy, rate, conns, runtimes, procs = sys.argv[1:]
runtimes, procs = runtimes.split(), [int(p) for p in procs.split()]
med = lambda xs: statistics.median(xs) if xs else None


def runs(name):
    found = []
    for path in sorted(glob.glob(os.path.join(results, name + ".*.json"))):
        with open(path) as f:
            r = json.load(f)
        base = path[: -len(".json")]
        if os.path.exists(base + ".cpu"):
            b_self, b_kids, a_self, a_kids, hz = map(float, open(base + ".cpu").read().split())
            n = r["requests"] + r.get("warmup_requests", 0)
            r["gateway_cpu_us"] = (a_self - b_self) / hz * 1e6 / n if n else None
            r["runtime_cpu_us"] = (a_kids - b_kids) / hz * 1e6 / n if n else None
        found.append(r)
    return found


def us(x):
    if x is None:
        return "-"
    return f"{x / 1000:.2f}ms" if x >= 1000 else f"{x:.0f}µs" if x >= 10 else f"{x:.1f}µs"


def bad(rs):
    return sum(r["errors"]["total"] + sum(v for k, v in r["status"].items() if k != "2xx") for r in rs)


summary = {"command": command, "rounds": int(rounds), "noisy_runs": int(noisy), "throughput": {}, "latency": {}}
print(f"\n### Throughput: closed loop, {conns} connections ({rounds} interleaved rounds, medians; "
      f"{noisy} run(s) started on a busy machine)\n")
print("| runtime | processes | invocations/s | turnpike CPU per invocation | runtimes' CPU per invocation | p50 | p99 | errors + non-2xx |")
print("|---|---|---|---|---|---|---|---|")
for runtime in runtimes:
    for n in procs:
        rs = runs(f"{runtime}-{n}")
        if not rs:
            continue
        row = {
            "invocations_per_sec": med([r["requests_per_sec"] for r in rs]),
            "gateway_cpu_us_per_invocation": med([r["gateway_cpu_us"] for r in rs]),
            "runtime_cpu_us_per_invocation": med([r["runtime_cpu_us"] for r in rs]),
            "p50_us": med([r["latency_us"]["p50"] for r in rs]),
            "p99_us": med([r["latency_us"]["p99"] for r in rs]),
            "errors_and_non_2xx": bad(rs),
        }
        summary["throughput"][f"{runtime}-{n}"] = row
        print(f"| {runtime} | {n} | {row['invocations_per_sec']:.0f} | {us(row['gateway_cpu_us_per_invocation'])} "
              f"| {us(row['runtime_cpu_us_per_invocation'])} | {us(row['p50_us'])} | {us(row['p99_us'])} "
              f"| {row['errors_and_non_2xx']} |")

plain = []
for path in sorted(glob.glob(os.path.join(results, "plain.*.json"))):
    with open(path) as f:
        plain.append(json.loads(f.read().strip().splitlines()[-1]))
lat = summary["latency"]
if plain:
    lat["plain_call"] = {k: med([p["bare"][k] for p in plain]) for k in ("p50_us", "p99_us")}
    lat["plain_call_with_json"] = {k: med([p["with_json"][k] for p in plain]) for k in ("p50_us", "p99_us")}
base = lat.get("plain_call", {}).get("p50_us")
print(f"\n### Latency at a constant {rate} invocations/s, one runtime process ({rounds} interleaved rounds, medians)\n")
print("| path | p50 | p99 | p50 - plain call p50 | service time p50 / p99 | errors + non-2xx |")
print("|---|---|---|---|---|---|")
if plain:
    for key, label in (("plain_call", "plain call: handler(event, ctx)"),
                       ("plain_call_with_json", "plain call + json.loads(event) + json.dumps(answer)")):
        print(f"| {label} | {us(lat[key]['p50_us'])} | {us(lat[key]['p99_us'])} | - | - | - |")
for runtime in runtimes:
    rs = runs(f"rate-{runtime}")
    if not rs:
        continue
    row = {
        "p50_us": med([r["latency_us"]["p50"] for r in rs]),
        "p99_us": med([r["latency_us"]["p99"] for r in rs]),
        "service_p50_us": med([r["service_time_us"]["p50"] for r in rs]),
        "service_p99_us": med([r["service_time_us"]["p99"] for r in rs]),
        "errors_and_non_2xx": bad(rs),
    }
    row["added_p50_us"] = row["p50_us"] - base if base is not None else None
    lat[runtime] = row
    label = "turnpike + awslambdaric" if runtime == "awslambdaric" else "turnpike + raw_runtime.py"
    print(f"| {label} | {us(row['p50_us'])} | {us(row['p99_us'])} | **{us(row['added_p50_us'])}** "
          f"| {us(row['service_p50_us'])} / {us(row['service_p99_us'])} | {row['errors_and_non_2xx']} |")
stats = os.path.join(results, "raw-runtime-stats.json")
if os.path.exists(stats):
    s = json.load(open(stats))
    lat["raw_runtime_inside"] = s
    print(f"\nInside raw_runtime.py ({s['invocations']} invocations, every latency run): handler with "
          f"its JSON p50 {us(s['handler_with_json']['p50_us'])} (p99 {us(s['handler_with_json']['p99_us'])}); "
          f"POST .../response round trip p50 {us(s['post_round_trip']['p50_us'])} "
          f"(p99 {us(s['post_round_trip']['p99_us'])}).")
print(f"\n```sh\n{command}\n```")
os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
with open(out, "w") as f:
    json.dump(summary, f, indent=2)
print(f"\nJSON: {out}")
EOF
}

main() {
    ensure_tools
    ensure_ports_free
    log "turnpike $TURNPIKE, python $PYTHON ($("$PYTHON" --version 2>&1))"
    throughput
    latency
    summarize "$0 --rounds $ROUNDS --duration $DURATION --warmup $WARMUP --conns $CONNS --procs \"$PROCS\" --runtimes \"$RUNTIMES\" --rate $RATE --rate-conns $RATE_CONNS --calls $CALLS"
}

main
