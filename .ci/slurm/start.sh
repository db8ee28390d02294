#!/bin/bash
# A copy of ../shared/slurm's script (known to work on these machines), kept in the repo so
# that a clone anywhere can start CI's cluster.
# Single-node Slurm (Debian 12, slurm-wlm 22.05.8) started without systemd.
set -euo pipefail
B=${SLURM_BASE:-${TMPDIR:-/tmp}/slurm}
H=$(hostname -s)
MEM=$(( $(free -m | awk '/^Mem:/{print $2}') - 512 ))
NCPU=$(nproc)
mkdir -p $B/{state,spool,log,out}
chmod 1777 $B/out
# munge
[ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
runuser -u munge -- /usr/sbin/munged
for i in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
munge -n | unmunge >/dev/null
# config
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$B/state
SlurmdSpoolDir=$B/spool
SlurmctldPidFile=$B/slurmctld.pid
SlurmdPidFile=$B/slurmd.pid
SlurmctldLogFile=$B/log/slurmctld.log
SlurmdLogFile=$B/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$H CPUs=$NCPU RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
CONF
# daemons (both daemonize and write their pid files)
slurmctld
slurmd
for i in $(seq 100); do sinfo -h -N -o %T 2>/dev/null | grep -qx idle && break; sleep 0.2; done
sinfo
echo "munged=$(cat /run/munge/munged.pid) slurmctld=$(cat $B/slurmctld.pid) slurmd=$(cat $B/slurmd.pid)"
