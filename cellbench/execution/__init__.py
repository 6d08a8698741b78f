"""Running stages: the only package that knows how tasks are dispatched (local, debug, SLURM)."""
