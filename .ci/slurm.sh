#!/usr/bin/env bash
# Start or stop a one-node Slurm cluster on this machine for the cluster tests.
#
# Usage: .ci/slurm.sh start | stop | status
#
# Runs as root without systemd (Debian 12, slurm-wlm 22.05): munge for
# authentication, slurmctld and slurmd, both listening on 127.0.0.1 only.
# There is no accounting daemon (slurmdbd cannot be bound to one address), so
# sacct does not work here: the project's Slurm runner follows its jobs with
# squeue and the result files that submitit writes.
set -euo pipefail

NODE=$(hostname -s)
CPUS=$(nproc)
# Leave some memory to the test process itself.
MEMORY_MB=$(( $(awk '/^MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
PACKAGES=(slurm-wlm munge)
LOG_DIR=/var/log/slurm

log() { echo "slurm.sh: $*" >&2; }

wait_for() {
    # wait_for SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds.
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out waiting for: $*"
            return 1
        fi
        sleep 0.2
    done
}

running() { pgrep -x "$1" >/dev/null; }

install_packages() {
    if dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
        return
    fi
    log "installing ${PACKAGES[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${PACKAGES[@]}" >/dev/null
}

start_munge() {
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        /usr/sbin/mungekey --create --force
        chown munge:munge /etc/munge/munge.key
    fi
    running munged || runuser -u munge -- /usr/sbin/munged
    wait_for 10 munge -n
}

write_config() {
    install -d -o slurm -g slurm /var/spool/slurmctld "$LOG_DIR"
    install -d /var/spool/slurmd /etc/slurm
    # DefMemPerCPU: without it a job that requests no memory gets the whole
    # node, and jobs run one at a time. KillWait: seconds between SIGTERM and
    # SIGKILL when a job is cancelled or requeued (default 30).
    cat >/etc/slurm/slurm.conf <<EOF
ClusterName=bench-ci
SlurmctldHost=$NODE(127.0.0.1)
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmUser=slurm
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
KillWait=5
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    install_packages
    start_munge
    write_config
    # -c: start without the jobs of an earlier run, which a machine that was
    # stopped abruptly may still list as running.
    running slurmctld || /usr/sbin/slurmctld -c
    running slurmd || /usr/sbin/slurmd -c
    if ! wait_for 30 bash -c "sinfo -h -o %T | grep -q '^idle'"; then
        log "the node did not become idle; last lines of the logs:"
        tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
        return 1
    fi
    sinfo
}

stop_daemon() {
    local pid_file=/run/$1.pid
    if [[ -f $pid_file ]]; then
        kill "$(cat "$pid_file")" 2>/dev/null || true
    fi
}

stop() {
    # Cancel jobs first, so each slurmstepd reports to slurmd and exits;
    # a step left behind keeps a ghost job on the node after a restart.
    if command -v squeue >/dev/null && squeue -h >/dev/null 2>&1; then
        scancel --full --user=root 2>/dev/null || true
        wait_for 30 bash -c '[[ -z "$(squeue -h)" ]]' || true
    fi
    for daemon in slurmd slurmctld; do
        stop_daemon "$daemon"
    done
    wait_for 10 bash -c '! pgrep -x "slurmd|slurmctld"' || true
    if pgrep -x slurmstepd >/dev/null; then
        log "a slurmstepd is still running; the next start clears its job (-c)"
    fi
    if [[ -f /run/munge/munged.pid ]]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    fi
}

status() {
    sinfo && squeue
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *)
        echo "usage: $0 start | stop | status" >&2
        exit 2
        ;;
esac
