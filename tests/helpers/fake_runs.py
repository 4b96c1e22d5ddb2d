"""Generated output trees (run folders of every protocol) for the report / parse_test_res tests.

A run folder is written in one of three ways:

* ``"record"``: our completion record ``run.json`` with the results (plus the log and ``results.json``);
* ``"legacy"``: a reference-fork folder: only ``log.txt`` ending with ``Elapsed`` (training) or ``macro_f1``
  (evaluation), no record;
* ``"unfinished"``: a log that stops mid-training (no record, no end marker).
"""
from __future__ import annotations

import json
import os

from dassl.utils.run_record import write_record


def write_run(folder: str, accuracy: float | None, how: str = "record", kind: str = "train") -> str:
    os.makedirs(folder, exist_ok=True)
    result = (f"=> result\n* total: 100\n* correct: {int(accuracy or 0)}\n* accuracy: {accuracy:.1f}%\n"
              f"* error: {100 - accuracy:.1f}%\n* macro_f1: {accuracy:.1f}%\n") if accuracy is not None else ""
    if how == "unfinished":
        text = "epoch [1/10] batch [1/1] loss 1.0\n"
    elif kind == "train":
        text = ("epoch [10/10] batch [1/1] loss 0.1\nFinish training\nDeploy the last-epoch model\n"
                "Evaluate on the *test* set\n" + result + "Elapsed: 0:00:01\n")
    else:
        text = "Loading weights\nEvaluate on the *test* set\n" + result
    with open(os.path.join(folder, "log.txt"), "w") as f:
        f.write(text)
    if how == "record":
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump({"split": "test", "accuracy": accuracy}, f)
        write_record(folder, kind, {"accuracy": accuracy}, "0" * 8)
    return folder
