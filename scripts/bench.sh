#!/usr/bin/env bash
# scripts/bench.sh - `make bench`: hiscored vs redis-server, driven by the same load generator
# (`hiscore-bench server`), same keys, same workloads. Writes a markdown report section into
# docs/benchmarks.md (between the bench.sh markers) and keeps the raw JSON lines.
#
# What it does (127.0.0.1 only; everything temporary lives in a fresh mktemp dir):
#   1. builds release hiscored + hiscore-bench (BUILD=0 skips; SCRATCH picks the build dir)
#   2. starts its own redis-server (private port, --save '' --appendonly no, daemonized, pidfile in
#      the temp dir) and its own hiscored (private port, temp data dir, --shards $SHARDS,
#      --durability memory when hiscored has that flag, --admin-port + /metrics when it has that)
#   3. preloads N players into both (Hiscore: SubmitBatch of 1000, Redis: ZADD with 1000 members)
#      -> load time, server CPU, bytes/entry (Redis: INFO used_memory delta; Hiscore:
#      hiscore_jemalloc_allocated_bytes delta from /metrics if available, else VmRSS delta)
#   4. for every workload (submit submit_unranked rank top10 page around mixed) x pipeline (1, 16), 50 connections,
#      alternating Hiscore and Redis: a short calibration run (also the warm-up), then the measured
#      run with a request count chosen so the server burns >= MIN_TICKS CPU ticks, capped by the
#      redis-baseline.sh counts (REQ_P1 / REQ_P16 / REQ_PAGE_P16) and by MAX_RUN_S seconds
#   5. peak RSS (VmHWM) of both servers, then the markdown tables with Hiscore/Redis ratios
#   6. kills both servers by pid and removes the temp dir (EXIT trap, also on error/^C)
# Every step runs under `timeout` with what is left of the MAX_S budget; when the budget runs
# out the runs left are skipped (and listed as such) and the report is still written.
#
# Knobs (env): N=1000000 CLIENTS=50 SEED=42 SHARDS=2 THREADS=1 (generator event loops)
#   WORKLOADS="submit submit_unranked rank top10 page around mixed" PIPELINES="1 16"
#   REQ_P1=300000 REQ_P16=1000000 REQ_PAGE_P16=400000 (caps) MIN_TICKS=300 CALIB=20000
#   MAX_RUN_S=40 MAX_S=1200 (whole script) REDIS_PORT=17379 HS_PORT=17450 HS_ADMIN_PORT=17451
#   HISCORED_ARGS="" (extra hiscored flags) METRICS_URL="" (override the /metrics URL)
#   SCRATCH=.build BUILD=1 OUT=docs/benchmarks.md RAW_DIR=$SCRATCH/bench-results (git-ignored)
#   MARK="" (the report goes between "<!-- bench.sh:begin$MARK (" and "<!-- bench.sh:end$MARK -->",
#   so several configurations keep their own sections; `make bench` also runs SHARDS=1 MARK=:one-shard)
#   PIN=1: servers on CPU 0, generator on CPU 1 (default: no pinning, as redis-baseline.sh)
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-1000000}
CLIENTS=${CLIENTS:-50}
SEED=${SEED:-42}
SHARDS=${SHARDS:-2}
THREADS=${THREADS:-1}
WORKLOADS=${WORKLOADS:-submit submit_unranked rank top10 page around mixed}
PIPELINES=${PIPELINES:-1 16}
REQ_P1=${REQ_P1:-300000}
REQ_P16=${REQ_P16:-1000000}
REQ_PAGE_P16=${REQ_PAGE_P16:-400000}
MIN_TICKS=${MIN_TICKS:-300}
CALIB=${CALIB:-20000}
MAX_RUN_S=${MAX_RUN_S:-40}
MAX_S=${MAX_S:-1200}
REDIS_PORT=${REDIS_PORT:-17379}
HS_PORT=${HS_PORT:-17450}
HS_ADMIN_PORT=${HS_ADMIN_PORT:-17451}
HISCORED_ARGS=${HISCORED_ARGS:-}
METRICS_URL=${METRICS_URL:-}
SCRATCH=${SCRATCH:-.build}
BUILD=${BUILD:-1}
OUT=${OUT:-docs/benchmarks.md}
RAW_DIR=${RAW_DIR:-$SCRATCH/bench-results}
MARK=${MARK:-}
BEGIN_MARK="<!-- bench.sh:begin$MARK ("
END_MARK="<!-- bench.sh:end$MARK -->"
PIN=${PIN:-0}
SRV_PIN=(); CLI_PIN=()
if [ "$PIN" = 1 ]; then SRV_PIN=(taskset -c 0); CLI_PIN=(taskset -c 1); fi

for b in redis-server redis-cli timeout awk swift; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install -y redis-server redis-tools)" >&2; exit 2; }
done

T0=$(date +%s)
DEADLINE=$((T0 + MAX_S))
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
TMPD=$(mktemp -d -t hiscore-bench.XXXXXX)
mkdir -p "$RAW_DIR"
RAW="$RAW_DIR/server-$STAMP.jsonl"
: > "$RAW"
RPID=""; HPID=""
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[%5ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
rem() { REM=$(( DEADLINE - $(date +%s) )); (( REM >= 5 )); }

stop_pid() {  # $1 pid $2 expected comm prefix: stop OUR process only, by pid
  local pid=$1 name=$2
  [ -n "$pid" ] || return 0
  if [ -r "/proc/$pid/comm" ] && grep -q "^$name" "/proc/$pid/comm"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do [ -e "/proc/$pid" ] || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}
cleanup() {
  local rc=$?
  stop_pid "$RPID" redis-server; RPID=""
  stop_pid "$HPID" hiscored; HPID=""
  if [ $rc -ne 0 ]; then
    for f in "$TMPD"/*.log; do [ -f "$f" ] && cp "$f" "$RAW_DIR/server-$STAMP-$(basename "$f")" 2>/dev/null || true; done
    echo "bench.sh failed (rc=$rc); servers stopped, logs in $RAW_DIR" >&2
  fi
  rm -rf "$TMPD"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ------------------------------------------------------------------ build
if [ "$BUILD" = 1 ]; then
  log "building release hiscored and hiscore-bench into $SCRATCH"
  swift build -c release --scratch-path "$SCRATCH" --product hiscored >&2
  swift build -c release --scratch-path "$SCRATCH" --product hiscore-bench >&2
fi
HISCORED="$SCRATCH/release/hiscored"
BENCH="$SCRATCH/release/hiscore-bench"
[ -x "$HISCORED" ] && [ -x "$BENCH" ] || { echo "missing $HISCORED or $BENCH (BUILD=1?)" >&2; exit 2; }

# ------------------------------------------------------------------ servers
for p in "$REDIS_PORT" "$HS_PORT"; do
  port_free "$p" || { echo "port $p already in use - refusing to touch another instance" >&2; exit 4; }
done
"${SRV_PIN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$TMPD/redis.pid" --dir "$TMPD" --logfile "$TMPD/redis.log"
for _ in $(seq 100); do [ -s "$TMPD/redis.pid" ] && break; sleep 0.1; done
RPID=$(cat "$TMPD/redis.pid")
for _ in $(seq 100); do [ "$(timeout 5 redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
log "redis-server pid $RPID on 127.0.0.1:$REDIS_PORT"

HELP=$("$HISCORED" --help 2>&1 || true)
HS_ARGS=(--host 127.0.0.1 --port "$HS_PORT" --data-dir "$TMPD/hiscore-data" --shards "$SHARDS")
DURABILITY="(no --durability flag in this hiscored: its default)"
if grep -q -- '--durability' <<< "$HELP"; then HS_ARGS+=(--durability memory); DURABILITY="--durability memory"; fi
if [ -z "$METRICS_URL" ] && grep -q -- '--admin-port' <<< "$HELP"; then
  port_free "$HS_ADMIN_PORT" || { echo "port $HS_ADMIN_PORT already in use" >&2; exit 4; }
  HS_ARGS+=(--admin-port "$HS_ADMIN_PORT"); METRICS_URL="http://127.0.0.1:$HS_ADMIN_PORT/metrics"
fi
# shellcheck disable=SC2206
HS_ARGS+=($HISCORED_ARGS)
"${SRV_PIN[@]}" "$HISCORED" "${HS_ARGS[@]}" > "$TMPD/hiscored.log" 2>&1 &
HPID=$!
for _ in $(seq 300); do grep -q 'listening on' "$TMPD/hiscored.log" && break; [ -e "/proc/$HPID" ] || break; sleep 0.1; done
grep -q 'listening on' "$TMPD/hiscored.log" || { cat "$TMPD/hiscored.log" >&2; echo "hiscored did not start" >&2; exit 5; }
log "hiscored pid $HPID: $HISCORED ${HS_ARGS[*]}"
METRICS_ARGS=()
if [ -n "$METRICS_URL" ]; then METRICS_ARGS=(--metrics-url "$METRICS_URL"); fi

# ------------------------------------------------------------------ helpers
jget() {  # $1 key, stdin: one flat JSON object -> value (strings unquoted)
  sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" | tr -d '"' | head -1
}
calc() { awk "BEGIN{printf \"%.${2:-2}f\", $1}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || a == "null" || b == "null" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
addr_of() { [ "$1" = hiscore ] && echo "127.0.0.1:$HS_PORT" || echo "127.0.0.1:$REDIS_PORT"; }
pid_of() { [ "$1" = hiscore ] && echo "$HPID" || echo "$RPID"; }
extra_of() { if [ "$1" = hiscore ]; then echo "${METRICS_ARGS[@]}"; fi; }

# run_bench <target> <label> <args...>: one hiscore-bench call under the remaining budget;
# appends its JSON lines to $RAW and leaves the last one in $LAST. Returns 1 when skipped/failed.
run_bench() {
  local target=$1 label=$2; shift 2
  LAST=""
  rem || { log "budget MAX_S=$MAX_S exhausted: skipping $target $label"; return 1; }
  local rc=0
  # shellcheck disable=SC2046
  timeout "$REM" "${CLI_PIN[@]}" "$BENCH" server --target "$target" --addr "$(addr_of "$target")" \
    --server-pid "$(pid_of "$target")" $(extra_of "$target") --players "$N" --connections "$CLIENTS" \
    --threads "$THREADS" --seed "${RUN_SEED:-$SEED}" --json --label "$label" "$@" > "$TMPD/out.json" 2> "$TMPD/out.err" || rc=$?
  cat "$TMPD/out.json" >> "$RAW"
  LAST=$(tail -1 "$TMPD/out.json")
  if [ $rc -ne 0 ]; then
    log "$target $label: exit $rc"; sed 's/^/    /' "$TMPD/out.err" >&2
    [ -n "$LAST" ] || return 1
  fi
  return 0
}

# ------------------------------------------------------------------ preload
declare -A PRE
for t in hiscore redis; do
  log "preloading $N players into $t"
  if run_bench "$t" preload --preload --requests 0 --preload-connections 4 --preload-pipeline 4; then
    PRE[$t]=$LAST
    log "  $(jget wall_s <<< "$LAST") s, $(jget bytes_per_entry <<< "$LAST") B/entry ($(jget bytes_per_entry_source <<< "$LAST")), errors $(jget errors <<< "$LAST")"
  else
    PRE[$t]=""
  fi
done

# ------------------------------------------------------------------ workloads
# Every run draws its own operations: with one seed for all, a run repeated the (player, score)
# pairs of the runs before it on the same board, and a keep-best write repeated is one that
# changes nothing (much cheaper for Redis than a real update). Both targets of a row get the same
# seed, so they still see the same operations.
declare -A RES NREQ
ROW=0
for w in $WORKLOADS; do
  for P in $PIPELINES; do
    ROW=$((ROW + 1))
    if [ "$P" = 1 ]; then cap=$REQ_P1; elif [ "$w" = page ]; then cap=$REQ_PAGE_P16; else cap=$REQ_P16; fi
    for t in hiscore redis; do
      key="$t/$w/$P"
      RES[$key]=""; NREQ[$key]="skipped"
      RUN_SEED=$((SEED * 1000 + 2 * ROW)) run_bench "$t" "calib-$w-P$P" --workload "$w" --pipeline "$P" --requests "$CALIB" || continue
      cpu=$(jget server_cpu_us_per_op <<< "$LAST"); rps=$(jget rps <<< "$LAST")
      # requests so the server burns >= MIN_TICKS ticks (+30%), within the cap and MAX_RUN_S
      n=$(awk -v cpu="$cpu" -v rps="$rps" -v ticks="$MIN_TICKS" -v hz="$CLK_TCK" -v cap="$cap" -v min="$CALIB" -v s="$MAX_RUN_S" 'BEGIN{
            c = cpu + 0; if (c <= 0) c = 1; n = 1.3 * ticks * 1e6 / hz / c;
            if (n > cap) n = cap; if (rps + 0 > 0 && n > rps * s) n = rps * s; if (n < min) n = min;
            printf "%d", int(n / 1000) * 1000 }')
      NREQ[$key]=$n
      if RUN_SEED=$((SEED * 1000 + 2 * ROW + 1)) run_bench "$t" "$w-P$P" --workload "$w" --pipeline "$P" --requests "$n"; then
        RES[$key]=$LAST
        log "$t $w P$P: $(jget requests <<< "$LAST") ops, $(jget rps <<< "$LAST") ops/s, p99 $(jget p99_us <<< "$LAST") us, server $(jget server_cpu_us_per_op <<< "$LAST") us/op ($(jget server_cpu_ticks <<< "$LAST") ticks), errors $(jget errors <<< "$LAST"), other CPU $(jget other_cpu_pct <<< "$LAST")%"
      fi
    done
  done
done

HS_HWM=$(awk '$1=="VmHWM:"{print $2}' "/proc/$HPID/status" 2>/dev/null || echo "")
RD_HWM=$(awk '$1=="VmHWM:"{print $2}' "/proc/$RPID/status" 2>/dev/null || echo "")
HS_RSS=$(awk '$1=="VmRSS:"{print $2}' "/proc/$HPID/status" 2>/dev/null || echo "")
RD_RSS=$(awk '$1=="VmRSS:"{print $2}' "/proc/$RPID/status" 2>/dev/null || echo "")
RD_ZCARD=$(timeout 10 redis-cli -p "$REDIS_PORT" zcard lb 2>/dev/null || echo "?")
REDIS_VERSION=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*malloc=\([^ ]*\).*/\1 (\2)/p')
stop_pid "$RPID" redis-server; RPID=""
stop_pid "$HPID" hiscored; HPID=""
TOTAL_S=$(( $(date +%s) - T0 ))

# ------------------------------------------------------------------ report
f() { [ -n "$1" ] && [ "$1" != null ] && echo "$1" || echo "-"; }
{
  echo "${BEGIN_MARK}generated by scripts/bench.sh; edits between these markers are overwritten) -->"
  echo "### Run $(date -u +'%Y-%m-%d %H:%M UTC')"
  echo
  echo "- Machine: $(nproc) CPUs, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), kernel $(uname -r), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "- Hiscore: \`$HISCORED ${HS_ARGS[*]}\` (git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ', uncommitted changes')); durability: $DURABILITY; metrics: ${METRICS_URL:-none}."
  echo "- Redis: redis-server $REDIS_VERSION, \`--save '' --appendonly no\`."
  echo "- Load: \`$BENCH server --target hiscore|redis --addr 127.0.0.1:PORT --server-pid PID --players $N --connections $CLIENTS --threads $THREADS --seed S --json --workload W --pipeline P --requests R\`, after \`... --preload --requests 0 --seed $SEED\` (batches of 1000) and, per row, a $CALIB-request calibration/warm-up run; each run its own seed S ($SEED × 1000 + 2 × row for the calibration, + 1 for the measured run: no run repeats another's operations), the same for both targets. R (column \"ops\") is chosen so the server burns >= $MIN_TICKS CPU ticks (1 tick = $((1000000 / CLK_TCK)) us), capped at $REQ_P1 (P1) / $REQ_P16 (P16) / $REQ_PAGE_P16 (page P16) and $MAX_RUN_S s; pinning: $([ "$PIN" = 1 ] && echo 'servers CPU 0, generator CPU 1' || echo none)."
  echo "- Whole script: ${TOTAL_S} s (budget MAX_S=$MAX_S). Raw JSON lines: \`$RAW\`."
  echo
  echo "| workload | P | ops H / R | rps Hiscore | rps Redis | rps H/R | p50 us H / R | p99 us Hiscore | p99 us Redis | p99 H/R | server CPU us/op Hiscore | server CPU us/op Redis | CPU H/R | errors H / R | other CPU % H / R | allocations/op Hiscore |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for w in $WORKLOADS; do
    for P in $PIPELINES; do
      h=${RES[hiscore/$w/$P]:-}; r=${RES[redis/$w/$P]:-}
      hr=$(jget rps <<< "$h"); rr=$(jget rps <<< "$r")
      h99=$(jget p99_us <<< "$h"); r99=$(jget p99_us <<< "$r")
      hc=$(jget server_cpu_us_per_op <<< "$h"); rc=$(jget server_cpu_us_per_op <<< "$r")
      echo "| $w | $P | $(f "$(jget requests <<< "$h")") / $(f "$(jget requests <<< "$r")") | $(f "$hr") | $(f "$rr") | $(ratio "$hr" "$rr") | $(f "$(jget p50_us <<< "$h")") / $(f "$(jget p50_us <<< "$r")") | $(f "$h99") | $(f "$r99") | $(ratio "$h99" "$r99") | $(f "$hc") | $(f "$rc") | $(ratio "$hc" "$rc") | $(f "$(jget errors <<< "$h")") / $(f "$(jget errors <<< "$r")") | $(f "$(jget other_cpu_pct <<< "$h")") / $(f "$(jget other_cpu_pct <<< "$r")") | $(f "$(jget allocations_per_op <<< "$h")") |"
    done
  done
  echo
  hp=${PRE[hiscore]:-}; rp=${PRE[redis]:-}
  hb=$(jget bytes_per_entry <<< "$hp"); rb=$(jget bytes_per_entry <<< "$rp")
  hrss=$(jget rss_bytes_per_entry <<< "$hp"); rrss=$(jget rss_bytes_per_entry <<< "$rp")
  hw=$(jget wall_s <<< "$hp"); rw=$(jget wall_s <<< "$rp")
  hcpu=$(jget server_cpu_us_per_entry <<< "$hp"); rcpu=$(jget server_cpu_us_per_entry <<< "$rp")
  echo "| memory and load ($N players) | Hiscore | Redis | H/R |"
  echo "|---|---|---|---|"
  echo "| bytes/entry (allocator: Hiscore $(f "$(jget bytes_per_entry_source <<< "$hp")"), Redis $(f "$(jget bytes_per_entry_source <<< "$rp")")) | $(f "$hb") | $(f "$rb") | $(ratio "$hb" "$rb") |"
  echo "| bytes/entry (VmRSS delta over the preload) | $(f "$hrss") | $(f "$rrss") | $(ratio "$hrss" "$rrss") |"
  echo "| peak RSS (VmHWM, kB, end of run) | $(f "$HS_HWM") | $(f "$RD_HWM") | $(ratio "$HS_HWM" "$RD_HWM") |"
  echo "| RSS at the end (kB) | $(f "$HS_RSS") | $(f "$RD_RSS") | $(ratio "$HS_RSS" "$RD_RSS") |"
  echo "| preload wall s (batches of 1000) | $(f "$hw") | $(f "$rw") | $(ratio "$hw" "$rw") |"
  echo "| preload server CPU us/entry | $(f "$hcpu") | $(f "$rcpu") | $(ratio "$hcpu" "$rcpu") |"
  echo "| preload errors / board size after | $(f "$(jget errors <<< "$hp")") / $(f "$(jget board_size <<< "$hp")") | $(f "$(jget errors <<< "$rp")") / $(f "$(jget board_size <<< "$rp")") | |"
  echo
  skipped=""
  for w in $WORKLOADS; do for P in $PIPELINES; do for t in hiscore redis; do
    if [ -z "${RES[$t/$w/$P]:-}" ]; then skipped+=" $t/$w/P$P"; fi
  done; done; done
  if [ -n "$skipped" ]; then echo "Not measured (budget or failure):$skipped."; echo; fi
  errs=""
  for key in "${!RES[@]}"; do
    d=$(jget error_detail <<< "${RES[$key]}")
    if [ -n "$d" ]; then errs+="- $key: $d"$'\n'; fi
  done
  if [ -n "$errs" ]; then echo "Errors reported by the generator:"; echo; printf '%s\n' "$errs"; fi
  changed=""
  for w in $WORKLOADS; do for P in $PIPELINES; do
    hf=$(jget submit_changed_fraction <<< "${RES[hiscore/$w/$P]:-}"); rf=$(jget submit_changed_fraction <<< "${RES[redis/$w/$P]:-}")
    if [ -n "$hf$rf" ]; then changed+=" $w P$P $(f "$hf") / $(f "$rf");"; fi
  done; done
  if [ -n "$changed" ]; then echo "Writes that changed the board (fraction of submits, Hiscore / Redis):${changed%;}."; echo; fi
  echo "Redis ZCARD lb at the end: $RD_ZCARD."
  echo
  echo "$END_MARK"
} > "$TMPD/section.md"

if [ -f "$OUT" ] && grep -qF "$BEGIN_MARK" "$OUT" && grep -qF "$END_MARK" "$OUT"; then
  awk -v sec="$TMPD/section.md" -v begin="$BEGIN_MARK" -v end="$END_MARK" '
    index($0, begin) == 1 { while ((getline line < sec) > 0) print line; skip = 1; next }
    index($0, end) == 1 { skip = 0; next }
    !skip { print }' "$OUT" > "$TMPD/out.md"
  cp "$TMPD/out.md" "$OUT"
else
  mkdir -p "$(dirname "$OUT")"
  { [ -f "$OUT" ] && cat "$OUT" && echo; cat "$TMPD/section.md"; } > "$TMPD/out.md"
  cp "$TMPD/out.md" "$OUT"
fi
cat "$TMPD/section.md"
log "done in ${TOTAL_S} s: $OUT, $RAW"
