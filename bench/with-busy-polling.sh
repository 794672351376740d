#!/bin/sh
# Stands in for the ferry binary under compare.py, which writes ferry's configuration itself:
# runs $FERRY_BENCH_BIN on a copy of that file with `busy_polling $FERRY_BENCH_BUSY_POLLING;`
# (default 50us) in front, so the yardstick measures the directive without knowing of it.
# compare.py calls it as `with-busy-polling.sh -c FILE`; exec keeps the pid it measures.
set -eu
[ "$1" = "-c" ] || { echo "usage: $0 -c FILE (FERRY_BENCH_BIN names ferry)" >&2; exit 2; }
conf="$2.busy-polling.conf"
{ echo "busy_polling ${FERRY_BENCH_BUSY_POLLING:-50us};"; cat "$2"; } > "$conf"
exec "${FERRY_BENCH_BIN:?set FERRY_BENCH_BIN to the ferry binary}" -c "$conf"
