#!/usr/bin/env bash
# Stop the daemons that slurm/start.sh started, by the PIDs it recorded. Jobs still queued are
# cancelled first, so that accounting records them as such (the next start.sh recovers none).
set -uo pipefail
STATE=${CELLBENCH_SLURM_STATE:-/tmp/cellbench-slurm}
jobs=$(timeout 10 squeue -h -o %F 2>/dev/null | sort -u | tr '\n' ' ')
if [ -n "${jobs// /}" ]; then
  # shellcheck disable=SC2086  # one argument per job id
  timeout 20 scancel --full $jobs && echo "[slurm/stop] cancelled job(s) $jobs"
fi
for name in slurmd slurmctld slurmdbd mariadbd munged; do
  pidfile="$STATE/$name.pid"
  [ "$name" = munged ] && pidfile=/run/munge/munged.pid
  [ "$name" = mariadbd ] && pidfile=/run/mysqld/mariadbd.pid
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    # a pid file left from before a reboot may name someone else's process now
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || { rm -f "$pidfile"; continue; }
    kill "$pid" 2>/dev/null && echo "[slurm/stop] stopped $name ($pid)"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" && echo "[slurm/stop] killed $name ($pid)"
    rm -f "$pidfile"
  fi
done
exit 0
