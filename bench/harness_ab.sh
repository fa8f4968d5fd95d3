#!/usr/bin/env bash
# Two cloudsms builds through the shared side-by-side harness (../shared/anchors/bench.py),
# interleaved, so a change is compared with what it changes in the same machine conditions
# (machine speed here drifts 2-3x between sessions; see bench/README.md).
#   bench/harness_ab.sh N REPS OUT BIN_A BIN_B [extra bench.py options]
# e.g. with the base checked out in a worktree:
#   git worktree add /tmp/base <commit> && (cd /tmp/base && python3 -m venv .venv && .venv/bin/pip install -q -e .)
#   bench/harness_ab.sh 20000 2 /tmp/ab /tmp/base/.venv/bin/cloudsms .venv/bin/cloudsms
# --quiet-wait 0: do not wait for an idle machine (both sides see the same load).
# KANNEL=1 runs Kannel too, first in each repetition (as ../shared/anchors/vs-kannel.sh does), so
# both builds get a same-run ratio: KANNEL=1 bench/harness_ab.sh 20000 2 /tmp/ab BIN_A BIN_B
set -u
N=$1; REPS=$2; OUT=$3; A=$(realpath "$4"); B=$(realpath "$5"); shift 5
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${ANCHORS_PY:-$HOME/.cache/anchors-venv/bin/python}
[ -x "$PY" ] || { python3 -m venv "$(dirname "$(dirname "$PY")")" && "$(dirname "$PY")/pip" install -q uvloop; } || exit 2
export ANCHORS_PY=$PY
mkdir -p "$OUT"
SIDES="A B"; [ "${KANNEL:-0}" = 1 ] && SIDES="K A B"
for r in $(seq "$REPS"); do
  for side in $SIDES; do
    if [ "$side" = K ]; then
      "$PY" "$HERE/../../shared/anchors/bench.py" --gateway kannel --kannel-window 100 \
          --kannel-dlr-mask 3 --n "$N" --c 50 --reps 1 --quiet-wait 0 --out "$OUT/$side-r$r" \
          >"$OUT/$side-r$r.log" 2>&1 || { echo "Kannel rep $r failed: $OUT/$side-r$r.log"; continue; }
    fi
    bin=$A; [ "$side" = B ] && bin=$B
    [ "$side" = K ] || "$PY" "$HERE/../../shared/anchors/bench.py" --gateway cloudsms --cloudsms-bin "$bin" --n "$N" \
        --c 50 --reps 1 --quiet-wait 0 --out "$OUT/$side-r$r" "$@" >"$OUT/$side-r$r.log" 2>&1 \
      || { echo "$side rep $r failed: $OUT/$side-r$r.log"; continue; }
    "$PY" - "$OUT/$side-r$r/summary.json" "$side" "$r" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e2e, cores = d['e2e_msgs_per_s'], d['cpu_gateway_cores']
print('%s r%s  accepted/s %.0f  p99 %.0f ms  end to end %.0f msg/s  %.2f cores  %.0f µs/msg  machine busy %.2f'
      % (sys.argv[2], sys.argv[3], d['http_accepted_per_s'], d['http_p99_ms'], e2e, cores,
         1e6 * cores / e2e, d['machine_busy_cores']))
PY
  done
done
