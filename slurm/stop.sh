#!/usr/bin/env bash
# Stop the daemons that slurm/start.sh started, by the PIDs it recorded.
set -uo pipefail
STATE=${CELLBENCH_SLURM_STATE:-/tmp/cellbench-slurm}
for name in slurmd slurmctld slurmdbd mariadbd munged; do
  pidfile="$STATE/$name.pid"
  [ "$name" = munged ] && pidfile=/run/munge/munged.pid
  [ "$name" = mariadbd ] && pidfile=/run/mysqld/mariadbd.pid
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null && echo "[slurm/stop] stopped $name ($pid)"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    rm -f "$pidfile"
  fi
done
