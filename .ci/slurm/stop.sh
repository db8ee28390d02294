#!/bin/bash
# A copy of ../shared/slurm's script (known to work on these machines), kept in the repo so
# that a clone anywhere can start CI's cluster.
B=${SLURM_BASE:-${TMPDIR:-/tmp}/slurm}
stop() { local p=$1; [ -n "$p" ] || return 0; kill "$p" 2>/dev/null || return 0
  for i in $(seq 50); do s=$(ps -p "$p" -o stat= 2>/dev/null); [ -z "$s" ] || [ "${s:0:1}" = Z ] && return 0; sleep 0.2; done
  echo "pid $p still alive"; }
stop "$(cat $B/slurmd.pid 2>/dev/null)"
stop "$(cat $B/slurmctld.pid 2>/dev/null)"
stop "$(cat /run/munge/munged.pid 2>/dev/null)"
ps -eo pid,stat,comm | awk '$3 ~ /^(slurmctld|slurmd|slurmstepd|slurmscriptd|munged)$/' | grep . || echo "no slurm/munge processes left"
