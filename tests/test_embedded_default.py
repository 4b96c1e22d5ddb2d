"""The main job on the embedded default (tools/embedded_default.py --quick): numbers, outputs, skip on re-run.

One quick job (16 shots, seed 1, zero-shot + CoOp + PUN, 20 epochs, corruption at 2 positions) runs once per
module, in-process (about 40-60 s on 2 CPU cores); the other tests are cheap.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil
import time

import sys

import pytest

TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    import embedded_default as ed

    out = str(tmp_path_factory.mktemp("embedded") / "out")
    t0 = time.time()
    code = ed.main(["--quick", "--output", out])
    assert code == 0
    return {"out": out, "ed": ed, "seconds": time.time() - t0}


def _acc(folder: str) -> float:
    with open(osp.join(folder, "results.json")) as f:
        return json.load(f)["accuracy"]


def _last_norm(folder: str) -> float:
    with open(osp.join(folder, "norms.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()][-1]["matrix_norm"]


def _curves(ax) -> list[str]:
    """Labels of the drawn curves (error-bar caps are unlabelled lines)."""
    return [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def test_zero_shot_above_twice_chance(job):
    acc = _acc(job["ed"].zs_dir(job["out"]))
    assert acc >= 10.0, acc  # 20 classes: chance 5%


def test_coop_beats_zero_shot_by_ten_points(job):
    ed, out = job["ed"], job["out"]
    zs = _acc(ed.zs_dir(out))
    coop = _acc(osp.join(ed.method_base(out, "coop", 16), "seed1"))
    assert coop >= zs + 10.0, (coop, zs)


def test_nemesis_prompt_norm_below_coop_same_seed(job):
    import torch

    ed, out = job["ed"], job["out"]
    coop_dir = osp.join(ed.method_base(out, "coop", 16), "seed1")
    pun_dir = osp.join(ed.method_base(out, "pun", 16), "seed1")
    assert _last_norm(pun_dir) < _last_norm(coop_dir)
    # the same from the saved checkpoints (the context the model actually uses)
    norms = []
    for d in (coop_dir, pun_dir):
        ckpt = osp.join(d, "prompt_learner", "model.pth.tar-20")
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        norms.append(float(state["ctx"].float().norm()))
    assert norms[1] < norms[0], norms


def test_results_table_json_and_figures(job):
    ed, out = job["ed"], job["out"]
    with open(osp.join(out, "results.md")) as f:
        md = f.read()
    for needle in ("Zero-shot CLIP", "| CoOp |", "CoOp + Nemesis (PUN)", "Corruption of the CoOp 16-shot prompt",
                   "replace (std 0)", "scale (x0.001)"):
        assert needle in md, needle
    with open(osp.join(out, "results.json")) as f:
        res = json.load(f)
    assert set(res["methods"]) == {"zs", "coop", "pun"}
    assert res["methods"]["coop"]["accuracy_mean"]["16"] == pytest.approx(
        _acc(osp.join(ed.method_base(out, "coop", 16), "seed1")), abs=0.01)
    assert res["crt"]["original"] == pytest.approx(_acc(osp.join(ed.method_base(out, "coop", 16), "seed1")), abs=0.01)
    assert set(res["crt"]["accuracy"]["replace (std 0)"]) == {"0", "1"}
    for name in ("norms.png", "fewshot.png"):
        assert osp.getsize(osp.join(out, name)) > 10_000, name
    # the figures' content, through the same functions the job uses
    import plot_fewshot
    import plot_norms

    curves = {ed.LABELS[k]: plot_fewshot.collect_curve(
        ed.method_base(out, k, 0).replace("_0shots", "_{shots}shots"), [16]) for k in ("coop", "pun")}
    fig, ax = plot_fewshot.make_figure(curves, plot_fewshot.read_accuracy(ed.zs_dir(out)))
    labels = _curves(ax)
    assert len(labels) == 3 and labels[:2] == ["CoOp", "CoOp + Nemesis (PUN)"], labels
    assert labels[2].startswith("Zero-shot CLIP")
    fig, (ax_pos, ax_mat, ax_acc, _) = plot_norms.make_figure(
        [osp.join(ed.method_base(out, k, 16), "seed1") for k in ("coop", "pun")], ["CoOp", "PUN"])
    assert [len(ax.get_lines()) for ax in ax_pos] == [16, 16] and len(ax_mat.get_lines()) == 2
    assert len(ax_acc.get_lines()) == 2  # --do-test: per-epoch test accuracy of both runs
    assert len(ax_acc.get_lines()[0].get_xdata()) == 20


def test_parse_test_res_reads_the_run_folders(job):
    import parse_test_res

    ed, out = job["ed"], job["out"]
    seed_dir = osp.join(ed.method_base(out, "coop", 16), "seed1")
    assert parse_test_res.parse_log(osp.join(seed_dir, "log.txt")) == pytest.approx(_acc(seed_dir), abs=0.05)


def test_second_invocation_skips_finished_runs(job, capsys):
    ed, out = job["ed"], job["out"]
    runs = ed.build_runs(ed.parse(["--quick", "--output", out]))
    logs = [osp.join(r.folder, "log.txt") for r in runs]
    before = {p: os.stat(p).st_mtime_ns for p in logs}
    capsys.readouterr()
    t0 = time.time()
    assert ed.main(["--quick", "--output", out]) == 0
    elapsed = time.time() - t0
    text = capsys.readouterr().out
    assert text.count("(skip: finished)") == len(runs) == 3
    assert {p: os.stat(p).st_mtime_ns for p in logs} == before
    for p in logs:
        with open(p) as f:
            assert "======== new run" not in f.read()
    assert elapsed < 0.5 * job["seconds"], (elapsed, job["seconds"])


def test_interrupted_and_changed_runs_are_redone(job, tmp_path):
    ed, out = job["ed"], job["out"]
    runs = ed.build_runs(ed.parse(["--quick", "--output", out]))
    coop = next(r for r in runs if r.method == "coop")
    assert ed.run_state(coop) == "finished"
    copy = str(tmp_path / "seed1")
    shutil.copytree(coop.folder, copy)
    coop.folder = copy
    with open(osp.join(copy, "log.txt")) as f:
        lines = f.readlines()
    with open(osp.join(copy, "log.txt"), "w") as f:  # cut before "Elapsed": an interrupted run
        f.writelines(lines[:-3])
    assert ed.run_state(coop) == "interrupted"
    with open(osp.join(copy, "log.txt"), "w") as f:
        f.writelines(lines)
    assert ed.run_state(coop) == "finished"
    coop.expect = dict(coop.expect, **{"OPTIM.MAX_EPOCH": "7"})  # other settings asked now
    assert ed.run_state(coop) == "changed"
    os.remove(osp.join(copy, "results.json"))
    assert ed.run_state(coop) == "interrupted"


def test_plot_fewshot_cli(tmp_path):
    import plot_fewshot

    for method, base in (("a", 50.0), ("b", 55.0)):
        for k in (1, 2, 4):
            for s in (1, 2):
                d = tmp_path / method / f"cfg_{k}shots" / "x" / f"seed{s}"
                d.mkdir(parents=True)
                (d / "results.json").write_text(json.dumps({"accuracy": base + k + s}))
    (tmp_path / "zs").mkdir()
    (tmp_path / "zs" / "results.json").write_text(json.dumps({"accuracy": 40.0}))
    curve = plot_fewshot.collect_curve(str(tmp_path / "a" / "*_{shots}shots" / "x"), [1, 2, 4, 8])
    assert curve == {1: [52.0, 53.0], 2: [53.0, 54.0], 4: [55.0, 56.0]}
    out = tmp_path / "f.png"
    assert plot_fewshot.main(["--curve", f"A={tmp_path}/a/cfg_{{shots}}shots/x", "--curve",
                              f"B={tmp_path}/b/cfg_{{shots}}shots/x", "--shots", "1", "2", "4",
                              "--zeroshot", str(tmp_path / "zs"), "-o", str(out)]) == 0
    assert out.stat().st_size > 5_000
    fig, ax = plot_fewshot.make_figure({"A": curve}, 40.0)
    assert _curves(ax) == ["A", "Zero-shot CLIP (40.0%)"]
    assert list(ax.get_lines()[0].get_ydata()) == [52.5, 53.5, 55.5]  # mean over seeds
    assert plot_fewshot.main(["--curve", "A=" + str(tmp_path / "none_{shots}"), "-o", str(out)]) == 2
