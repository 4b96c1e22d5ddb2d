"""Sweep specs: a small YAML file that expands, through :mod:`sweeps.protocols`, to the very runs the bash scripts
issue.

Example (few-shot CoOp vs CoOp+Nemesis, scripts/coop_nemesis/main.sh)::

    protocol: fewshot            # fewshot | zeroshot | base2new | xd | crt
    data: /data                  # datasets root (default: $DATA)
    output_root: output          # default <repo>/output, as the scripts
    datasets: [eurosat, dtd]     # or: all
    methods: [coop, pun, pan]
    shots: [1, 2, 4, 8, 16]
    seeds: [1, 2, 3]             # or: nseeds: 5  (seeds 1..5)
    overrides: {OPTIM.MAX_EPOCH: 5}   # KEY VALUE opts appended to every run (EXTRA_OPTS)
    options: {PUN_ALPHA: 10.0}        # the scripts' environment knobs (NCTX, CTP, CW, W, LOAD_EPOCH, ...)
    slurm: {partition: gpu, time: 240, gpus_per_task: 1, cpus_per_task: 8, mem_gb: 32, array_parallelism: 64}

Methods per protocol: fewshot ``coop pun pan``; zeroshot ``ZeroshotCLIP ZeroshotCLIP2``; base2new ``cocoop kgcoop
maple ivlp vpt dept-coop dept-cocoop dept-kgcoop dept-maple``; xd (ImageNet source + evaluation on each of ``datasets``) the
base2new methods plus ``coop pun pan``; crt (scripts/coop_crt/eval_loop.sh) ``coop``.
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any

from . import protocols as P
from .protocols import SweepError
from .runs import REPO, Run


class SpecError(SweepError):
    """A sweep spec that cannot be read or expanded."""


PROTOCOL_METHODS = {
    "fewshot": ("coop", "pun", "pan"),
    "zeroshot": ("ZeroshotCLIP", "ZeroshotCLIP2"),
    "base2new": ("cocoop", "kgcoop", "maple", "ivlp", "vpt", "dept-coop", "dept-cocoop", "dept-kgcoop", "dept-maple"),
    "xd": ("cocoop", "kgcoop", "maple", "ivlp", "vpt", "dept-coop", "dept-cocoop", "dept-kgcoop", "dept-maple", "coop",
           "pun", "pan"),
    "crt": ("coop",),
}
DEFAULT_METHODS = {"fewshot": ["coop", "pun", "pan"], "zeroshot": ["ZeroshotCLIP"], "crt": ["coop"]}
KEYS = {"name", "protocol", "data", "output_root", "sweep_dir", "datasets", "methods", "shots", "seeds", "nseeds", "cfg",
        "backbone_cfg", "xd_cfg", "overrides", "options", "do_test", "python", "executor", "local", "slurm"}
OPTIONS = {"NCTX", "CTP", "CSC", "NT", "NP", "CW", "PUN_ALPHA", "PAN_ALPHA", "PAN_BETA", "W", "LOAD_EPOCH",
           "BASELINE", "POSITIONS", "REPLACE_FACTORS", "SCALE_FACTORS", "CRT_ROOT", "OUTPUT_DG_ROOT", "DO_TEST"}
SLURM_KEYS = {"partition", "time", "gpus_per_task", "cpus_per_task", "mem_gb", "array_parallelism", "account", "qos",
              "constraint", "additional"}
LOCAL_KEYS = {"gpus", "slots"}


@dataclass
class Spec:
    path: str
    name: str
    protocol: str
    data: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def output_root(self) -> str:
        return self.env["OUTPUT_ROOT"]

    @property
    def sweep_dir(self) -> str:
        d = self.data.get("sweep_dir")
        return _abs(str(d)) if d else osp.join(self.output_root, "sweeps", self.name)

    @property
    def slurm(self) -> dict[str, Any]:
        return dict(self.data.get("slurm") or {})

    @property
    def local(self) -> dict[str, Any]:
        return dict(self.data.get("local") or {})


def _abs(p: str) -> str:
    return osp.abspath(osp.expanduser(p))


def _str(v: Any) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    return str(v)


def _list(d: dict, key: str, default: list | None = None) -> list[str]:
    v = d.get(key, default)
    if v is None:
        return []
    if isinstance(v, (str, int, float)):
        v = [v] if not isinstance(v, str) else v.split()
    if not isinstance(v, list):
        raise SpecError(f"{key}: expected a list, got {v!r}")
    return [_str(x) for x in v]


def _seeds(data: dict, path: str) -> list[str]:
    """``seeds: [1, 2, 3]`` (explicit list), or ``nseeds: N`` for seeds 1..N (the papers use 3; 5 or 10 for the
    high-variance datasets is then a one-word change)."""
    if data.get("nseeds") is None:
        return _list(data, "seeds", [1, 2, 3])
    n = data["nseeds"]
    if data.get("seeds") is not None:
        raise SpecError(f"{path}: give either seeds (a list) or nseeds (a count), not both")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SpecError(f"{path}: nseeds must be a positive integer (seeds 1..N), got {n!r}")
    return [str(i) for i in range(1, n + 1)]


def load_spec(path: str) -> Spec:
    """Read and check a spec file (keys, protocol, methods); relative paths are taken from the current folder."""
    import yaml

    if not osp.isfile(path):
        raise SpecError(f"sweep spec not found: {path}")
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise SpecError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a sweep spec is a mapping (protocol, datasets, methods, ...)")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        import difflib

        hints = [f"unknown key {k!r}" + (f' (did you mean "{c[0]}"?)'
                                         if (c := difflib.get_close_matches(k, sorted(KEYS), 1)) else "")
                 for k in unknown]
        raise SpecError(f"{path}: {'; '.join(hints)}; keys: {', '.join(sorted(KEYS))}")
    protocol = data.get("protocol")
    if protocol not in PROTOCOL_METHODS:
        raise SpecError(f"{path}: protocol must be one of {', '.join(PROTOCOL_METHODS)}, got {protocol!r}")
    methods = _list(data, "methods", DEFAULT_METHODS.get(protocol))
    if not methods:
        raise SpecError(f"{path}: methods is required for protocol {protocol} ({', '.join(PROTOCOL_METHODS[protocol])})")
    for m in methods:
        if m not in PROTOCOL_METHODS[protocol]:
            raise SpecError(f"{path}: unknown method {m!r} for protocol {protocol} "
                            f"({', '.join(PROTOCOL_METHODS[protocol])})")
    for sect, keys in (("slurm", SLURM_KEYS), ("local", LOCAL_KEYS)):
        s = data.get(sect) or {}
        if not isinstance(s, dict) or set(s) - keys:
            raise SpecError(f"{path}: {sect}: unknown key(s) {sorted(set(s) - keys) if isinstance(s, dict) else s!r} "
                            f"(known: {', '.join(sorted(keys))})")
    options = data.get("options") or {}
    if not isinstance(options, dict) or set(options) - OPTIONS:
        raise SpecError(f"{path}: options: unknown option(s) "
                        f"{sorted(set(options) - OPTIONS) if isinstance(options, dict) else options!r} "
                        f"(known: {', '.join(sorted(OPTIONS))})")
    if not _list(data, "datasets"):
        raise SpecError(f"{path}: datasets is required (a list, or 'all')")

    env: dict[str, str] = {k: _str(v) for k, v in options.items()}
    env["DATA"] = _str(data.get("data") or os.environ.get("DATA", ""))
    if env["DATA"]:
        env["DATA"] = _abs(env["DATA"])
    env["OUTPUT_ROOT"] = _abs(_str(data["output_root"])) if data.get("output_root") else osp.join(REPO, "output")
    for k in ("CRT_ROOT", "OUTPUT_DG_ROOT"):
        if env.get(k):
            env[k] = _abs(env[k])
    env["SEEDS"] = " ".join(_seeds(data, path))
    overrides = data.get("overrides") or {}
    if isinstance(overrides, dict):
        opts = [x for k, v in overrides.items() for x in (str(k), _str(v))]
    elif isinstance(overrides, list):
        opts = [_str(x) for x in overrides]
    else:
        raise SpecError(f"{path}: overrides: a mapping KEY: VALUE (or a flat list KEY VALUE ...), got {overrides!r}")
    if any(not x or any(c.isspace() for c in x) for x in opts):
        raise SpecError(f"{path}: overrides: keys and values must be non-empty and without spaces (as EXTRA_OPTS)")
    env["EXTRA_OPTS"] = " ".join(opts)
    if data.get("do_test"):
        env["DO_TEST"] = "1"
    for key, var in (("cfg", "CFG"), ("backbone_cfg", "BACKBONE_CFG"), ("xd_cfg", "XD_CFG")):
        if data.get(key):
            env[var] = _str(data[key])
    env["METHODS"] = " ".join(methods)
    name = _str(data.get("name") or osp.splitext(osp.basename(path))[0])
    return Spec(path=path, name=name, protocol=protocol, data=data, env=env)


def _dedupe(runs: list[Run]) -> list[Run]:
    seen: dict[str, Run] = {}
    out = []
    for r in runs:
        old = seen.get(r.key)
        if old is not None:
            if old.command() != r.command():
                raise SpecError(f"two runs of the sweep write {r.key} with different arguments")
            continue
        seen[r.key] = r
        out.append(r)
    return out


def _family(method: str, env: dict[str, str]) -> P.Family:
    if method.startswith("dept-"):
        base = {"coop": "CoOp", "cocoop": "CoCoOp", "kgcoop": "KgCoOp", "maple": "MaPLe"}[method[5:]]
        return P.family_dept(env, base)
    return {"cocoop": P.family_cocoop, "kgcoop": P.family_kgcoop, "maple": P.family_maple, "ivlp": P.family_ivlp,
            "vpt": P.family_vpt}[method](env)


def expand_spec(spec: Spec) -> list[Run]:
    """The runs of ``spec``, in the order the scripts would issue them (training before its evaluations)."""
    d, env, proto = spec.data, dict(spec.env), spec.protocol
    datasets = _list(d, "datasets")
    if datasets == ["all"]:
        datasets = list(P.ALL_DATASETS if proto != "crt" else P.CRT_DATASETS)
    methods = env.pop("METHODS").split()
    runs: list[Run] = []
    if proto == "fewshot":
        env["SHOTS_LIST"] = " ".join(_list(d, "shots", [1, 2, 4, 8, 16]))
        env["METHODS"] = " ".join(methods)
        runs = P.nemesis_main(datasets, env)
    elif proto == "zeroshot":
        for m in methods:
            for ds in datasets:
                runs += P.coop_zeroshot([ds, env.get("CFG") or "rn50"], dict(env, TRAINER=m))
    elif proto == "crt":
        env["DATASETS"] = " ".join(datasets)
        runs = P.crt_eval_loop([], env)
    else:
        for shots in _list(d, "shots", [16]):
            e = dict(env, SHOTS=shots)
            for m in methods:
                if proto == "base2new":
                    fam = _family(m, e)
                    for ds in datasets:
                        runs += P.b2n_train(fam, e, ds) + P.b2n_test(fam, e, ds)
                elif m in ("coop", "pun", "pan"):
                    runs += _xd_coop(m, e, datasets, shots)
                else:
                    fam = _family(m, e)
                    runs += P.xd_train(fam, e)
                    for ds in datasets:
                        runs += P.xd_test(fam, e, ds)
    return _dedupe(runs)


def _xd_coop(method: str, env: dict[str, str], targets: list[str], shots: str) -> list[Run]:
    """CoOp / PUN / PAN on ImageNet (16 shots, M=16, end, generic) + scripts/coop{,_nemesis}/eval.sh per target."""
    if shots != "16":
        raise SpecError(f"protocol xd with method {method}: the evaluation scripts load 16-shot models (shots: [16])")
    cfg = env.get("CFG") or "rn50"
    if method == "coop":
        runs = P.coop_main(["imagenet", cfg, "end", "16", "16", "False"], env)
        for ds in targets:
            runs += P.coop_eval([ds, cfg], env)
        return runs
    nt, np_, cw = env.get("NT") or "two", env.get("NP") or "1", env.get("CW") or "0.1"
    if method == "pun":
        alpha, beta = env.get("PUN_ALPHA") or "1.0", "1.0"
    else:
        alpha, beta = env.get("PAN_ALPHA") or "1.0", env.get("PAN_BETA") or "0.0"
    e = dict(env, CFG=cfg)
    runs = P.nemesis_train(["imagenet", cfg, "end", "16", "16", "False", alpha, nt, np_, cw, beta], e)
    for ds in targets:
        runs += P.nemesis_eval(["CoOpNemesis", ds, alpha, nt, np_, cw, beta], e)
    return runs
