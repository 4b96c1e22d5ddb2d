"""The launcher's expansion of every sweep script equals, argument for argument, what the bash script issues
(under a stub ``python`` that records each argv), and a YAML spec expands to the same runs as the scripts."""
from __future__ import annotations

import os
import subprocess
import textwrap

import pytest

from sweeps import protocols
from sweeps.runs import REPO
from sweeps.spec import SpecError, expand_spec, load_spec

# records argv (unit-separated, one call per line), writes a finished-looking log so the scripts go on
_STUB = r"""#!/usr/bin/env bash
{ printf '%s\x1f' "$@"; printf '\n'; } >> "$CALLS"
out=""; prev=""
for a in "$@"; do [ "$prev" = "--output-dir" ] && out="$a"; prev="$a"; done
if [ -n "$out" ]; then mkdir -p "$out"; printf 'Elapsed\n* macro_f1: 1.0%%\n' > "$out/log.txt"; fi
"""


@pytest.fixture
def stub(tmp_path):
    py = tmp_path / "python"
    py.write_text(_STUB)
    py.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("SEEDS", "OUTPUT_ROOT", "EXTRA_OPTS", "DATA", "CFG")}
    env.update(PYTHON=str(py), CALLS=str(tmp_path / "calls"), OUTPUT_ROOT=str(tmp_path / "out"),
               DATA=str(tmp_path / "data"), SEEDS="1 2", CRT_ROOT=str(tmp_path / "crt"),
               OUTPUT_DG_ROOT=str(tmp_path / "dg"))
    return env, tmp_path


def script_calls(script: str, args: list[str], env: dict) -> list[list[str]]:
    calls = env["CALLS"]
    if os.path.exists(calls):
        os.remove(calls)
    r = subprocess.run(["bash", os.path.join(REPO, "scripts", script), *args], env=env, capture_output=True,
                       text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    with open(calls) as f:
        return [line.rstrip("\n").split("\x1f")[:-1] for line in f]


CASES = [
    ("coop/main.sh", ["eurosat", "rn50_ep50", "end", "16", "1", "False"], {}),
    ("coop/main.sh", ["dtd", "rn50", "middle", "8", "4", "True"], {"DO_TEST": "1", "EXTRA_OPTS": "OPTIM.MAX_EPOCH 3"}),
    ("coop/eval.sh", ["imagenet_a", "rn50"], {"LOAD_EPOCH": "7"}),
    ("coop/zeroshot.sh", ["eurosat", "rn50"], {}),
    ("coop/zeroshot.sh", ["dtd", "vit_b16"], {"TRAINER": "ZeroshotCLIP2"}),
    ("coop_nemesis/train.sh", ["dtd", "rn50", "end", "16", "16", "False", "1.0", "two", "2", "0.5", "1.0"], {}),
    ("coop_nemesis/train.sh", ["dtd", "rn50", "end", "16", "2", "False", "1.0", "two", "2", "0.5", "0.0"],
     {"DO_TEST": "1"}),
    ("coop_nemesis/eval.sh", ["CoOpNemesis", "imagenet_a", "1.0", "two", "2", "0.5", "0.0"], {}),
    ("coop_nemesis/main.sh", ["eurosat", "imagenet"], {"SHOTS_LIST": "1 4 16", "SEEDS": "1"}),
    ("coop_nemesis/main.sh", ["dtd"], {"METHODS": "pan coop", "CFG": "rn50_ep50", "PAN_BETA": "0.5", "NP": "2"}),
    ("coop_crt/eval.sh", ["rn50_ep50", "end", "16", "1", "False", "auto", "rescale", "2", "0.001"],
     {"DATASETS": "eurosat imagenet"}),
    ("coop_crt/eval.sh", ["rn50", "end", "16", "16", "False", "200", "replace", "0", "0"], {"DATASETS": "dtd"}),
    ("coop_crt/eval_loop.sh", [], {"DATASETS": "eurosat imagenet", "POSITIONS": "0 5"}),
    ("cocoop/base2new_train.sh", ["eurosat"], {}),
    ("cocoop/base2new_test.sh", ["eurosat", "2"], {}),
    ("cocoop/xd_train.sh", [], {}),
    ("cocoop/xd_test.sh", ["dtd"], {"LOAD_EPOCH": "3"}),
    ("kgcoop/base2new_train.sh", ["dtd"], {"W": "2.0"}),
    ("kgcoop/base2new_test.sh", ["dtd"], {}),
    ("kgcoop/xd_test.sh", ["dtd", "1"], {"SHOTS": "4"}),
    ("maple/base2new_test.sh", ["ucf101"], {}),
    ("maple/xd_train.sh", ["3"], {}),
    ("maple/xd_test.sh", ["ucf101"], {}),
    ("dept/base2new_train.sh", ["CoOp", "eurosat"], {}),
    ("dept/base2new_test.sh", ["MaPLe", "eurosat", "1"], {}),
    ("dept/xd_train.sh", ["KgCoOp"], {"BASELINE": "1"}),
    ("dept/xd_test.sh", ["CoCoOp", "imagenet_r"], {}),
]


@pytest.mark.parametrize("script,args,extra", CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES])
def test_script_expansion_equals_the_script(stub, script, args, extra):
    env, _ = stub
    env = dict(env, **extra)
    want = script_calls(script, args, env)
    runs = protocols.expand_script("scripts/" + script, args, env)
    got = [r.command(env["PYTHON"])[1:] for r in runs]
    assert want and got == want
    for r, argv in zip(runs, want):
        if "--output-dir" in argv:  # the run folder is the script's --output-dir
            assert r.folders == [argv[argv.index("--output-dir") + 1]]


def test_script_usage_errors(stub):
    env, _ = stub
    with pytest.raises(protocols.SweepError, match="usage"):
        protocols.expand_script("scripts/coop/main.sh", ["eurosat"], env)
    with pytest.raises(protocols.SweepError, match="DATA"):
        protocols.expand_script("coop/main.sh", ["eurosat", "rn50", "end", "16", "1", "False"],
                                {k: v for k, v in env.items() if k != "DATA"})
    with pytest.raises(protocols.SweepError, match="no launcher form"):
        protocols.expand_script("scripts/foo/bar.sh", [], env)
    with pytest.raises(protocols.SweepError, match="BASE"):
        protocols.expand_script("dept/xd_train.sh", ["PLOT"], env)


def test_crt_loop_folders_match_crt_sweep(stub):
    env, tmp = stub
    env = dict(env, DATASETS="dtd", SEEDS="1 3")
    run = protocols.crt_eval_loop([], env)[0]
    assert run.program == "tools/crt_sweep.py" and len(run.folders) == 2 * (1 + 3 + 3)
    base = f"{tmp}/crt/CoOpCRT/dtd/CoOp/rn50_ep50_1shots"
    assert f"{base}/replace/pos-2_std-0/seed3" in run.folders and f"{base}/rescale/pos-0_scale-0.001/seed1" in run.folders
    assert run.needs == [f"{tmp}/out/dtd/CoOp/rn50_ep50_1shots/nctx16_cscFalse_ctpend/seed{s}" for s in (1, 3)]


# ------------------------------------------------------------------------------------------- YAML spec
def write(tmp_path, text, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def test_spec_fewshot_equals_nemesis_main(stub):
    env, tmp = stub
    spec = load_spec(write(tmp, f"""
        protocol: fewshot
        data: {tmp}/data
        output_root: {tmp}/out
        datasets: [eurosat, imagenet]
        methods: [coop, pun, pan]
        shots: [1, 4, 16]
        seeds: [1, 2]
        overrides: {{OPTIM.MAX_EPOCH: 2}}
        """))
    runs = expand_spec(spec)
    want = script_calls("coop_nemesis/main.sh", ["eurosat", "imagenet"],
                        dict(env, SHOTS_LIST="1 4 16", EXTRA_OPTS="OPTIM.MAX_EPOCH 2"))
    assert [r.command()[1:] for r in runs] == want
    assert len(runs) == 2 * 3 * 3 * 2


def test_spec_nseeds_is_seeds_one_to_n(stub):
    env, tmp = stub
    base = f"""
        protocol: fewshot
        data: {tmp}/data
        output_root: {tmp}/out
        datasets: [eurosat]
        methods: [coop]
        shots: [16]
        """
    runs = expand_spec(load_spec(write(tmp, base + "nseeds: 5\n")))
    explicit = expand_spec(load_spec(write(tmp, base + "seeds: [1, 2, 3, 4, 5]\n")))
    assert [r.command() for r in runs] == [r.command() for r in explicit]
    assert sorted(r.folders[0].rstrip("/").rsplit("seed", 1)[-1] for r in runs) == ["1", "2", "3", "4", "5"]
    with pytest.raises(SpecError, match="not both"):
        load_spec(write(tmp, base + "nseeds: 2\n        seeds: [1]\n"))
    with pytest.raises(SpecError, match="positive integer"):
        load_spec(write(tmp, base + "nseeds: 0\n"))


def test_spec_base2new_and_xd(stub):
    env, tmp = stub
    spec = load_spec(write(tmp, f"""
        protocol: base2new
        data: {tmp}/data
        output_root: {tmp}/out
        datasets: [eurosat, dtd]
        methods: [cocoop, kgcoop, dept-maple]
        seeds: [1]
        """))
    runs = expand_spec(spec)
    e1 = dict(env, SEEDS="1")
    want = []
    for fam, pre in (("cocoop", []), ("kgcoop", []), ("dept", ["MaPLe"])):
        for ds in ("eurosat", "dtd"):
            want += script_calls(f"{fam}/base2new_train.sh", pre + [ds], e1)
            want += script_calls(f"{fam}/base2new_test.sh", pre + [ds], e1)
    assert sorted(r.command()[1:] for r in runs) == sorted(want)
    tests = [r for r in runs if r.kind == "eval"]
    trains = {r.folder for r in runs if r.kind == "train"}
    assert len(tests) == 6 and all(r.needs and set(r.needs) <= trains for r in tests)

    spec = load_spec(write(tmp, f"""
        protocol: xd
        data: {tmp}/data
        output_root: {tmp}/out
        datasets: [dtd, imagenet_a]
        methods: [maple, coop]
        seeds: [1, 2]
        """, "xd.yaml"))
    runs = expand_spec(spec)
    want = script_calls("maple/xd_train.sh", [], env)
    for ds in ("dtd", "imagenet_a"):
        want += script_calls("maple/xd_test.sh", [ds], env)
    want += script_calls("coop/main.sh", ["imagenet", "rn50", "end", "16", "16", "False"], env)
    for ds in ("dtd", "imagenet_a"):
        want += script_calls("coop/eval.sh", [ds, "rn50"], env)
    assert sorted(r.command()[1:] for r in runs) == sorted(want)


def test_spec_errors(tmp_path):
    with pytest.raises(SpecError, match="unknown key 'method'"):
        expand_spec(load_spec(write(tmp_path, "protocol: fewshot\ndata: /d\nmethod: [coop]\ndatasets: [dtd]\n")))
    with pytest.raises(SpecError, match="protocol"):
        expand_spec(load_spec(write(tmp_path, "protocol: fewshots\ndata: /d\ndatasets: [dtd]\n")))
    with pytest.raises(SpecError, match="unknown method 'cocoop'"):
        expand_spec(load_spec(write(tmp_path, "protocol: fewshot\ndata: /d\nmethods: [cocoop]\ndatasets: [dtd]\n")))
    with pytest.raises(SpecError, match="not found"):
        load_spec(str(tmp_path / "nope.yaml"))


SHIPPED = {"fewshot": 11 * 5 * 3 * 3, "zeroshot": 22, "dg": 3 * 3 + 3 * 4 * 3, "crt": 11 * 5,
           "base2new": 3 * 11 * 2 * 3, "dept_base2new": 4 * 11 * 2 * 3, "xd": 3 * (3 + 14 * 3), "embedded": 6}


def test_shipped_specs_expand(monkeypatch):
    monkeypatch.setenv("DATA", "/data")
    spec_dir = os.path.join(REPO, "configs", "sweeps")
    assert sorted(n[:-5] for n in os.listdir(spec_dir)) == sorted(SHIPPED)
    for name, n in SHIPPED.items():
        runs = expand_spec(load_spec(os.path.join(spec_dir, f"{name}.yaml")))
        assert len(runs) == n, name
        assert all(os.path.isfile(r.args[r.args.index("--dataset-config-file") + 1]) for r in runs), name


def test_shipped_specs_pass_the_train_checks(monkeypatch):
    from sweeps.check import check_runs

    monkeypatch.setenv("DATA", "/data")
    for name in ("embedded", "dg"):
        check_runs(expand_spec(load_spec(os.path.join(REPO, "configs", "sweeps", f"{name}.yaml"))))
