"""The sweep launcher: specs and script arguments expanded to train.py runs, and the executors that run them
(``local`` over GPU slots, ``slurm`` job arrays through submitit, ``debug`` in-process). CLI: ``tools/sweep.py``."""
