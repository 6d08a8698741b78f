#!/usr/bin/env bash
# Start a real single-node SLURM with accounting (so `sacct` works) on this machine, for tests.
#
#   sudo slurm/start.sh        # installs the Debian packages if missing, then starts
#   slurm/stop.sh              # stops every daemon this script started, by PID
#
# Runs as root on Debian bookworm (slurm-wlm 22.05). Daemons: munged, mariadbd, slurmdbd,
# slurmctld, slurmd, all on localhost; state and logs under $CELLBENCH_SLURM_STATE
# (default /tmp/cellbench-slurm). The node advertises this machine's cores and memory, plus
# CELLBENCH_SLURM_GPUS fake GPUs (default 2: device files made with mknod) so that gres
# requests can be scheduled; nothing runs on them.
#
# Starts clean, and is idempotent: a cluster that already answers is reused with every job it
# still holds cancelled; otherwise any slurmctld/slurmd left from an earlier run is stopped and
# slurmctld starts with -c, so no job of an interrupted run is recovered from its saved state
# (-c keeps the job id sequence, so accounting never sees a job id twice).
set -euo pipefail

STATE=${CELLBENCH_SLURM_STATE:-/tmp/cellbench-slurm}
GPUS=${CELLBENCH_SLURM_GPUS:-2}
CLUSTER=cellbench
HOST=$(hostname -s)
CONF_DIR=/etc/slurm

log() { echo "[slurm/start] $*"; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq 1 $((seconds * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "timed out after ${seconds}s waiting for ${what}"
  return 1
}

if [ "$(id -u)" != 0 ]; then
  echo "slurm/start.sh must run as root" >&2
  exit 1
fi

node_up() { timeout 10 sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }
queue_empty() { local jobs; jobs=$(timeout 10 squeue -h -o %i 2>/dev/null) && [ -z "$jobs" ]; }

cancel_all_jobs() {  # cancel every job the controller holds; true once its queue is empty
  local jobs
  jobs=$(timeout 10 squeue -h -o %F 2>/dev/null | sort -u | tr '\n' ' ') || return 1
  if [ -n "${jobs// /}" ]; then
    log "cancelling job(s) left from an earlier run: $jobs"
    # shellcheck disable=SC2086  # one argument per job id
    timeout 20 scancel --full $jobs || true
  fi
  wait_for 30 "the queue to empty" queue_empty
}

pids_named() {  # pids_named NAME: the processes called NAME (like pgrep -x, without procps)
  local dir
  for dir in /proc/[0-9]*; do
    [ "$(cat "$dir/comm" 2>/dev/null)" = "$1" ] && echo "${dir#/proc/}"
  done
  return 0
}

stop_daemon() {  # stop_daemon NAME: every process of that name (its pid file may be stale)
  local name=$1 pid pids
  pids=$(pids_named "$name")
  for pid in $pids; do kill "$pid" 2>/dev/null && log "stopped $name ($pid) of an earlier run"; done
  for pid in $pids; do
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$STATE/$name.pid"
}

accounting_ok() { timeout 20 sacct -n -X -S now >/dev/null 2>&1; }

if node_up; then
  if ! accounting_ok; then  # e.g. mariadbd died under a running slurmdbd
    log "the running SLURM has no working accounting: restarting it"
  elif cancel_all_jobs; then
    log "SLURM already running (queue empty, accounting answers)"
    exit 0
  else
    log "the running SLURM would not empty its queue: restarting slurmctld and slurmd"
  fi
fi
# Whatever is left of an earlier run goes, so that the start below is clean.
stop_daemon slurmd
stop_daemon slurmctld
stop_daemon slurmscriptd

# --- packages ------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null \
  || ! command -v mariadbd >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurm-wlm, slurmdbd, munge, mariadb-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurm-wlm slurmdbd munge mariadb-server mariadb-client >/dev/null
fi

mkdir -p "$STATE"/{ctld,spool,log} /run/munge /run/mysqld "$CONF_DIR"
chown munge:munge /run/munge
chown mysql:mysql /run/mysqld

# --- munge ---------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  wait_for 10 munged munge -n
fi
cp /run/munge/munged.pid "$STATE/munged.pid" 2>/dev/null || true

# --- mariadb -------------------------------------------------------------------------------
if [ ! -d /var/lib/mysql/mysql ]; then
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
fi
if ! mariadb -e 'select 1' >/dev/null 2>&1; then
  # setsid: a session of its own, so that the end of the caller's process group spares it
  setsid runuser -u mysql -- /usr/sbin/mariadbd --datadir=/var/lib/mysql \
    --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mariadbd.pid \
    --skip-networking=0 --bind-address=127.0.0.1 >"$STATE/log/mariadbd.log" 2>&1 &
  wait_for 30 mariadb mariadb -e 'select 1'
fi
cp /run/mysqld/mariadbd.pid "$STATE/mariadbd.pid" 2>/dev/null || true
mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

# --- configuration -------------------------------------------------------------------------
CPUS=$(nproc)
MEM_MB=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))
GRES_LINE=""
if [ "$GPUS" -gt 0 ]; then
  : >"$CONF_DIR/gres.conf"
  for i in $(seq 0 $((GPUS - 1))); do
    [ -e "$STATE/fake-gpu$i" ] || mknod "$STATE/fake-gpu$i" c 1 3  # a character device like /dev/null
    echo "NodeName=$HOST Name=gpu File=$STATE/fake-gpu$i" >>"$CONF_DIR/gres.conf"
  done
  GRES_LINE="Gres=gpu:$GPUS"
fi

cat >"$CONF_DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/slurmdbd.pid
EOF
chmod 600 "$CONF_DIR/slurmdbd.conf"

cat >"$CONF_DIR/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_min_interval=100000
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
GresTypes=gpu
AccountingStorageTRES=gres/gpu
MaxArraySize=1001
MinJobAge=300
KillWait=5
OverTimeLimit=0
ReturnToService=2
# 0: the node is never set DOWN for a late slurmd answer (a paused test VM would lose its jobs)
SlurmdTimeout=0
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB $GRES_LINE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

# --- daemons -------------------------------------------------------------------------------
if ! timeout 10 sacctmgr -n list cluster >/dev/null 2>&1; then
  stop_daemon slurmdbd
  /usr/sbin/slurmdbd
  wait_for 30 slurmdbd timeout 5 sacctmgr -n list cluster
fi
sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
/usr/sbin/slurmctld -c  # -c: recover no job (nor node state) from $STATE/ctld
wait_for 30 slurmctld timeout 5 scontrol ping
/usr/sbin/slurmd
wait_for 30 "node $HOST" node_up
# Jobs the database still lists as pending or running belonged to the old controller: close them.
timeout 20 sacctmgr -i list runawayjobs >/dev/null 2>&1 || true
queue_empty || { log "slurmctld -c still lists jobs"; exit 1; }
wait_for 30 "accounting (sacct)" accounting_ok
log "SLURM up: node $HOST, $CPUS CPUs, ${MEM_MB} MB, $GPUS fake GPU(s); state in $STATE"
