#!/usr/bin/env python
"""Run a sweep (spec or script arguments) on the local / slurm / debug executor, or report one (--status).

    python tools/sweep.py SPEC.yaml [--executor local|slurm|debug] [--gpus 0,1,2,3] [--dry-run]
    python tools/sweep.py [options] scripts/coop_nemesis/main.sh eurosat dtd
    python tools/sweep.py --status SWEEP_DIR

See README.md "Sweeps and clusters" and sweeps/spec.py for the spec format.
"""
from __future__ import annotations

import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from sweeps.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
