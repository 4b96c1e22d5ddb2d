"""The reference-named scripts and the paper's other tables as one command (stub ``python``): scripts/coop/train.sh,
scripts/coop/eval.sh's two signatures, the Nemesis base-to-new hosts (CoCoOp, KgCoOp, MaPLe), IVLP / VPT
base-to-new and cross-dataset, and the domain-generalisation table scripts/coop_nemesis/dg.sh: folders, options,
skip / continue rules, and the launcher's expansion of each equal to what the script issues."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sweeps import protocols
from tests.helpers.script_stub import python_stub_env
from tests.test_sweep_expand import script_calls, stub  # noqa: F401  (the launcher-equality fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEM = ["1.0", "two", "2", "0.5", "0.0"]  # ALPHA NT NP CW BETA (PAN)

CASES = [
    ("coop/train.sh", ["eurosat", "rn50_ep50", "end", "16", "1", "False"], {}),
    ("coop/train.sh", ["dtd", "rn50", "front", "8", "4", "True"], {"DO_TEST": "1", "EXTRA_OPTS": "OPTIM.MAX_EPOCH 3"}),
    ("coop/eval.sh", ["CoOp", "imagenet_a"], {}),
    ("coop/eval.sh", ["CoOpCRT", "imagenet_sketch"], {"CFG": "rn50_ep50", "LOAD_EPOCH": "3"}),
    ("coop/eval.sh", ["imagenetv2", "rn50"], {}),
    ("coop_nemesis/dg.sh", [], {"SEEDS": "1"}),
    ("coop_nemesis/dg.sh", ["imagenet_r"], {"METHODS": "pan", "ALPHAS": "10.0", "TRAIN": "0", "BACKBONE_CFG": "vit_b16"}),
    ("cocoop_nemesis/base2new_train.sh", ["eurosat", *NEM], {}),
    ("cocoop_nemesis/base2new_test.sh", ["eurosat", "20.0", "two", "2", "0.5", "1.0", "2"], {}),
    ("kgcoop_nemesis/base2new_train.sh", ["dtd", *NEM], {"W": "2.0"}),
    ("kgcoop_nemesis/base2new_test.sh", ["dtd", *NEM, "1"], {}),
    ("maple_nemesis/base2new_train.sh", ["ucf101", "1.0", "two", "1", "0.5", "1.0"], {"TARGET": "vision"}),
    ("maple_nemesis/base2new_test.sh", ["ucf101", *NEM], {}),
    ("ivlp_nemesis/base2new_train.sh", ["eurosat", *NEM], {"TARGET": "vision"}),
    ("ivlp_nemesis/base2new_test.sh", ["eurosat", *NEM], {}),
    ("vpt_nemesis/base2new_train.sh", ["dtd", "1.0", "two", "2", "0.5", "1.0", "1"], {}),
    ("vpt_nemesis/base2new_test.sh", ["dtd", *NEM], {}),
    ("ivlp/base2new_train.sh", ["eurosat"], {}),
    ("ivlp/base2new_test.sh", ["eurosat", "2"], {"CFG": "vit_b16_c2_ep5_batch4_4ctx_language_only"}),
    ("ivlp/xd_train.sh", [], {}),
    ("ivlp/xd_test.sh", ["dtd"], {}),
    ("vpt/base2new_train.sh", ["dtd", "3"], {}),
    ("vpt/base2new_test.sh", ["dtd"], {}),
    ("vpt/xd_train.sh", ["1"], {}),
    ("vpt/xd_test.sh", ["imagenet_a"], {"LOAD_EPOCH": "2"}),
]


@pytest.mark.parametrize("script,args,extra", CASES, ids=[f"{c[0]}:{' '.join(c[1])}" for c in CASES])
def test_launcher_expansion_equals_the_script(stub, script, args, extra):  # noqa: F811
    env, _ = stub
    env = dict(env, **extra)
    want = script_calls(script, args, env)
    runs = protocols.expand_script("scripts/" + script, args, env)
    assert want and [r.command(env["PYTHON"])[1:] for r in runs] == want
    for r, argv in zip(runs, want):
        assert r.folders == [argv[argv.index("--output-dir") + 1]]
        if "--model-dir" in argv:
            assert r.needs == [argv[argv.index("--model-dir") + 1]]


def test_registered_trainer_list_of_eval_sh_is_the_registry():
    from trainers import TRAINER_REGISTRY

    out = subprocess.run(["bash", "-c", f'REPO={ROOT}; source <(sed -n "/^registered_trainers()/,/^}}/p" '
                                        f'{ROOT}/scripts/coop/eval.sh); registered_trainers'],
                         capture_output=True, text=True, check=True).stdout.split()
    ours = [n for n in TRAINER_REGISTRY.registered_names()  # not the test trainers other test files register
            if TRAINER_REGISTRY.get(n).__module__.startswith("trainers.")]
    assert sorted(out) == sorted(ours) == sorted(protocols.registered_trainers())
    assert {"CoOp", "CoOpCRT", "IVLP", "VPT"} <= set(out)


@pytest.fixture
def stubbed(tmp_path):
    env, calls = python_stub_env(tmp_path, OUTPUT_DG_ROOT=str(tmp_path / "dg"))
    return env, calls, tmp_path


def sh(script, *args, env):
    return subprocess.run(["bash", os.path.join(ROOT, "scripts", script), *map(str, args)], env=env, cwd="/",
                          capture_output=True, text=True)


def lines(calls):
    return calls.read_text().splitlines() if calls.exists() else []


def test_coop_train_is_main_sh_and_follows_the_sweep_rules(stubbed):
    env, calls, tmp = stubbed
    assert sh("coop/train.sh", "eurosat", "rn50_ep50", "end", 16, 1, False, env=env).returncode == 0
    seed1 = tmp / "out/eurosat/CoOp/rn50_ep50_1shots/nctx16_cscFalse_ctpend/seed1"
    assert (seed1 / "log.txt").exists() and len(lines(calls)) == 2
    r = sh("coop/main.sh", "eurosat", "rn50_ep50", "end", 16, 1, False, env=env)  # the same folders
    assert r.stdout.count("skip (finished)") == 2 and len(lines(calls)) == 2
    (seed1 / "log.txt").write_text("epoch [1/50] ...\n")  # interrupted: continued in place, never emptied
    (seed1 / "keep.txt").write_text("x")
    r = sh("coop/train.sh", "eurosat", "rn50_ep50", "end", 16, 1, False, env=env)
    assert "continue (interrupted)" in r.stdout and (seed1 / "keep.txt").exists() and len(lines(calls)) == 3
    r = sh("coop/train.sh", "eurosat", "rn50_ep50", "end", 16, 1, False, env=dict(env, FORCE="1"))
    assert r.stdout.count("redo (FORCE=1)") == 2 and all("--force" in x for x in lines(calls)[3:])
    r = sh("coop/train.sh", "eurosat", env=env)
    assert r.returncode == 2 and "usage:" in r.stderr and "train.sh" in r.stderr


def test_coop_eval_two_signatures(stubbed):
    env, calls, tmp = stubbed
    env = dict(env, SEEDS="1")
    assert sh("coop/eval.sh", "CoOp", "imagenet_a", env=env).returncode == 0  # Nemesis': TRAINER DATASET
    nem = lines(calls)[-1]
    assert f"--output-dir {tmp}/dg/evaluation/imagenet_a/CoOp/seed1 " in nem
    assert f"--model-dir {tmp}/out/imagenet/CoOp/rn50_16shots/nctx16_cscFalse_ctpend/seed1 --load-epoch 50" in nem
    assert "--trainer CoOp " in nem and "configs/datasets/imagenet_a.yaml" in nem and "CoOp/rn50.yaml" in nem
    assert sh("coop/eval.sh", "imagenet_a", "rn50", env=env).returncode == 0  # CoOp's: DATASET CFG
    coop = lines(calls)[-1]
    assert f"--output-dir {tmp}/out/evaluation/CoOp/rn50_16shots/nctx16_cscFalse_ctpend/imagenet_a/seed1 " in coop
    assert "TRAINER.COOP.N_CTX 16" in coop
    r = sh("coop/eval.sh", "CoOp", "imagenet_a", env=env)
    assert "skip (finished)" in r.stdout and len(lines(calls)) == 2
    assert sh("coop/eval.sh", "CoOp", env=env).returncode == 2


def test_nemesis_host_folders_carry_the_nemesis_arguments(stubbed):
    env, calls, tmp = stubbed
    env = dict(env, SEEDS="1")
    assert sh("cocoop_nemesis/base2new_train.sh", "eurosat", 10.0, "two", 2, 0.5, 0.0, env=env).returncode == 0
    assert sh("cocoop_nemesis/base2new_test.sh", "eurosat", 10.0, "two", 2, 0.5, 0.0, env=env).returncode == 0
    assert sh("cocoop_nemesis/base2new_train.sh", "eurosat", 20.0, "two", 2, 0.5, 1.0, env=env).returncode == 0
    b2n = tmp / "out/base2new"
    run = "eurosat/shots_16/CoCoOpNemesis/Beta-0.0/vit_b16_c4_ep10_batch1_ctxv1/alpha10.0_cw0.5_pn2_nttwo/seed1"
    assert (b2n / "train_base" / run / "log.txt").exists() and (b2n / "test_new" / run / "log.txt").exists()
    pun = "eurosat/shots_16/CoCoOpNemesis/Beta-1.0/vit_b16_c4_ep10_batch1_ctxv1/alpha20.0_nttwo/seed1"
    assert (b2n / "train_base" / pun / "log.txt").exists()
    train, test, _ = lines(calls)
    assert "--trainer CoCoOpNemesis" in train and "configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml" in train
    assert "REGULARISER.NEMESIS.A 10.0 REGULARISER.NEMESIS.NT two REGULARISER.NEMESIS.NP 2 REGULARISER.NEMESIS.CW " \
           "0.5 REGULARISER.NEMESIS.BETA 0.0" in train and "SUBSAMPLE_CLASSES base" in train
    assert f"--model-dir {b2n}/train_base/{run} --load-epoch 10 --eval-only" in test and "SUBSAMPLE_CLASSES new" in test
    assert sh("kgcoop_nemesis/base2new_train.sh", "dtd", 1.0, "two", 2, 0.5, 1.0, env=env).returncode == 0
    kg = lines(calls)[-1]
    assert "/train_base/dtd/shots_16_8.0/KgCoOpNemesis/Beta-1.0/vit_b16_ep100_ctxv1/alpha1.0_nttwo/seed1" in kg
    assert "TRAINER.COOP.W 8.0" in kg and "TRAINER.COOP.N_CTX 4" in kg
    assert sh("maple_nemesis/base2new_train.sh", "dtd", 1.0, "two", 1, 0.5, 0.0, env=dict(env, TARGET="vision")
              ).returncode == 0
    mp = lines(calls)[-1]
    assert "/MaPLeNemesis/Beta-0.0/vit_b16_c2_ep5_batch4_2ctx/alpha1.0_cw0.5_pn1_nttwo_targetvision/seed1" in mp
    assert "REGULARISER.NEMESIS.TARGET vision" in mp and "configs/trainers/MaPLe/" in mp
    r = sh("maple_nemesis/base2new_train.sh", "dtd", 1.0, "two", 1, 0.5, 0.0, env=dict(env, TARGET="vision"))
    assert "skip (finished)" in r.stdout
    assert sh("vpt_nemesis/base2new_train.sh", "dtd", 1.0, "two", 2, 0.5, 1.0, env=env).returncode == 0
    vp = lines(calls)[-1]  # VPTNemesis penalises the visual prompts by its own default (no TARGET needed)
    assert "--trainer VPTNemesis" in vp and "configs/trainers/VPT/vit_b16_c2_ep5_batch4_4.yaml" in vp
    assert "/VPTNemesis/Beta-1.0/vit_b16_c2_ep5_batch4_4/alpha1.0_nttwo/seed1" in vp and "TARGET" not in vp
    r = sh("cocoop_nemesis/base2new_train.sh", "eurosat", 1.0, env=env)
    assert r.returncode == 2 and "ALPHA NT NP CW BETA" in r.stderr


def test_ivlp_vpt_protocol_scripts(stubbed):
    env, calls, tmp = stubbed
    env = dict(env, SEEDS="1")
    assert sh("ivlp/base2new_train.sh", "eurosat", env=env).returncode == 0
    assert sh("ivlp/base2new_test.sh", "eurosat", env=env).returncode == 0
    assert sh("vpt/xd_train.sh", env=env).returncode == 0
    assert sh("vpt/xd_test.sh", "imagenet_r", env=env).returncode == 0
    tr, te, xtr, xte = lines(calls)
    assert "--trainer IVLP" in tr and "IVLP/vit_b16_c2_ep5_batch4_2+2ctx.yaml" in tr
    assert f"{tmp}/out/base2new/train_base/eurosat/shots_16/IVLP/vit_b16_c2_ep5_batch4_2+2ctx/seed1" in tr
    assert "--load-epoch 5 --eval-only" in te and "SUBSAMPLE_CLASSES new" in te
    assert f"{tmp}/out/imagenet/VPT/vit_b16_c2_ep5_batch4_4_16shots/seed1" in xtr and "--trainer VPT" in xtr
    assert f"--output-dir {tmp}/out/evaluation/VPT/vit_b16_c2_ep5_batch4_4_16shots/imagenet_r/seed1" in xte


def test_dg_table_one_command_connects_to_the_fewshot_sweep(stubbed):
    env, calls, tmp = stubbed
    env = dict(env, SEEDS="1")
    # the few-shot sweep trains the ImageNet models first ...
    assert sh("coop_nemesis/main.sh", "imagenet", env=dict(env, SHOTS_LIST="16")).returncode == 0
    assert len(lines(calls)) == 3
    # ... the table trains only what is missing (A = 10 for PUN and PAN) and evaluates everything
    r = sh("coop_nemesis/dg.sh", env=env)
    assert r.returncode == 0, r.stderr
    new = lines(calls)[3:]
    trains = [x for x in new if "--eval-only" not in x]
    assert len(trains) == 2 and all("alpha10.0" in x and "imagenet.yaml" in x for x in trains)
    assert r.stdout.count("skip (finished)") == 3
    evals = [x for x in new if "--eval-only" in x]
    assert len(evals) == 4 * 5  # 4 targets x (CoOp + PUN x 2 + PAN x 2)
    for target in ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"):
        assert (tmp / f"out/evaluation/CoOp/rn50_ep50_16shots/nctx16_cscFalse_ctpend/{target}/seed1/log.txt").exists()
        for name in ("Beta-1.0/rn50_ep50_16shots/alpha1.0_nctx16_cscFalse_ctpend_nttwo",
                     "Beta-1.0/rn50_ep50_16shots/alpha10.0_nctx16_cscFalse_ctpend_nttwo",
                     "Beta-0.0/rn50_ep50_16shots/alpha1.0_cw0.5_pn2_nctx16_cscFalse_ctpend_nttwo",
                     "Beta-0.0/rn50_ep50_16shots/alpha10.0_cw0.5_pn2_nctx16_cscFalse_ctpend_nttwo"):
            assert (tmp / f"dg/{target}/CoOpNemesis/{name}/seed1/log.txt").exists()
    model_dirs = {x.split("--model-dir ")[1].split()[0] for x in evals}
    trained = {x.split("--output-dir ")[1].split()[0] for x in lines(calls) if "--eval-only" not in x}
    assert model_dirs == trained  # every evaluation reads a model this sweep (or the few-shot sweep) trained
    r = sh("coop_nemesis/dg.sh", env=env)  # everything finished: nothing runs again
    assert len(lines(calls)) == 3 + 2 + 20 and r.stdout.count("skip (finished)") == 5 + 20
    r = sh("coop_nemesis/dg.sh", "imagenet_x", env=env)
    assert r.returncode == 2 and "unknown dataset imagenet_x" in r.stderr
    r = sh("coop_nemesis/dg.sh", env=dict(env, METHODS="coop plot"))
    assert r.returncode == 2 and "unknown method plot" in r.stderr


def test_launcher_dry_run_of_the_dg_table(stub):  # noqa: F811
    env, tmp = stub
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "sweep.py"), "--dry-run",
                        "scripts/coop_nemesis/dg.sh", "imagenet_a"], env=dict(env, SEEDS="1"), capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("--eval-only") == 5 and "dg/imagenet_a/CoOpNemesis/Beta-0.0" in r.stdout


def test_spec_base2new_ivlp_vpt(stub, tmp_path):  # noqa: F811
    from sweeps.spec import expand_spec, load_spec

    env, _ = stub
    spec = tmp_path / "b2n.yaml"
    spec.write_text(f"protocol: base2new\ndata: {tmp_path}/data\noutput_root: {env['OUTPUT_ROOT']}\n"
                    "datasets: [eurosat]\nmethods: [ivlp, vpt]\nseeds: [1]\n")
    runs = expand_spec(load_spec(str(spec)))
    e1 = dict(env, SEEDS="1", DATA=f"{tmp_path}/data")
    want = []
    for fam in ("ivlp", "vpt"):
        want += script_calls(f"{fam}/base2new_train.sh", ["eurosat"], e1)
        want += script_calls(f"{fam}/base2new_test.sh", ["eurosat"], e1)
    assert sorted(r.command()[1:] for r in runs) == sorted(want)


def test_report_reads_the_new_folders_as_the_papers_variants():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import report

    ds = {"eurosat", "imagenet", "imagenet_a"}
    e = report.classify("base2new/train_base/eurosat/shots_16/CoCoOpNemesis/Beta-0.0/vit_b16_c4_ep10_batch1_ctxv1/"
                        "alpha10.0_cw0.5_pn2_nttwo", ds)
    assert (e.protocol, e.method, e.cfg, e.variant, e.split) == (
        "base2new", "CoCoOpNemesis", "vit_b16_c4_ep10_batch1_ctxv1", "PAN A=10.0", "base")
    new = report.classify("base2new/test_new/eurosat/shots_16/CoCoOpNemesis/Beta-0.0/vit_b16_c4_ep10_batch1_ctxv1/"
                          "alpha10.0_cw0.5_pn2_nttwo", ds)
    assert new.pair == e.pair and new.split == "new"  # base and new of one setting are joined
    pun = report.classify("base2new/train_base/eurosat/shots_16/CoCoOpNemesis/Beta-1.0/vit_b16_c4_ep10_batch1_ctxv1/"
                          "alpha20.0_nttwo", ds)
    assert pun.variant == "PUN A=20.0" and pun.pair != e.pair
    plain = report.classify("base2new/train_base/eurosat/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1", ds)
    assert (plain.cfg, plain.variant) == ("vit_b16_c4_ep10_batch1_ctxv1", None)
    dg = report.classify("imagenet_a/CoOpNemesis/Beta-1.0/rn50_ep50_16shots/alpha10.0_nctx16_cscFalse_ctpend_nttwo", ds)
    assert (dg.protocol, dg.method, dg.variant, dg.shots) == ("dg", "CoOpNemesis", "PUN A=10.0", 16)
    coop = report.classify("evaluation/CoOp/rn50_ep50_16shots/nctx16_cscFalse_ctpend/imagenet_a", ds)
    assert (coop.protocol, coop.method, coop.cfg) == ("dg", "CoOp", "rn50_ep50")
