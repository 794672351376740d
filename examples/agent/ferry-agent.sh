#!/bin/sh
# ferry-agent: answers one agent check (ferry's agent_check, HAProxy's agent-check) for the
# CCcam server on this machine, from its load average and its number of client sessions.
#
# It reads nothing and writes one line, then exits; socat or systemd socket activation hands it
# the connection on stdin/stdout (see README.md). Every answer names a health word and an admin
# word, because only the agent can undo what the agent did: a server the agent drained stays
# drained until the agent itself says "ready".
#
#   maint  # <reason>        the file $MAINT_FILE exists (its first line is the reason)
#   down   # ...             nothing listens on $SERVICE_PORT
#   up drain # ...           load or sessions at or above the high threshold: keep the
#                            sessions, take no new ones
#   up ready N% # ...        otherwise; N falls from 100 at the low threshold to 10 near the
#                            high one, whichever of load and sessions is the worse
#
# Percentages are of the weight configured in ferry, so configure weights like 100.
set -u

SERVICE_PORT=${SERVICE_PORT:-12000}     # the CCcam port on this machine
LOAD_LOW=${LOAD_LOW:-0.7}               # 1-minute load per CPU: full weight at or below
LOAD_HIGH=${LOAD_HIGH:-2.0}             # ... drain at or above
CONN_LOW=${CONN_LOW:-400}               # established client sessions: full weight at or below
CONN_HIGH=${CONN_HIGH:-600}             # ... drain at or above
MAINT_FILE=${MAINT_FILE:-/etc/ferry-agent/maint}
LOADAVG=${LOADAVG:-/proc/loadavg}       # overridable for tests
SS=${SS:-ss}                            # iproute2's ss; overridable for tests

if [ -e "$MAINT_FILE" ]; then
    reason=$(head -n 1 "$MAINT_FILE" 2>/dev/null | tr -d '\r')
    printf 'maint # %s\n' "${reason:-maintenance}"
    exit 0
fi

listening=$($SS -Hltn "sport = :$SERVICE_PORT" 2>/dev/null | wc -l)
if [ "$listening" -eq 0 ]; then
    printf 'down # nothing listens on port %s\n' "$SERVICE_PORT"
    exit 0
fi

sessions=$($SS -Htn state established "( sport = :$SERVICE_PORT )" 2>/dev/null | wc -l)
read -r load1 _ < "$LOADAVG"
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

awk -v load="$load1" -v cpus="$cpus" -v n="$sessions" \
    -v ll="$LOAD_LOW" -v lh="$LOAD_HIGH" -v cl="$CONN_LOW" -v ch="$CONN_HIGH" '
    # 100 at or below lo, falling linearly to 10 just below hi, 0 at or above hi.
    function share(v, lo, hi) {
        if (v <= lo) return 100
        if (v >= hi) return 0
        return int(100 - 90 * (v - lo) / (hi - lo))
    }
    BEGIN {
        if (cpus < 1) cpus = 1
        a = share(load / cpus, ll, lh)
        b = share(n, cl, ch)
        w = a < b ? a : b
        if (w == 0) printf "up drain # load %s on %d cpus, %d sessions\n", load, cpus, n
        else printf "up ready %d%% # load %s on %d cpus, %d sessions\n", w, load, cpus, n
    }'
