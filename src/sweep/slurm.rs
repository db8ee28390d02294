//! Slurm: job scripts, sbatch/squeue/scontrol parsing, scancel (owned by the Slurm part).
