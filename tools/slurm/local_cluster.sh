#!/usr/bin/env bash
# A single-node Slurm cluster on this machine (Debian/Ubuntu, as root): the way to try the cluster path of
# tools/sweep.py (--executor slurm) on a workstation, and what CI runs the Slurm tests on.
#
#   bash tools/slurm/local_cluster.sh [start]   install slurm-wlm + munge (apt-get), write a one-node config for this
#                                               machine (CPUs and memory detected), start munged, slurmctld, slurmd
#   bash tools/slurm/local_cluster.sh status    what runs, and sinfo
#   bash tools/slurm/local_cluster.sh stop      stop the daemons that start started (by their pid files)
#
# Idempotent: starting a running cluster changes nothing. An /etc/slurm/slurm.conf that this script did not
# write is never touched (the script stops and says so). State, logs and pid files: $SLURM_LOCAL_DIR
# (default /var/lib/slurm-local). Partition: $SLURM_PARTITION (default "local", the default partition).
set -euo pipefail

CMD="${1:-start}"
DIR="${SLURM_LOCAL_DIR:-/var/lib/slurm-local}"
PARTITION="${SLURM_PARTITION:-local}"
CONF=/etc/slurm/slurm.conf
MARK="# written by tools/slurm/local_cluster.sh"
HOST="$(hostname -s)"

die() { echo "error: $*" >&2; exit 1; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
     && command -v sbatch >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || die "apt-get not found: install slurm-wlm and munge with your package manager"
  echo "installing slurm-wlm and munge (apt-get) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null
  } || die "apt-get could not install slurm-wlm and munge (see the apt-get output above)"
}

write_config() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script; not touching it (move it away to use the local cluster)"
  fi
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" /etc/slurm
  # this machine as slurmd sees it (CPUs, sockets, cores, threads, memory); memory lowered 5% so it always fits
  local node mem
  node="$(slurmd -C 2>/dev/null | head -n 1)"
  [ -n "$node" ] || die "slurmd -C printed nothing: cannot detect this machine's CPUs and memory"
  mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<< "$node")"
  node="$(sed "s/RealMemory=[0-9]*/RealMemory=$(( mem * 95 / 100 ))/; s/NodeName=[^ ]*/NodeName=$HOST/" <<< "$node")"
  local tmp="$CONF.tmp.$$"
  cat > "$tmp" <<EOF
$MARK (single node; 'bash tools/slurm/local_cluster.sh stop' stops it)
ClusterName=local
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5
MinJobAge=600
KillWait=10
SlurmdTimeout=60
$node State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then rm -f "$tmp"; else mv "$tmp" "$CONF"; fi
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
  [ -f /etc/munge/munge.key ] || { command -v mungekey >/dev/null && mungekey -c -k /etc/munge/munge.key; } \
    || die "no /etc/munge/munge.key (reinstall the munge package)"
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  mkdir -p /run/munge && chown munge:munge /run/munge
  munged --force 2>/dev/null || die "munged did not start"
  cp /run/munge/munged.pid "$DIR/munged.pid" 2>/dev/null || true
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.5; done
  die "munge does not work (munge -n | unmunge fails)"
}

start_daemon() {  # start_daemon NAME PIDFILE
  local name=$1 pid=$2
  if alive "$pid"; then return; fi
  "$name" || die "$name did not start (see $DIR/log/$name.log)"
  for _ in $(seq 20); do alive "$pid" && return; sleep 0.5; done
  die "$name exited at start: $(tail -n 3 "$DIR/log/$name.log" 2>/dev/null | tr '\n' ' ')"
}

wait_idle() {
  local state=""
  for _ in $(seq 60); do
    state="$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n 1 || true)"
    case "$state" in
      idle*|mixed*|allocated*|completing*) echo "slurm: node $HOST $state, partition $PARTITION"; return ;;
      down*|drain*|drained*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
  done
  die "the node did not become idle (state '${state:-none}'): $(tail -n 3 "$DIR/log/slurmd.log" 2>/dev/null | tr '\n' ' ')"
}

case "$CMD" in
  start)
    [ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts system daemons)"
    install_packages
    mkdir -p "$DIR"
    write_config
    start_munge
    start_daemon slurmctld "$DIR/slurmctld.pid"
    start_daemon slurmd "$DIR/slurmd.pid"
    wait_idle
    ;;
  stop)
    for name in slurmd slurmctld munged; do
      pid="$DIR/$name.pid"
      if alive "$pid"; then
        p="$(cat "$pid")"
        kill "$p" && echo "stopped $name (pid $p)"
        for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
      fi
      [ "$name" = munged ] && rm -f "$pid"
    done
    ;;
  status)
    for name in munged slurmctld slurmd; do
      if alive "$DIR/$name.pid"; then echo "$name: running (pid $(cat "$DIR/$name.pid"))"; else echo "$name: not started here"; fi
    done
    sinfo 2>/dev/null || true
    ;;
  *) echo "usage: $0 [start | stop | status]" >&2; exit 2 ;;
esac
