//! The status of a sweep's trials from the plan, the run folders and the queue (Slurm part).
