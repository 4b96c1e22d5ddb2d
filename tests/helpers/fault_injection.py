"""Fault injection for the run-folder tests, imported into ``train.py`` through ``PROMPTCLIP_EXTRA_MODULES``.

``FAULT_AT=E:B:SIG`` (0-based epoch and batch index, SIG one of KILL | TERM | INT, or HOLD: wait there until SIGINT/SIGTERM) sends the signal to the training
process itself right after iteration B of epoch E finished its update (when the per-iteration ``train/lr`` scalar
is written): KILL is a ``kill -9`` at that point, TERM / INT arrive while the iteration is still "current".
"""
from __future__ import annotations

import os
import signal
import time

from dassl.engine.trainer import TrainerBase

_SPEC = os.environ.get("FAULT_AT", "")
if _SPEC:
    _e, _b, _sig = _SPEC.split(":")
    _TARGET = (int(_e), int(_b))
    _SIGNAL = None if _sig == "HOLD" else getattr(signal, f"SIG{_sig}")
    _original = TrainerBase.write_scalar

    def write_scalar(self, tag, scalar_value, global_step=None):
        _original(self, tag, scalar_value, global_step)
        if tag == "train/lr" and (self.epoch, self.batch_idx) == _TARGET:
            if _SIGNAL is None:  # HOLD: keep the run (and its lock) alive until a stop signal arrives
                from dassl.engine.trainer import STOP

                for _ in range(1200):
                    if STOP.signum is not None:
                        break
                    time.sleep(0.1)
                return
            os.kill(os.getpid(), _SIGNAL)

    TrainerBase.write_scalar = write_scalar
