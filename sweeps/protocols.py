"""The bash sweep scripts, as functions: each returns the runs (``train.py`` / ``tools/crt_sweep.py`` argument lists
and run folders) that the script of the same name issues, argument for argument.

Every function takes the script's positional arguments and ``env``, a mapping read like the script reads its
environment (``PYTHON``, ``OUTPUT_ROOT``, ``SEEDS``, ``EXTRA_OPTS``, ``DATA``, ``DO_TEST``, ``LOAD_EPOCH``, ...;
an empty value counts as unset, as with bash's ``${X:-default}``). :data:`SCRIPTS` maps each script (path under
``scripts/``) to its function; ``tests/test_sweep_expand.py`` checks the equality against the scripts under a
stub ``python``.
"""
from __future__ import annotations

import glob
import os.path as osp
import re
from typing import Callable, Mapping

from dassl.utils.errors import UsageError

from .runs import REPO, Run

Env = Mapping[str, str]

ALL_DATASETS = ("caltech101 dtd eurosat fgvc_aircraft food101 imagenet oxford_flowers oxford_pets stanford_cars "
                "sun397 ucf101").split()
CRT_DATASETS = ("caltech101 eurosat food101 oxford_flowers stanford_cars ucf101 dtd fgvc_aircraft oxford_pets "
                "sun397 imagenet").split()


class SweepError(UsageError):
    """A sweep that cannot be expanded (bad script arguments, unknown method, missing DATA)."""


def _e(env: Env, name: str, default: str = "") -> str:
    v = env.get(name, "")
    return v if v else default


def _words(env: Env, name: str, default: str = "") -> list[str]:
    return _e(env, name, default).split()


def _repo(*parts: str) -> str:
    return osp.join(REPO, *parts)


def _output_root(env: Env) -> str:
    return _e(env, "OUTPUT_ROOT", _repo("output"))


def _data(env: Env, script: str) -> str:
    data = _e(env, "DATA")
    if not data:
        raise SweepError(f"set DATA to the datasets root, e.g. DATA=/path/to/data (needed by {script}; "
                         "see DATASETS.md)")
    return data


def _usage(args: list[str], lo: int, hi: int, text: str) -> None:
    if not lo <= len(args) <= hi:
        raise SweepError(f"usage: {text} (got {len(args)} argument(s): {' '.join(args) or 'none'})")


def _ds_cfg(dataset: str) -> str:
    return _repo("configs", "datasets", f"{dataset}.yaml")


def _max_epoch_used(cfg_file: str, env: Env) -> str:
    """scripts/coop_crt/eval.sh ``max_epoch_used``: the YAML's OPTIM.MAX_EPOCH, overridden by one in EXTRA_OPTS."""
    epoch, extra = max_epoch(cfg_file), _words(env, "EXTRA_OPTS")
    for i in range(0, len(extra) - 1, 2):
        if extra[i] == "OPTIM.MAX_EPOCH":
            epoch = extra[i + 1]
    return epoch


def max_epoch(cfg_file: str) -> str:
    """OPTIM.MAX_EPOCH of a trainer YAML, read as scripts/coop/lib.sh ``max_epoch`` reads it ('' when absent)."""
    try:
        with open(cfg_file) as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    inside = False
    for line in lines:
        if line.startswith("OPTIM:"):
            inside = True
            continue
        if line[:1] and not line[:1].isspace():
            inside = False
        if inside and "MAX_EPOCH:" in line:
            fields = line.split()
            return fields[1] if len(fields) > 1 else ""
    return ""


# ------------------------------------------------------------------------------------------------ CoOp
def coop_main(args: list[str], env: Env) -> list[Run]:
    """scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC"""
    _usage(args, 6, 6, "scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC")
    dataset, cfg, ctp, nctx, shots, csc = args
    data, out = _data(env, "scripts/coop/main.sh"), _output_root(env)
    runs = []
    for seed in _words(env, "SEEDS", "1 2 3"):
        d = f"{out}/{dataset}/CoOp/{cfg}_{shots}shots/nctx{nctx}_csc{csc}_ctp{ctp}/seed{seed}"
        a = ["--root", data, "--seed", seed, "--trainer", "CoOp", "--dataset-config-file", _ds_cfg(dataset),
             "--config-file", _repo("configs", "trainers", "CoOp", f"{cfg}.yaml"), "--output-dir", d]
        if _e(env, "DO_TEST"):
            a.append("--do-test")
        a += ["TRAINER.COOP.N_CTX", nctx, "TRAINER.COOP.CSC", csc, "TRAINER.COOP.CLASS_TOKEN_POSITION", ctp,
              "DATASET.NUM_SHOTS", shots, *_words(env, "EXTRA_OPTS")]
        runs.append(Run("train.py", a, [d], "train", label=f"CoOp {dataset} {shots}shots seed{seed}"))
    return runs


_REGISTERED = re.compile(r"^@TRAINER_REGISTRY\.register\(.*\n(?:class )([A-Za-z0-9_]+)", re.M)


def registered_trainers() -> list[str]:
    """scripts/coop/eval.sh ``registered_trainers``: the classes registered with ``@TRAINER_REGISTRY.register()`` in
    trainers/*.py, read from the sources (no torch import)."""
    names = []
    for path in sorted(glob.glob(_repo("trainers", "*.py"))):
        with open(path) as f:
            names += _REGISTERED.findall(f.read())
    return names


def coop_train(args: list[str], env: Env) -> list[Run]:
    """scripts/coop/train.sh DATASET CFG CTP NCTX SHOTS CSC (the Nemesis repository's name of coop/main.sh)"""
    _usage(args, 6, 6, "scripts/coop/train.sh DATASET CFG CTP NCTX SHOTS CSC")
    return coop_main(args, env)


def coop_eval(args: list[str], env: Env) -> list[Run]:
    """scripts/coop/eval.sh DATASET CFG, or TRAINER DATASET (the Nemesis repository's signature: the first argument
    is a registered trainer) (domain generalisation of the ImageNet model)"""
    _usage(args, 2, 2, "scripts/coop/eval.sh DATASET CFG  or  scripts/coop/eval.sh TRAINER DATASET")
    if args[0] in registered_trainers():
        return coop_eval_trainer(args, env)
    dataset, cfg = args
    data, out = _data(env, "scripts/coop/eval.sh"), _output_root(env)
    runs = []
    for seed in _words(env, "SEEDS", "1 2 3"):
        model = f"{out}/imagenet/CoOp/{cfg}_16shots/nctx16_cscFalse_ctpend/seed{seed}"
        d = f"{out}/evaluation/CoOp/{cfg}_16shots/nctx16_cscFalse_ctpend/{dataset}/seed{seed}"
        a = ["--root", data, "--seed", seed, "--trainer", "CoOp", "--dataset-config-file", _ds_cfg(dataset),
             "--config-file", _repo("configs", "trainers", "CoOp", f"{cfg}.yaml"), "--output-dir", d,
             "--model-dir", model, "--load-epoch", _e(env, "LOAD_EPOCH", "50"), "--eval-only",
             "TRAINER.COOP.N_CTX", "16", "TRAINER.COOP.CSC", "False", "TRAINER.COOP.CLASS_TOKEN_POSITION", "end",
             *_words(env, "EXTRA_OPTS")]
        runs.append(Run("train.py", a, [d], "eval", [model], label=f"CoOp eval {dataset} seed{seed}"))
    return runs


def coop_eval_trainer(args: list[str], env: Env) -> list[Run]:
    """scripts/coop/eval.sh TRAINER DATASET: the Nemesis repository's DG evaluation (CFG env, default rn50)"""
    trainer, dataset = args
    data, out = _data(env, "scripts/coop/eval.sh"), _output_root(env)
    cfg, dg = _e(env, "CFG", "rn50"), _e(env, "OUTPUT_DG_ROOT", _repo("output_dg"))
    cfg_file = _repo("configs", "trainers", trainer, f"{cfg}.yaml")
    if not osp.isfile(cfg_file):
        cfg_file = _repo("configs", "trainers", "CoOp", f"{cfg}.yaml")
    runs = []
    for seed in _words(env, "SEEDS", "1 2 3"):
        model = f"{out}/imagenet/{trainer}/{cfg}_16shots/nctx16_cscFalse_ctpend/seed{seed}"
        d = f"{dg}/evaluation/{dataset}/{trainer}/seed{seed}"
        a = ["--root", data, "--seed", seed, "--trainer", trainer, "--dataset-config-file", _ds_cfg(dataset),
             "--config-file", cfg_file, "--output-dir", d, "--model-dir", model, "--load-epoch",
             _e(env, "LOAD_EPOCH", "50"), "--eval-only", "MODEL.PROMPT_LEARNER.N_CTX", "16", "MODEL.PROMPT_LEARNER.CSC",
             "False", "MODEL.PROMPT_LEARNER.CLASS_TOKEN_POSITION", "end", *_words(env, "EXTRA_OPTS")]
        runs.append(Run("train.py", a, [d], "eval", [model], label=f"{trainer} eval {dataset} seed{seed}"))
    return runs


def coop_zeroshot(args: list[str], env: Env) -> list[Run]:
    """scripts/coop/zeroshot.sh DATASET CFG (TRAINER env, default ZeroshotCLIP)"""
    _usage(args, 2, 2, "scripts/coop/zeroshot.sh DATASET CFG")
    dataset, cfg = args
    trainer = _e(env, "TRAINER", "ZeroshotCLIP")
    data, out = _data(env, "scripts/coop/zeroshot.sh"), _output_root(env)
    d = f"{out}/{trainer}/{cfg}/{dataset}"
    a = ["--root", data, "--trainer", trainer, "--dataset-config-file", _ds_cfg(dataset),
         "--config-file", _repo("configs", "trainers", "CoOp", f"{cfg}.yaml"), "--output-dir", d, "--eval-only",
         *_words(env, "EXTRA_OPTS")]
    return [Run("train.py", a, [d], "eval", label=f"{trainer} {dataset}")]


# --------------------------------------------------------------------------------------------- Nemesis
def nemesis_name(alpha: str, nt: str, np_: str, cw: str, beta: str, nctx: str, csc: str, ctp: str) -> str:
    """scripts/coop_nemesis/lib.sh ``nemesis_name``"""
    if beta in ("1.0", "1"):
        return f"alpha{alpha}_nctx{nctx}_csc{csc}_ctp{ctp}_nt{nt}"
    return f"alpha{alpha}_cw{cw}_pn{np_}_nctx{nctx}_csc{csc}_ctp{ctp}_nt{nt}"


def nemesis_train(args: list[str], env: Env) -> list[Run]:
    """scripts/coop_nemesis/train.sh DATASET CFG CTP NCTX SHOTS CSC ALPHA NT NP CW BETA"""
    _usage(args, 11, 11, "scripts/coop_nemesis/train.sh DATASET CFG CTP NCTX SHOTS CSC ALPHA NT NP CW BETA")
    dataset, cfg, ctp, nctx, shots, csc, alpha, nt, np_, cw, beta = args
    data, out = _data(env, "scripts/coop_nemesis/train.sh"), _output_root(env)
    name = nemesis_name(alpha, nt, np_, cw, beta, nctx, csc, ctp)
    k = "TRAINER.CoOpNemesis"
    runs = []
    for seed in _words(env, "SEEDS", "1 2 3"):
        d = f"{out}/{dataset}/CoOpNemesis/Beta-{beta}/{cfg}_{shots}shots/{name}/seed{seed}"
        a = ["--root", data, "--seed", seed, "--trainer", "CoOpNemesis", "--dataset-config-file", _ds_cfg(dataset),
             "--config-file", _repo("configs", "trainers", "CoOpNemesis", f"{cfg}.yaml"), "--output-dir", d]
        if _e(env, "DO_TEST"):
            a.append("--do-test")
        a += [f"{k}.N_CTX", nctx, f"{k}.CSC", csc, f"{k}.CLASS_TOKEN_POSITION", ctp, f"{k}.A", alpha, f"{k}.NT", nt,
              f"{k}.NP", np_, f"{k}.CW", cw, f"{k}.BETA", beta, "DATASET.NUM_SHOTS", shots,
              *_words(env, "EXTRA_OPTS")]
        runs.append(Run("train.py", a, [d], "train", label=f"CoOpNemesis(beta {beta}) {dataset} {shots}shots seed{seed}"))
    return runs


def nemesis_eval(args: list[str], env: Env) -> list[Run]:
    """scripts/coop_nemesis/eval.sh TRAINER DATASET ALPHA NT NP CW BETA (domain generalisation, ImageNet model)"""
    _usage(args, 7, 7, "scripts/coop_nemesis/eval.sh TRAINER DATASET ALPHA NT NP CW BETA")
    trainer, dataset, alpha, nt, np_, cw, beta = args
    cfg = _e(env, "CFG", _e(env, "BACKBONE_CFG", "rn50") + "_ep50")  # what main.sh imagenet trains (issue 12)
    out, dg = _output_root(env), _e(env, "OUTPUT_DG_ROOT", _repo("output_dg"))
    data = _data(env, "scripts/coop_nemesis/eval.sh")
    name = nemesis_name(alpha, nt, np_, cw, beta, "16", "False", "end")
    k = "TRAINER.CoOpNemesis"
    runs = []
    for seed in _words(env, "SEEDS", "1 2 3"):
        model = f"{out}/imagenet/{trainer}/Beta-{beta}/{cfg}_16shots/{name}/seed{seed}"
        d = f"{dg}/{dataset}/{trainer}/Beta-{beta}/{cfg}_16shots/{name}/seed{seed}"
        a = ["--root", data, "--seed", seed, "--trainer", trainer, "--dataset-config-file", _ds_cfg(dataset),
             "--config-file", _repo("configs", "trainers", "CoOpNemesis", f"{cfg}.yaml"), "--output-dir", d,
             "--model-dir", model, "--load-epoch", _e(env, "LOAD_EPOCH", "50"), "--eval-only",
             f"{k}.N_CTX", "16", f"{k}.CSC", "False", f"{k}.CLASS_TOKEN_POSITION", "end", f"{k}.A", alpha,
             f"{k}.NT", nt, f"{k}.NP", np_, f"{k}.CW", cw, f"{k}.BETA", beta, *_words(env, "EXTRA_OPTS")]
        runs.append(Run("train.py", a, [d], "eval", [model], label=f"{trainer}(beta {beta}) eval {dataset} seed{seed}"))
    return runs


def nemesis_cfg_for(env: Env, dataset: str, shots: str) -> str:
    """scripts/coop_nemesis/main.sh ``cfg_for``: the paper's epoch recipe per shot count."""
    if _e(env, "CFG"):
        return _e(env, "CFG")
    p = _e(env, "BACKBONE_CFG", "rn50")
    if dataset == "imagenet" or int(shots) <= 1:
        return f"{p}_ep50"
    if int(shots) <= 4:
        return f"{p}_ep100"
    return p


def nemesis_main(args: list[str], env: Env) -> list[Run]:
    """scripts/coop_nemesis/main.sh DATASET [DATASET ...] ('all' = the 11 datasets)"""
    if not args:
        raise SweepError("usage: scripts/coop_nemesis/main.sh DATASET [DATASET ...] (or 'all'); the no-argument "
                         "form runs the embedded default: bash scripts/embedded_default.sh")
    if any(a.startswith("-") for a in args):  # main.sh: options select the embedded-default main job
        raise SweepError(f"scripts/coop_nemesis/main.sh {' '.join(args)}: options belong to the embedded-default "
                         "main job (bash scripts/embedded_default.sh ...), which has no launcher form")
    datasets = ALL_DATASETS if args == ["all"] else list(args)
    shots_list = _words(env, "SHOTS_LIST", "1 2 4 8 16")
    methods = _words(env, "METHODS", "coop pun pan")
    nctx, ctp, csc = _e(env, "NCTX", "16"), _e(env, "CTP", "end"), _e(env, "CSC", "False")
    nt, np_, cw = _e(env, "NT", "two"), _e(env, "NP", "2"), _e(env, "CW", "0.5")  # the one PAN default (COOP.md)
    for m in methods:
        if m not in ("coop", "pun", "pan"):
            raise SweepError(f"unknown method {m} (coop | pun | pan)")
    runs: list[Run] = []
    for dataset in datasets:
        for shots in shots_list:
            c = nemesis_cfg_for(env, dataset, shots)
            for m in methods:
                if m == "coop":
                    runs += coop_main([dataset, c, ctp, nctx, shots, csc], env)
                elif m == "pun":
                    runs += nemesis_train([dataset, c, ctp, nctx, shots, csc, _e(env, "PUN_ALPHA", "1.0"), nt, np_, cw,
                                           "1.0"], env)
                else:
                    runs += nemesis_train([dataset, c, ctp, nctx, shots, csc, _e(env, "PAN_ALPHA", "1.0"), nt, np_, cw,
                                           _e(env, "PAN_BETA", "0.0")], env)
    return runs


DG_TARGETS = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")


def nemesis_dg(args: list[str], env: Env) -> list[Run]:
    """scripts/coop_nemesis/dg.sh [TARGET ...] (the paper's domain-generalisation table: ImageNet models of CoOp and
    CoOp + Nemesis at ALPHAS, trained where the few-shot sweep trains them, evaluated on every target)"""
    targets = list(args) or list(DG_TARGETS)
    for t in targets:
        if not osp.isfile(_ds_cfg(t)):
            raise SweepError(f"unknown dataset {t} (configs/datasets/<name>.yaml)")
    _data(env, "scripts/coop_nemesis/dg.sh")
    methods, alphas = _words(env, "METHODS", "coop pun pan"), _words(env, "ALPHAS", "1.0 10.0")
    cfg = _e(env, "CFG", _e(env, "BACKBONE_CFG", "rn50") + "_ep50")
    nt, np_, cw, pan_beta = _e(env, "NT", "two"), _e(env, "NP", "2"), _e(env, "CW", "0.5"), _e(env, "PAN_BETA", "0.0")
    for m in methods:
        if m not in ("coop", "pun", "pan"):
            raise SweepError(f"unknown method {m} (coop | pun | pan)")
    settings = {"coop": [None], "pun": [(a, "1.0") for a in alphas], "pan": [(a, pan_beta) for a in alphas]}
    runs: list[Run] = []
    if _e(env, "TRAIN", "1") == "1":
        for m in methods:
            for s in settings[m]:
                if s is None:
                    runs += coop_main(["imagenet", cfg, "end", "16", "16", "False"], env)
                else:
                    runs += nemesis_train(["imagenet", cfg, "end", "16", "16", "False", s[0], nt, np_, cw, s[1]], env)
    for t in targets:
        for m in methods:
            for s in settings[m]:
                if s is None:
                    runs += coop_eval([t, cfg], env)
                else:
                    runs += nemesis_eval(["CoOpNemesis", t, s[0], nt, np_, cw, s[1]], dict(env, CFG=cfg))
    return runs


# ------------------------------------------------------------------------------------------------- CRT
def _crt_cfg_file(cfg: str) -> str:
    f = _repo("configs", "trainers", "CoOpCRT", f"{cfg}.yaml")
    return f if osp.isfile(f) else _repo("configs", "trainers", "CoOp", f"{cfg}.yaml")


def crt_eval(args: list[str], env: Env) -> list[Run]:
    """scripts/coop_crt/eval.sh CFG CTP NCTX SHOTS CSC EPOCH CORRUPT POS CRT_FACTOR (one train.py per setting)"""
    _usage(args, 9, 9, "scripts/coop_crt/eval.sh CFG CTP NCTX SHOTS CSC EPOCH CORRUPT POS CRT_FACTOR")
    cfg, ctp, nctx, shots, csc, epoch, corrupt, pos, factor = args
    datasets = _words(env, "DATASETS", " ".join(CRT_DATASETS))
    crt_root, out = _e(env, "CRT_ROOT", _repo("output_crt")), _output_root(env)
    if corrupt == "original":
        sub = "original"
    elif corrupt == "replace":
        sub = f"replace/pos-{pos}_std-{factor}"
    elif corrupt in ("scale", "rescale"):
        corrupt, sub = "scale", f"rescale/pos-{pos}_scale-{factor}"
    else:
        raise SweepError(f"CORRUPT must be original, replace or scale (rescale), got {corrupt}")
    cfg_file = _crt_cfg_file(cfg)
    data = _data(env, "scripts/coop_crt/eval.sh")
    runs = []
    for dataset in datasets:
        load = epoch
        if epoch == "auto":  # the MAX_EPOCH of the config used: the YAML, then an OPTIM.MAX_EPOCH in EXTRA_OPTS
            load = "50" if dataset == "imagenet" else _max_epoch_used(cfg_file, env)
        for seed in _words(env, "SEEDS", "1 2 3"):
            model = f"{out}/{dataset}/CoOp/{cfg}_{shots}shots/nctx{nctx}_csc{csc}_ctp{ctp}/seed{seed}"
            d = f"{crt_root}/CoOpCRT/{dataset}/CoOp/{cfg}_{shots}shots/{sub}/seed{seed}"
            a = ["--root", data, "--seed", seed, "--trainer", "CoOpCRT", "--dataset-config-file", _ds_cfg(dataset),
                 "--config-file", cfg_file, "--output-dir", d, "--model-dir", model, "--load-epoch", load,
                 "--eval-only", "--corrupt-type", corrupt, "--corrupt-position", pos, "--crt-factor", factor,
                 "TRAINER.CoOpCRT.N_CTX", nctx, "TRAINER.CoOpCRT.CSC", csc, "TRAINER.CoOpCRT.CLASS_TOKEN_POSITION", ctp,
                 "DATASET.NUM_SHOTS", shots, *_words(env, "EXTRA_OPTS")]
            runs.append(Run("train.py", a, [d], "eval", [model], label=f"CoOpCRT {dataset} {sub} seed{seed}"))
    return runs


def crt_setting_dir(base: str, kind: str, pos: str, factor: str, seed: str) -> str:
    """tools/crt_sweep.py ``setting_dir`` (string form)."""
    if kind == "original":
        return f"{base}/original/seed{seed}"
    if kind == "replace":
        return f"{base}/replace/pos-{pos}_std-{factor}/seed{seed}"
    return f"{base}/rescale/pos-{pos}_scale-{factor}/seed{seed}"


def crt_sweep_run(env: Env, dataset: str, cfg: str, shots: str, types: list[str], *, data: str) -> Run:
    """One tools/crt_sweep.py process (scripts/coop_crt/eval_loop.sh ``sweep DATASET CFG SHOTS TYPES...``)."""
    out, crt_root = _output_root(env), _e(env, "CRT_ROOT", _repo("output_crt"))
    nctx, csc, ctp = _e(env, "NCTX", "16"), _e(env, "CSC", "False"), _e(env, "CTP", "end")
    pos, rf = _words(env, "POSITIONS", "0 1 2"), _words(env, "REPLACE_FACTORS", "0")
    sf, seeds = _words(env, "SCALE_FACTORS", "0.001"), _words(env, "SEEDS", "1 2 3")
    # $LOAD_EPOCH, else 50 for imagenet, else none: crt_sweep takes the MAX_EPOCH of the config it builds
    epoch = _e(env, "LOAD_EPOCH") or ("50" if dataset == "imagenet" else "")
    model = f"{out}/{dataset}/CoOp/{cfg}_{shots}shots/nctx{nctx}_csc{csc}_ctp{ctp}/seed{{seed}}"
    base = f"{crt_root}/CoOpCRT/{dataset}/CoOp/{cfg}_{shots}shots"
    a = ["--root", data, "--dataset-config-file", _ds_cfg(dataset), "--config-file", _crt_cfg_file(cfg),
         "--model-dir", model, *(["--load-epoch", epoch] if epoch else []), "--output-base", base, "--seeds", *seeds,
         "--types", *types,
         "--positions", *pos, "--replace-factors", *rf, "--scale-factors", *sf,
         "--opts", "TRAINER.CoOpCRT.N_CTX", nctx, "TRAINER.CoOpCRT.CSC", csc, "TRAINER.CoOpCRT.CLASS_TOKEN_POSITION",
         ctp, "DATASET.NUM_SHOTS", shots, *_words(env, "EXTRA_OPTS")]
    grid: list[tuple[str, str, str]] = []
    for t in types:
        t = "scale" if t == "rescale" else t
        if t == "original":
            grid.append(("original", "0", "0"))
        elif t == "replace":
            grid += [("replace", p, f) for p in pos for f in rf]
        elif t == "scale":
            grid += [("scale", p, f) for p in pos for f in sf]
        else:
            raise SweepError(f"unknown corruption type {t} (original | replace | scale)")
    folders = [crt_setting_dir(base, k, p, f, s) for s in seeds for (k, p, f) in grid]
    needs = [model.replace("{seed}", s) for s in seeds]
    return Run("tools/crt_sweep.py", a, folders, "eval", needs, label=f"crt_sweep {dataset} {cfg} {shots}shots")


#: the settings of scripts/coop_crt/eval_loop.sh: (cfg, shots, types)
CRT_LOOP = (("rn50_ep50", "1", ("original", "replace", "scale")), ("rn50_ep50", "2", ("original",)),
            ("rn50_ep100", "4", ("original",)), ("rn50", "8", ("original",)), ("rn50", "16", ("original",)))


def crt_eval_loop(args: list[str], env: Env) -> list[Run]:
    """scripts/coop_crt/eval_loop.sh (the README's corruption experiments through tools/crt_sweep.py)"""
    _usage(args, 0, 0, "scripts/coop_crt/eval_loop.sh (no arguments; env DATASETS, SEEDS, POSITIONS, ...)")
    data = _data(env, "scripts/coop_crt/eval_loop.sh")
    runs = []
    for dataset in _words(env, "DATASETS", " ".join(CRT_DATASETS)):
        for cfg, shots, types in CRT_LOOP:
            runs.append(crt_sweep_run(env, dataset, cfg, shots, list(types), data=data))
    return runs


# -------------------------------------------------------------- base-to-new and cross-dataset (protocols.sh)
class Family:
    """What scripts/<family>/env.sh sets for scripts/cocoop/protocols.sh."""

    def __init__(self, trainer: str, cfg: str, xd_cfg: str = "", cfg_dir: str = "", method_opts: list[str] | None = None,
                 shots_tag: str = "", run_prefix: str = "", run_name: str = "") -> None:
        self.trainer, self.cfg, self.xd_cfg, self.cfg_dir = trainer, cfg, xd_cfg or cfg, cfg_dir or trainer
        self.method_opts, self.shots_tag = list(method_opts or []), shots_tag
        self.run_prefix, self.run_name = run_prefix, run_name  # folders around <CFG> (the Nemesis hosts)

    def cfg_path(self, stem: str) -> str:
        return _repo("configs", "trainers", self.cfg_dir, f"{stem}.yaml")


def family_cocoop(env: Env) -> Family:
    return Family("CoCoOp", _e(env, "CFG", "vit_b16_c4_ep10_batch1_ctxv1"), _e(env, "XD_CFG"))


def family_kgcoop(env: Env) -> Family:
    w = _e(env, "W", "8.0")
    return Family("KgCoOp", _e(env, "CFG", "vit_b16_ep100_ctxv1"), _e(env, "XD_CFG"),
                  method_opts=["TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.CSC", "False",
                               "TRAINER.COOP.CLASS_TOKEN_POSITION", "end", "TRAINER.COOP.W", w],
                  shots_tag=f"shots_{_e(env, 'SHOTS', '16')}_{w}")


def family_maple(env: Env) -> Family:
    return Family("MaPLe", _e(env, "CFG", "vit_b16_c2_ep5_batch4_2ctx"),
                  _e(env, "XD_CFG", "vit_b16_c2_ep5_batch4_2ctx_cross_datasets"))


def family_ivlp(env: Env) -> Family:
    cfg = _e(env, "CFG", "vit_b16_c2_ep5_batch4_2+2ctx")
    return Family("IVLP", cfg, _e(env, "XD_CFG", cfg))


def family_vpt(env: Env) -> Family:
    cfg = _e(env, "CFG", "vit_b16_c2_ep5_batch4_4")
    return Family("VPT", cfg, _e(env, "XD_CFG", cfg))


def nemesis_run_name(alpha: str, nt: str, np_: str, cw: str, beta: str, target: str = "text") -> str:
    """scripts/cocoop_nemesis/host.sh ``nemesis_run_name``"""
    name = f"alpha{alpha}_nt{nt}" if beta in ("1.0", "1") else f"alpha{alpha}_cw{cw}_pn{np_}_nt{nt}"
    return name if target == "text" else f"{name}_target{target}"


def nemesis_host(fam: Family, env: Env, alpha: str, nt: str, np_: str, cw: str, beta: str) -> Family:
    """scripts/cocoop_nemesis/host.sh ``nemesis_host``: the Nemesis options and folders on a base-to-new host."""
    target = _e(env, "TARGET", "text")
    fam.method_opts += ["REGULARISER.NEMESIS.A", alpha, "REGULARISER.NEMESIS.NT", nt, "REGULARISER.NEMESIS.NP", np_,
                        "REGULARISER.NEMESIS.CW", cw, "REGULARISER.NEMESIS.BETA", beta]
    if target != "text":
        fam.method_opts += ["REGULARISER.NEMESIS.TARGET", target]
    fam.run_prefix, fam.run_name = f"Beta-{beta}", nemesis_run_name(alpha, nt, np_, cw, beta, target)
    return fam


def family_cocoop_nemesis(env: Env) -> Family:
    return Family("CoCoOpNemesis", _e(env, "CFG", "vit_b16_c4_ep10_batch1_ctxv1"), cfg_dir="CoCoOp")


def family_kgcoop_nemesis(env: Env) -> Family:
    fam = family_kgcoop(env)
    fam.trainer, fam.cfg_dir = "KgCoOpNemesis", "KgCoOp"
    return fam


def family_maple_nemesis(env: Env) -> Family:
    return Family("MaPLeNemesis", _e(env, "CFG", "vit_b16_c2_ep5_batch4_2ctx"), cfg_dir="MaPLe")


def family_ivlp_nemesis(env: Env) -> Family:
    return Family("IVLPNemesis", _e(env, "CFG", "vit_b16_c2_ep5_batch4_2+2ctx"), cfg_dir="IVLP")


def family_vpt_nemesis(env: Env) -> Family:
    return Family("VPTNemesis", _e(env, "CFG", "vit_b16_c2_ep5_batch4_4"), cfg_dir="VPT")


DEPT_CFG = {"CoOp": "vit_b16_ep10_bs4_lr35", "CoCoOp": "vit_b16_c4_ep10_batch1_ctxv1",
            "KgCoOp": "vit_b16_ep10_ctxv1_bs4_lr35", "MaPLe": "vit_b16_c2_ep10_batch4_2ctx"}


def family_dept(env: Env, base: str) -> Family:
    if base not in DEPT_CFG:
        raise SweepError(f"BASE must be CoOp, CoCoOp, KgCoOp or MaPLe, got '{base}'")
    cfg = _e(env, "CFG", DEPT_CFG[base])
    trainer = base if _e(env, "BASELINE", "0") == "1" else f"ExtrasLinearProbe{base}"
    return Family(trainer, cfg, cfg)


def _p_run(fam: Family, env: Env, dataset: str, cfg: str, d: str, seed: str, extra: list[str]) -> list[str]:
    return ["--root", _e(env, "DATA"), "--seed", seed, "--trainer", fam.trainer, "--dataset-config-file",
            _ds_cfg(dataset), "--config-file", fam.cfg_path(cfg), "--output-dir", d, *extra, *fam.method_opts,
            "DATASET.NUM_SHOTS", _e(env, "SHOTS", "16"), *_words(env, "EXTRA_OPTS")]


def _p_seeds(env: Env, seed: str | None) -> list[str]:
    return [seed] if seed else _words(env, "SEEDS", "1 2 3")


def _b2n_dir(fam: Family, env: Env, which: str, dataset: str, seed: str) -> str:
    tag = fam.shots_tag or f"shots_{_e(env, 'SHOTS', '16')}"
    cfg = f"{fam.run_prefix}/{fam.cfg}" if fam.run_prefix else fam.cfg
    cfg = f"{cfg}/{fam.run_name}" if fam.run_name else cfg
    return f"{_output_root(env)}/base2new/{which}/{dataset}/{tag}/{fam.trainer}/{cfg}/seed{seed}"


def b2n_train(fam: Family, env: Env, dataset: str, seed: str | None = None) -> list[Run]:
    _data(env, "base2new_train.sh")
    runs = []
    for s in _p_seeds(env, seed):
        d = _b2n_dir(fam, env, "train_base", dataset, s)
        runs.append(Run("train.py", _p_run(fam, env, dataset, fam.cfg, d, s, ["DATASET.SUBSAMPLE_CLASSES", "base"]),
                        [d], "train", label=f"{fam.trainer} base2new train {dataset} seed{s}"))
    return runs


def b2n_test(fam: Family, env: Env, dataset: str, seed: str | None = None) -> list[Run]:
    _data(env, "base2new_test.sh")
    epoch = _e(env, "LOAD_EPOCH") or max_epoch(fam.cfg_path(fam.cfg))
    runs = []
    for s in _p_seeds(env, seed):
        model, d = _b2n_dir(fam, env, "train_base", dataset, s), _b2n_dir(fam, env, "test_new", dataset, s)
        extra = ["--model-dir", model, "--load-epoch", epoch, "--eval-only", "DATASET.SUBSAMPLE_CLASSES", "new"]
        runs.append(Run("train.py", _p_run(fam, env, dataset, fam.cfg, d, s, extra), [d], "eval", [model],
                        label=f"{fam.trainer} base2new test {dataset} seed{s}"))
    return runs


def xd_train(fam: Family, env: Env, seed: str | None = None) -> list[Run]:
    _data(env, "xd_train.sh")
    runs = []
    for s in _p_seeds(env, seed):
        d = f"{_output_root(env)}/imagenet/{fam.trainer}/{fam.xd_cfg}_{_e(env, 'SHOTS', '16')}shots/seed{s}"
        runs.append(Run("train.py", _p_run(fam, env, "imagenet", fam.xd_cfg, d, s, ["DATASET.SUBSAMPLE_CLASSES", "all"]),
                        [d], "train", label=f"{fam.trainer} xd train imagenet seed{s}"))
    return runs


def xd_test(fam: Family, env: Env, dataset: str, seed: str | None = None) -> list[Run]:
    _data(env, "xd_test.sh")
    epoch = _e(env, "LOAD_EPOCH") or max_epoch(fam.cfg_path(fam.xd_cfg))
    shots, out = _e(env, "SHOTS", "16"), _output_root(env)
    runs = []
    for s in _p_seeds(env, seed):
        model = f"{out}/imagenet/{fam.trainer}/{fam.xd_cfg}_{shots}shots/seed{s}"
        d = f"{out}/evaluation/{fam.trainer}/{fam.xd_cfg}_{shots}shots/{dataset}/seed{s}"
        extra = ["--model-dir", model, "--load-epoch", epoch, "--eval-only", "DATASET.SUBSAMPLE_CLASSES", "all"]
        runs.append(Run("train.py", _p_run(fam, env, dataset, fam.xd_cfg, d, s, extra), [d], "eval", [model],
                        label=f"{fam.trainer} xd test {dataset} seed{s}"))
    return runs


def _family_script(family: Callable[[Env], Family], proto: str, name: str) -> Callable[[list[str], Env], list[Run]]:
    def script(args: list[str], env: Env) -> list[Run]:
        if proto == "xd_train":
            _usage(args, 0, 1, f"scripts/{name}/xd_train.sh [SEED]")
            return xd_train(family(env), env, *args)
        _usage(args, 1, 2, f"scripts/{name}/{proto.replace('b2n', 'base2new')}.sh DATASET [SEED]")
        fn = {"b2n_train": b2n_train, "b2n_test": b2n_test, "xd_test": xd_test}[proto]
        return fn(family(env), env, *args)

    return script


def _nemesis_host_script(family: Callable[[Env], Family], proto: str, name: str
                         ) -> Callable[[list[str], Env], list[Run]]:
    def script(args: list[str], env: Env) -> list[Run]:
        _usage(args, 6, 7, f"scripts/{name}/{proto.replace('b2n', 'base2new')}.sh DATASET ALPHA NT NP CW BETA [SEED]")
        fam = nemesis_host(family(env), env, *args[1:6])
        return {"b2n_train": b2n_train, "b2n_test": b2n_test}[proto](fam, env, args[0], *args[6:])

    return script


def _dept_script(proto: str) -> Callable[[list[str], Env], list[Run]]:
    def script(args: list[str], env: Env) -> list[Run]:
        if proto == "xd_train":
            _usage(args, 1, 2, "scripts/dept/xd_train.sh BASE [SEED]")
        else:
            _usage(args, 2, 3, f"scripts/dept/{proto.replace('b2n', 'base2new')}.sh BASE DATASET [SEED]")
        fam = family_dept(env, args[0])
        fn = {"b2n_train": b2n_train, "b2n_test": b2n_test, "xd_train": xd_train, "xd_test": xd_test}[proto]
        return fn(fam, env, *args[1:])

    return script


# ------------------------------------------------------------------------------------------------ PLOT
def plot_train(args: list[str], env: Env) -> list[Run]:
    """scripts/plot/train.sh DATASET CFG CTP NCTX SHOTS CSC (N prompt sets: PLOT_N, default 4)"""
    _usage(args, 6, 6, "scripts/plot/train.sh DATASET CFG CTP NCTX SHOTS CSC")
    dataset, cfg, ctp, nctx, shots, csc = args
    data, out, n = _data(env, "scripts/plot/train.sh"), _output_root(env), _e(env, "PLOT_N", "4")
    k = "TRAINER.PLOT"
    runs = []
    for seed in _words(env, "SEEDS", "1 2 3"):
        d = f"{out}/{dataset}/PLOT/{cfg}_{shots}shots/N{n}_nctx{nctx}_csc{csc}_ctp{ctp}/seed{seed}"
        a = ["--root", data, "--seed", seed, "--trainer", "PLOT", "--dataset-config-file", _ds_cfg(dataset),
             "--config-file", _repo("configs", "trainers", "PLOT", f"{cfg}.yaml"), "--output-dir", d]
        if _e(env, "DO_TEST"):
            a.append("--do-test")
        a += [f"{k}.N", n, f"{k}.N_CTX", nctx, f"{k}.CSC", csc, f"{k}.CLASS_TOKEN_POSITION", ctp,
              "DATASET.NUM_SHOTS", shots, *_words(env, "EXTRA_OPTS")]
        runs.append(Run("train.py", a, [d], "train", label=f"PLOT {dataset} {shots}shots seed{seed}"))
    return runs


def plot_nemesis_train(args: list[str], env: Env) -> list[Run]:
    """scripts/plot_nemesis/train.sh DATASET CFG CTP NCTX SHOTS CSC ALPHA NT NP CW BETA"""
    _usage(args, 11, 11, "scripts/plot_nemesis/train.sh DATASET CFG CTP NCTX SHOTS CSC ALPHA NT NP CW BETA")
    dataset, cfg, ctp, nctx, shots, csc, alpha, nt, np_, cw, beta = args
    data, out, n = _data(env, "scripts/plot_nemesis/train.sh"), _output_root(env), _e(env, "PLOT_N", "4")
    name = f"N{n}_" + nemesis_name(alpha, nt, np_, cw, beta, nctx, csc, ctp)
    k = "TRAINER.PLOTNemesis"
    runs = []
    for seed in _words(env, "SEEDS", "1 2 3"):
        d = f"{out}/{dataset}/PLOTNemesis/Beta-{beta}/{cfg}_{shots}shots/{name}/seed{seed}"
        a = ["--root", data, "--seed", seed, "--trainer", "PLOTNemesis", "--dataset-config-file", _ds_cfg(dataset),
             "--config-file", _repo("configs", "trainers", "PLOTNemesis", f"{cfg}.yaml"), "--output-dir", d]
        if _e(env, "DO_TEST"):
            a.append("--do-test")
        a += [f"{k}.N", n, f"{k}.N_CTX", nctx, f"{k}.CSC", csc, f"{k}.CLASS_TOKEN_POSITION", ctp, f"{k}.A", alpha,
              f"{k}.NT", nt, f"{k}.NP", np_, f"{k}.CW", cw, f"{k}.BETA", beta, "DATASET.NUM_SHOTS", shots,
              *_words(env, "EXTRA_OPTS")]
        label = f"PLOTNemesis(beta {beta}) {dataset} {shots}shots seed{seed}"
        runs.append(Run("train.py", a, [d], "train", label=label))
    return runs


SCRIPTS: dict[str, Callable[[list[str], Env], list[Run]]] = {
    "coop/main.sh": coop_main,
    "coop/train.sh": coop_train,
    "coop/eval.sh": coop_eval,
    "coop/zeroshot.sh": coop_zeroshot,
    "coop_nemesis/train.sh": nemesis_train,
    "coop_nemesis/eval.sh": nemesis_eval,
    "coop_nemesis/main.sh": nemesis_main,
    "coop_nemesis/dg.sh": nemesis_dg,
    "coop_crt/eval.sh": crt_eval,
    "coop_crt/eval_loop.sh": crt_eval_loop,
    "plot/train.sh": plot_train,
    "plot_nemesis/train.sh": plot_nemesis_train,
}
for _name, _fam in (("cocoop", family_cocoop), ("kgcoop", family_kgcoop), ("maple", family_maple),
                    ("ivlp", family_ivlp), ("vpt", family_vpt)):
    for _proto, _file in (("b2n_train", "base2new_train"), ("b2n_test", "base2new_test"), ("xd_train", "xd_train"),
                          ("xd_test", "xd_test")):
        SCRIPTS[f"{_name}/{_file}.sh"] = _family_script(_fam, _proto, _name)
for _proto, _file in (("b2n_train", "base2new_train"), ("b2n_test", "base2new_test"), ("xd_train", "xd_train"),
                      ("xd_test", "xd_test")):
    SCRIPTS[f"dept/{_file}.sh"] = _dept_script(_proto)
for _name, _fam in (("cocoop_nemesis", family_cocoop_nemesis), ("kgcoop_nemesis", family_kgcoop_nemesis),
                    ("maple_nemesis", family_maple_nemesis), ("ivlp_nemesis", family_ivlp_nemesis),
                    ("vpt_nemesis", family_vpt_nemesis)):
    for _proto, _file in (("b2n_train", "base2new_train"), ("b2n_test", "base2new_test")):
        SCRIPTS[f"{_name}/{_file}.sh"] = _nemesis_host_script(_fam, _proto, _name)


def script_key(path: str) -> str:
    """``scripts/coop/main.sh`` | ``coop/main.sh`` | an absolute path -> the :data:`SCRIPTS` key."""
    p = osp.normpath(path).replace("\\", "/")
    parts = p.split("/")
    key = "/".join(parts[-2:]) if len(parts) >= 2 else p
    if key not in SCRIPTS:
        raise SweepError(f"no launcher form of script {path!r}; known: {', '.join(sorted(SCRIPTS))}")
    return key


def expand_script(path: str, args: list[str], env: Env) -> list[Run]:
    """The runs that ``bash scripts/<path> ARGS...`` issues under ``env``."""
    return SCRIPTS[script_key(path)](list(args), env)
