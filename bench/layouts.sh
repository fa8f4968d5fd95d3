#!/usr/bin/env bash
# Kannel, `cloudsms serve` in one process and in its default layout (two processes on two cores),
# interleaved in one run through the shared harness (../shared/anchors/bench.py):
#   bench/layouts.sh N REPS OUT        e.g. bench/layouts.sh 20000 3 /tmp/layouts
# Prints the figures with every cloudsms process's CPU counted (bench/harness_cpu.py).
set -u
N=$1; REPS=$2; OUT=$3
HERE=$(cd "$(dirname "$0")" && pwd)
CS=$(realpath "$HERE/../.venv/bin/cloudsms")
PY=${ANCHORS_PY:-$HOME/.cache/anchors-venv/bin/python}
[ -x "$PY" ] || { python3 -m venv "$(dirname "$(dirname "$PY")")" && "$(dirname "$PY")/pip" install -q uvloop; } || exit 2
export ANCHORS_PY=$PY
BENCH="$HERE/../../shared/anchors/bench.py"
mkdir -p "$OUT"
for r in $(seq "$REPS"); do
  "$PY" "$BENCH" --gateway kannel --kannel-window 100 --kannel-dlr-mask 3 --n "$N" --c 50 --reps 1 \
      --quiet-wait 0 --out "$OUT/kannel-r$r" >"$OUT/kannel-r$r.log" 2>&1 || echo "Kannel rep $r failed"
  CLOUDSMS_PROCESSES=1 "$PY" "$BENCH" --gateway cloudsms --cloudsms-bin "$CS" --n "$N" --c 50 \
      --reps 1 --quiet-wait 0 --out "$OUT/one-r$r" >"$OUT/one-r$r.log" 2>&1 || echo "one rep $r failed"
  "$PY" "$BENCH" --gateway cloudsms --cloudsms-bin "$CS" --n "$N" --c 50 --reps 1 --quiet-wait 0 \
      --out "$OUT/cloudsms-r$r" >"$OUT/cloudsms-r$r.log" 2>&1 || echo "default rep $r failed"
done
"$HERE/../.venv/bin/python" "$HERE/harness_cpu.py" "$OUT"
