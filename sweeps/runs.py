"""One run of a sweep: the program, its arguments, the folders it writes and the folders it needs."""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass, field
from typing import Any

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@dataclass
class Run:
    """One process of a sweep.

    ``program`` is a path relative to the repository (``train.py`` or ``tools/crt_sweep.py``); ``args`` are its
    arguments exactly as the bash scripts pass them. ``folders`` are the run folders it writes (one for train.py,
    one per setting for the corruption sweep); ``needs`` the folders that must hold finished runs first (the
    model folders of evaluations).
    """

    program: str
    args: list[str]
    folders: list[str]
    kind: str = "train"  # train | eval
    needs: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def folder(self) -> str:
        return self.folders[0]

    @property
    def key(self) -> str:
        """Stable identity of the run inside a sweep (its first folder)."""
        return self.folders[0]

    def command(self, python: str = "python") -> list[str]:
        return [python, osp.join(REPO, self.program), *self.args]

    def to_json(self) -> dict[str, Any]:
        return {"program": self.program, "args": list(self.args), "folders": list(self.folders), "kind": self.kind,
                "needs": list(self.needs), "label": self.label}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Run":
        return cls(program=d["program"], args=list(d["args"]), folders=list(d["folders"]), kind=d.get("kind", "train"),
                   needs=list(d.get("needs", [])), label=d.get("label", ""))
