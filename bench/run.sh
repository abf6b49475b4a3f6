#!/usr/bin/env bash
# mailferry benchmark: mailferry vs mbsync vs doveadm backup (imapc), on two local
# Dovecot 2.3 instances started and filled by `mf-testservers`. See bench/README.md.
#
# usage: bench/run.sh            (as root: Dovecot runs its own instances)
#
# Environment (all optional):
#   BENCH_USERS=4 BENCH_MESSAGES=5000 BENCH_FOLDERS=8 BENCH_BIG=4 BENCH_SEED=1
#       corpus: users, bulk messages per user, folders per user, 5-25 MB messages
#       per user (in addition to BENCH_MESSAGES), corpus seed
#   BENCH_TOOLS="mailferry mbsync doveadm"   tools to run, in this order
#   BENCH_PARALLEL=4         per-user processes of one tool running at once
#   BENCH_DELTA_NEW=100      pass c: new messages appended to each source user
#   BENCH_DELTA_FLAGS=100    pass c: existing messages of each user newly \Flagged
#   BENCH_TIMEOUT=3600       seconds before one per-user process is killed
#   BENCH_SKIP_BUILD=1       do not run cargo; use the binaries as they are
#   BENCH_TESTSERVERS=PATH   mf-testservers binary (default target/release/...)
#   BENCH_MAILFERRY=PATH     mailferry binary (default target/release/mailferry)
#   BENCH_MAILFERRY_ARGS=".." extra flags for every mailferry run (e.g. --compress)
#   BENCH_OUT=DIR            where results go (default bench/out)
#   BENCH_SERVERS_DIR=DIR    where both Dovecot instances keep their mail (default
#       /tmp/mailferry-testkit; e.g. /dev/shm/mf-bench for a tmpfs, so that the state of
#       a long-used disk file system does not weigh on one tool more than another)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
cd "$ROOT"

USERS=${BENCH_USERS:-4}
MESSAGES=${BENCH_MESSAGES:-5000}
FOLDERS=${BENCH_FOLDERS:-8}
BIG=${BENCH_BIG:-4}
SEED=${BENCH_SEED:-1}
TOOLS=${BENCH_TOOLS:-mailferry mbsync doveadm}
PARALLEL=${BENCH_PARALLEL:-4}
DELTA_NEW=${BENCH_DELTA_NEW:-100}
DELTA_FLAGS=${BENCH_DELTA_FLAGS:-100}
TIMEOUT=${BENCH_TIMEOUT:-3600}
SKIP_BUILD=${BENCH_SKIP_BUILD:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TESTSERVERS=${BENCH_TESTSERVERS:-$TARGET_DIR/release/mf-testservers}
MAILFERRY=${BENCH_MAILFERRY:-$TARGET_DIR/release/mailferry}
OUT_ROOT=${BENCH_OUT:-$BENCH_DIR/out}
SERVERS_DIR=${BENCH_SERVERS_DIR:-}
LIB=$BENCH_DIR/lib

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

for var in USERS MESSAGES FOLDERS BIG SEED PARALLEL DELTA_NEW DELTA_FLAGS TIMEOUT; do
  [[ ${!var} =~ ^[0-9]+$ ]] || die "BENCH_$var must be a non-negative integer, got '${!var}'"
done
((USERS >= 1 && PARALLEL >= 1)) || die "BENCH_USERS and BENCH_PARALLEL must be at least 1"
for tool in $TOOLS; do
  case $tool in
    mailferry | mbsync | doveadm) ;;
    *) die "BENCH_TOOLS: unknown tool '$tool' (known: mailferry mbsync doveadm)" ;;
  esac
done

# --- prerequisites ------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || die "run as root: Dovecot's test instances need it (see crates/mailferry-testkit)"
for cmd in doveadm python3 timeout setsid; do
  command -v "$cmd" >/dev/null || die "'$cmd' is not installed"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing: apt-get install time"

STAMP=$(date +%Y%m%d-%H%M%S)
RUN=$OUT_ROOT/$STAMP
LOGS=$RUN/logs
mkdir -p "$LOGS"
RESULTS=$RUN/results.tsv
WARNINGS=$RUN/warnings.tsv
: >"$RESULTS"
: >"$WARNINGS"
log "results and logs go to $RUN"

# --- cleanup: stop what we started --------------------------------------------
SERVERS_PID=
FIFO=
declare -A RUNNING=() # pid (= process group, via setsid) -> user index

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${!RUNNING[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  if [[ -n $SERVERS_PID ]]; then
    log "stopping mf-testservers (pid $SERVERS_PID)"
    exec 3>&- 2>/dev/null || true # end of its stdin: it stops both servers
    kill -TERM "$SERVERS_PID" 2>/dev/null || true
    wait "$SERVERS_PID" 2>/dev/null || true
  fi
  [[ -n $FIFO ]] && rm -f "$FIFO"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build --------------------------------------------------------------------
MAILFERRY_BUILD_NOTE=
if [[ $SKIP_BUILD != 1 ]]; then
  log "building: cargo build --release -p mailferry-cli -p mailferry-testkit"
  if ! cargo build --release -p mailferry-cli -p mailferry-testkit 2>"$LOGS/build.log"; then
    log "the combined build failed (see $LOGS/build.log); building mailferry-testkit alone"
    cargo build --release -p mailferry-testkit 2>>"$LOGS/build.log" ||
      die "cannot build mailferry-testkit; see $LOGS/build.log"
    MAILFERRY_BUILD_NOTE="not available (build failed, see $LOGS/build.log)"
  fi
fi
[[ -x $TESTSERVERS ]] || die "no mf-testservers binary at $TESTSERVERS"
# The tree the binaries were built from (recorded now: it may change during the run).
GIT_DESC="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes')"

# --- servers --------------------------------------------------------------------
JSON=$RUN/servers.json
FIFO=$RUN/servers.stdin
mkfifo "$FIFO"
target_tools=$(tr ' ' ',' <<<"$TOOLS")
log "starting mf-testservers: $USERS users x ($MESSAGES messages + $BIG big) in $FOLDERS folders"
MAILFERRY_DOVECOT_ROOT=$SERVERS_DIR "$TESTSERVERS" --users "$USERS" --messages "$MESSAGES" --folders "$FOLDERS" --big "$BIG" \
  --seed "$SEED" --target-tools "$target_tools" --out "$JSON" <"$FIFO" >"$LOGS/servers.log" 2>&1 &
SERVERS_PID=$!
# Our end of its stdin: when this script ends, however it ends, the servers stop.
exec 3>"$FIFO"

fill_start=$SECONDS
until [[ -s $JSON ]]; do
  kill -0 "$SERVERS_PID" 2>/dev/null || {
    cat "$LOGS/servers.log" >&2
    SERVERS_PID=
    die "mf-testservers exited before it was ready"
  }
  ((SECONDS - fill_start < 3600)) || die "mf-testservers not ready after an hour"
  sleep 1
done
log "servers ready after $((SECONDS - fill_start)) s"

# One "KEY=VALUE" per line from the JSON, read into shell variables.
while IFS='=' read -r key value; do
  printf -v "$key" '%s' "$value"
done < <(python3 - "$JSON" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for side, prefix in (("source", "SRC"), ("target", "DST")):
    s = d[side]
    print(f"{prefix}_PORT={s['imap_port']}")
    print(f"{prefix}_CONF={s['config']}")
    print(f"{prefix}_DIR={s['dir']}")
    print(f"{prefix}_MASTER={s.get('master_pid') or ''}")
print(f"TOTAL_MESSAGES={d['messages']}")
print(f"TOTAL_BYTES={d['bytes']}")
EOF
)
user_name() { echo "bench$1"; }
user_password() { echo "bench$1pw"; }
target_name() { echo "bench$1_$2"; }
target_password() { echo "bench$1_$2pw"; }

log "source 127.0.0.1:$SRC_PORT ($SRC_DIR), target 127.0.0.1:$DST_PORT ($DST_DIR)"
log "corpus: $TOTAL_MESSAGES messages, $((TOTAL_BYTES / 1000000)) MB"

# Same starting point for every tool: the whole source in the page cache, and
# Dovecot's one-time index work on the source done (see lib/warmup.py).
log "warming up: page cache and source indexes"
find "$SRC_DIR/home" -type f -print0 | xargs -0 -r cat >/dev/null
for ((i = 1; i <= USERS; i++)); do
  python3 "$LIB/warmup.py" 127.0.0.1 "$SRC_PORT" "$(user_name "$i")" "$(user_password "$i")" ||
    die "warm-up of $(user_name "$i") failed"
done

# servers_alive: dies if mf-testservers has exited (it does when a server died or
# its directory vanished, e.g. removed by another test run on this machine).
servers_alive() {
  kill -0 "$SERVERS_PID" 2>/dev/null && return 0
  tail -n 5 "$LOGS/servers.log" >&2
  SERVERS_PID=
  die "mf-testservers has exited; the servers are gone (see $LOGS/servers.log)"
}

srv_cpu() { # MASTER_PID -> CPU seconds so far, or empty
  [[ -n $1 ]] && python3 "$LIB/srvcpu.py" "$1" 2>/dev/null || true
}

# --- tools --------------------------------------------------------------------
# tool_command TOOL INDEX: sets CMD to the per-user command line.
tool_command() {
  local tool=$1 i=$2 # and $pass, from run_pass
  local user pw tuser tpw
  user=$(user_name "$i")
  pw=$(user_password "$i")
  tuser=$(target_name "$i" "$tool")
  tpw=$(target_password "$i" "$tool")
  case $tool in
    mailferry)
      mkdir -p "$RUN/mailferry/$user/state"
      CMD=(env "MAILFERRY_FROM_PASSWORD=$pw" "MAILFERRY_TO_PASSWORD=$tpw"
        "$MAILFERRY" migrate
        --from "imap://$user@127.0.0.1:$SRC_PORT"
        --to "imap://$tuser@127.0.0.1:$DST_PORT"
        --plaintext --state-dir "$RUN/mailferry/$user/state"
        --report "$RUN/mailferry/$user/report-$pass.json")
      # shellcheck disable=SC2206 # word splitting wanted: a list of flags
      [[ -n ${BENCH_MAILFERRY_ARGS:-} ]] && CMD+=($BENCH_MAILFERRY_ARGS)
      ;;
    mbsync)
      local dir=$RUN/mbsync/$user
      mkdir -p "$dir/state"
      cat >"$dir/mbsyncrc" <<EOF
# Generated by bench/run.sh
# Like Dovecot here (mail_fsync = never): no fsync of the sync state.
FSync no

IMAPAccount src
Host 127.0.0.1
Port $SRC_PORT
User $user
Pass $pw
SSLType None
AuthMechs LOGIN

IMAPAccount dst
Host 127.0.0.1
Port $DST_PORT
User $tuser
Pass $tpw
SSLType None
AuthMechs LOGIN

IMAPStore src
Account src

IMAPStore dst
Account dst

Channel bench
Far :src:
Near :dst:
Patterns *
Create Near
Expunge None
Sync Pull
SyncState $dir/state/
CopyArrivalDate yes
EOF
      CMD=(mbsync -c "$dir/mbsyncrc" -a)
      ;;
    doveadm)
      # dsync with the source as an imapc: storage, writing straight into the
      # target user's maildir (the target instance's own mail_location).
      CMD=(doveadm -c "$DST_CONF"
        -o imapc_host=127.0.0.1 -o "imapc_port=$SRC_PORT"
        -o "imapc_user=$user" -o "imapc_password=$pw"
        -o "imapc_features=rfc822.size fetch-headers"
        -o mail_prefetch_count=20
        backup -R -u "$tuser" imapc:)
      ;;
  esac
}

# tool_unavailable TOOL: prints why TOOL cannot run at all, or nothing.
tool_unavailable() {
  case $1 in
    mailferry)
      if [[ -n $MAILFERRY_BUILD_NOTE ]]; then
        echo "$MAILFERRY_BUILD_NOTE"
      elif [[ ! -x $MAILFERRY ]]; then
        echo "not available (no binary at $MAILFERRY)"
      fi
      ;;
    mbsync) command -v mbsync >/dev/null || echo "not available (mbsync is not installed: apt-get install isync)" ;;
    doveadm) ;;
  esac
}

now() { date +%s.%N; }

# run_pass TOOL PASS MESSAGES BYTES: runs TOOL for every user (at most PARALLEL at
# once), appends one row to $RESULTS; returns 1 if any process failed.
run_pass() {
  local tool=$1 pass=$2 messages=$3 bytes=$4
  local i pid rc finished
  servers_alive
  log "$tool pass $pass: $USERS users, $PARALLEL at once"
  sync
  local src0 dst0 t0 t1 src1 dst1
  src0=$(srv_cpu "$SRC_MASTER")
  dst0=$(srv_cpu "$DST_MASTER")
  t0=$(now)
  for ((i = 1; i <= USERS; i++)); do
    while ((${#RUNNING[@]} >= PARALLEL)); do
      reap_one "$tool" "$pass"
    done
    tool_command "$tool" "$i"
    local base=$LOGS/$tool-$pass-$(user_name "$i")
    echo "${CMD[*]}" | sed -E 's/(password=|PASSWORD=)[^ ]*/\1***/g' >"$base.cmd"
    setsid /usr/bin/time -f "%e %U %S %M" -o "$base.time" \
      timeout --foreground -k 30 "$TIMEOUT" "${CMD[@]}" >"$base.log" 2>&1 </dev/null &
    RUNNING[$!]=$i
  done
  while ((${#RUNNING[@]} > 0)); do
    reap_one "$tool" "$pass"
  done
  t1=$(now)
  src1=$(srv_cpu "$SRC_MASTER")
  dst1=$(srv_cpu "$DST_MASTER")

  # Sum the per-user measurements.
  python3 - "$LOGS" "$tool" "$pass" "$USERS" "$t0" "$t1" "$messages" "$bytes" \
    "$src0" "$src1" "$dst0" "$dst1" >>"$RESULTS" <<'EOF'
import sys
logs, tool, pass_, users = sys.argv[1:5]
t0, t1 = float(sys.argv[5]), float(sys.argv[6])
messages, nbytes = sys.argv[7:9]
src0, src1, dst0, dst1 = sys.argv[9:13]
cpu, rss, failed = 0.0, 0, None
for i in range(1, int(users) + 1):
    base = f"{logs}/{tool}-{pass_}-bench{i}"
    rc = int(open(base + ".rc").read().strip() or 1)
    if rc != 0 and failed is None:
        failed = rc
    try:
        last = open(base + ".time").read().strip().splitlines()[-1].split()
        cpu += float(last[1]) + float(last[2])
        rss = max(rss, int(last[3]))
    except (OSError, IndexError, ValueError):
        pass
def diff(a, b):
    try:
        return f"{float(b) - float(a):.2f}"
    except ValueError:
        return ""
if failed is not None:
    status = "unavailable" if tool == "mailferry" else "failed"
    word = "not available" if tool == "mailferry" else "FAILED"
    note = f"{word} (exit code {failed}{', timeout' if failed == 124 else ''}; logs: {logs}/{tool}-{pass_}-*.log)"
else:
    status, note = "ok", ""
print("\t".join([tool, pass_, status, f"{t1 - t0:.3f}", messages, nbytes, f"{cpu:.2f}",
                 str(rss), diff(src0, src1), diff(dst0, dst1), note]))
EOF
  local row
  row=$(tail -n 1 "$RESULTS")
  if [[ $(cut -f3 <<<"$row") != ok ]]; then
    log "$tool pass $pass: $(cut -f11 <<<"$row")"
    for ((i = 1; i <= USERS; i++)); do
      local base=$LOGS/$tool-$pass-$(user_name "$i")
      if [[ $(cat "$base.rc") != 0 ]]; then
        log "last lines of $base.log:"
        tail -n 5 "$base.log" | sed 's/^/    /' >&2
        break
      fi
    done
    return 1
  fi
  log "$tool pass $pass: $(cut -f4 <<<"$row") s"
}

# reap_one TOOL PASS: waits for one running per-user process, records its exit code.
reap_one() {
  local tool=$1 pass=$2 finished= rc=0
  wait -n -p finished "${!RUNNING[@]}" || rc=$?
  [[ -n $finished ]] || return 0
  local i=${RUNNING[$finished]}
  unset "RUNNING[$finished]"
  echo "$rc" >"$LOGS/$tool-$pass-$(user_name "$i").rc"
}

# verify TOOL PASS: compares every target user of TOOL with its source user.
verify() {
  local tool=$1 pass=$2 i out rc
  for ((i = 1; i <= USERS; i++)); do
    rc=0
    out=$(python3 "$LIB/verify.py" "$SRC_CONF" "$(user_name "$i")" \
      "$DST_CONF" "$(target_name "$i" "$tool")") || rc=$?
    if ((rc != 0)); then
      while IFS= read -r line; do
        [[ -n $line ]] || continue
        log "WARNING: $tool pass $pass: $line"
        printf '%s\t%s\t%s\n' "$tool" "$pass" "$line" >>"$WARNINGS"
      done <<<"$out"
    fi
  done
}

skip_row() { # TOOL PASS NOTE
  printf '%s\t%s\tskipped\t\t\t\t\t\t\t\t%s\n' "$1" "$2" "$3" >>"$RESULTS"
}

declare -A FIRST_OK=()
for tool in $TOOLS; do
  reason=$(tool_unavailable "$tool")
  if [[ -n $reason ]]; then
    log "$tool: $reason"
    printf '%s\ta\tunavailable\t\t\t\t\t\t\t\t%s\n' "$tool" "$reason" >>"$RESULTS"
    continue
  fi
  if run_pass "$tool" a "$TOTAL_MESSAGES" "$TOTAL_BYTES"; then
    FIRST_OK[$tool]=1
    verify "$tool" a
    run_pass "$tool" b 0 0 || true
  else
    skip_row "$tool" b "skipped (first pass failed)"
  fi
done

# --- delta, then pass c for every tool -----------------------------------------
servers_alive
log "delta: $DELTA_NEW new messages and $DELTA_FLAGS newly flagged per source user"
DELTA_MESSAGES=0
DELTA_BYTES=0
delta_pids=()
for ((i = 1; i <= USERS; i++)); do
  python3 "$LIB/delta.py" 127.0.0.1 "$SRC_PORT" "$(user_name "$i")" "$(user_password "$i")" \
    "$DELTA_NEW" "$DELTA_FLAGS" "$SEED" >"$LOGS/delta-$(user_name "$i").json" 2>&1 &
  delta_pids+=($!)
done
for pid in "${delta_pids[@]}"; do
  wait "$pid" || die "applying the delta failed; see $LOGS/delta-*.json"
done
read -r DELTA_MESSAGES DELTA_BYTES < <(python3 - "$LOGS" "$USERS" <<'EOF'
import json, sys
n = b = 0
for i in range(1, int(sys.argv[2]) + 1):
    d = json.load(open(f"{sys.argv[1]}/delta-bench{i}.json"))
    n += d["appended"]
    b += d["bytes"]
print(n, b)
EOF
)
find "$SRC_DIR/home" -type f -newer "$JSON" -print0 | xargs -0 -r cat >/dev/null

for tool in $TOOLS; do
  if [[ -z ${FIRST_OK[$tool]:-} ]]; then
    grep -q "^$tool	a	unavailable" "$RESULTS" || skip_row "$tool" c "skipped (first pass failed)"
    continue
  fi
  if run_pass "$tool" c "$DELTA_MESSAGES" "$DELTA_BYTES"; then
    verify "$tool" c
  fi
done

# --- report ---------------------------------------------------------------------
mailferry_version=
if [[ -n $MAILFERRY_BUILD_NOTE ]]; then
  mailferry_version="n/a (build failed)"
elif [[ -x $MAILFERRY ]]; then
  mailferry_version=$("$MAILFERRY" --version 2>/dev/null | head -n 1 || true)
fi
# KEY=VALUE arguments, so no value needs quoting for Python.
python3 - "$RUN/meta.json" \
  "date=$(date -u +'%Y-%m-%d %H:%M UTC')" \
  "command=BENCH_USERS=$USERS BENCH_MESSAGES=$MESSAGES BENCH_FOLDERS=$FOLDERS BENCH_BIG=$BIG BENCH_SEED=$SEED${SERVERS_DIR:+ BENCH_SERVERS_DIR=$SERVERS_DIR} bench/run.sh" \
  "corpus=$USERS users, $TOTAL_MESSAGES messages, $((TOTAL_BYTES / 1000000)) MB in total ($MESSAGES + $BIG of 5-25 MB per user in $FOLDERS folders); delta per user: $DELTA_NEW new messages and $DELTA_FLAGS newly flagged ($DELTA_MESSAGES messages, $((DELTA_BYTES / 1000000)) MB in total)" \
  "machine=$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem:/{print $2}') GB RAM, $(uname -sr)" \
  "git=$GIT_DESC (when built)" \
  "mailferry=${mailferry_version:-n/a}" \
  "mbsync=$(mbsync --version 2>/dev/null | head -n 1 || echo n/a)" \
  "dovecot=$(dovecot --version 2>/dev/null || echo n/a)" \
  "parallel=one process per user, at most $PARALLEL at once" \
  "tools=$TOOLS" <<'EOF'
import json, sys
meta = dict(arg.split("=", 1) for arg in sys.argv[2:])
json.dump(meta, open(sys.argv[1], "w"), indent=2)
EOF
echo
python3 "$LIB/report.py" "$RESULTS" "$WARNINGS" "$RUN/meta.json" "$RUN/results.md" | tee "$RUN/table.txt"
cp "$RUN/results.md" "$OUT_ROOT/latest.md"
echo
log "markdown: $OUT_ROOT/latest.md (and $RUN/results.md); logs: $LOGS"
