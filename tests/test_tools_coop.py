"""parse_test_res, plot_norms and the trainer YAMLs."""
from __future__ import annotations

import glob
import json
import os

import pytest

import train
from tools import parse_test_res, plot_norms
from trainers.config import nemesis_options, resolve_prompt_node

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_parse_test_res(tmp_path, capsys):
    for seed, acc in ((1, "80.5"), (2, "81.25")):
        d = tmp_path / "exp" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "log.txt").write_text(f"=> result\n* accuracy: 10.0%\nFinish training\n=> result\n* accuracy: {acc}%\nElapsed: 0:00:01\n")
    (tmp_path / "exp" / "notes.txt").write_text("stray")
    parse_test_res.main([str(tmp_path / "exp"), "--csv", str(tmp_path / "t.csv")])  # the stray file is no run
    out = capsys.readouterr().out
    assert "* accuracy: 80.88% +- 0.38%" in out
    assert "80.88" in (tmp_path / "t.csv").read_text()


def test_parse_crt_table(tmp_path, capsys):
    for sub, acc in (("original/seed1", "70.0"), ("replace/pos-0_std-0/seed1", "71.0"), ("rescale/pos-1_scale-0.001/seed1", "60.0")):
        d = tmp_path / sub
        d.mkdir(parents=True)
        (d / "log.txt").write_text(f"=> result\n* accuracy: {acc}%\n* macro_f1: 1.0%\n")
    rows = parse_test_res.crt_table(str(tmp_path), "accuracy")
    assert [(r["type"], r["position"], r["accuracy"]) for r in rows] == [
        ("original", "", 70.0), ("replace", 0, 71.0), ("rescale", 1, 60.0)]


def test_plot_norms(tmp_path):
    folders = []
    for name, with_acc in (("coop", True), ("nemesis", False)):
        d = tmp_path / name
        d.mkdir()
        with open(d / "norms.jsonl", "w") as f:
            for e in (1, 2, 3):
                rec = {"epoch": e, "matrix_norm": 1.0 + e, "v_norms": [0.1 * e, 0.2 * e, 0.3]}
                if with_acc:
                    rec["test_acc"] = 50.0 + e
                f.write(json.dumps(rec) + "\n")
        folders.append(str(d))
    fig, axes = plot_norms.make_figure(folders, ["CoOp", "Nemesis"])
    # one per-position panel per run, 3 positions each, coloured by position on one sequential colormap
    assert [len(ax.lines) for ax in axes.positions] == [3, 3]
    assert list(axes.positions[0].lines[0].get_ydata()) == pytest.approx([0.1, 0.2, 0.3])
    assert axes.positions[0].lines[0].get_color() != axes.positions[0].lines[2].get_color()
    assert axes.positions[0].lines[0].get_color() == axes.positions[1].lines[0].get_color()
    assert axes.colorbar is not None and axes.colorbar.ax.get_ylabel() == "prompt position"
    assert len(axes.matrix.lines) == 2 and len(axes.accuracy.lines) == 1  # only the first run has test_acc
    assert axes.positions[0].get_legend() is None  # no 3 x runs legend over the data
    assert "CoOp" in fig._suptitle.get_text() and "Nemesis" in fig._suptitle.get_text()
    assert all(float(t).is_integer() for t in axes.matrix.get_xticks())  # integer epoch ticks
    # --positions highlights (thick + legend); no test accuracy -> no accuracy panel
    fig, axes = plot_norms.make_figure(folders[1:], positions=[1])
    widths = [ln.get_linewidth() for ln in axes.positions[0].lines]
    assert widths[1] > widths[0] and widths[1] > widths[2]
    assert [t.get_text() for t in axes.positions[0].get_legend().get_texts()] == ["position 1"]
    assert axes.accuracy is None and len(fig.axes) == 3  # positions, matrix, colour bar
    out = tmp_path / "n.pdf"
    assert plot_norms.main(folders + ["-o", str(out)]) == 0 and out.stat().st_size > 1000
    assert plot_norms.main([str(tmp_path / "missing"), "-o", str(tmp_path / "x.png")]) == 2


def test_plot_norms_of_visual_prompts(tmp_path):
    """VPT runs (visual prompts only) are drawn from their visual_* norms by default; --visual picks them for runs
    that have both (IVLP)."""
    vpt, ivlp = tmp_path / "vpt", tmp_path / "ivlp"
    for d, text in ((vpt, False), (ivlp, True)):
        d.mkdir()
        with open(d / "norms.jsonl", "w") as f:
            for e in (1, 2):
                rec = {"epoch": e, "visual_matrix_norm": 2.0 * e, "visual_v_norms": [0.5 * e, 0.7 * e]}
                if text:
                    rec.update(matrix_norm=9.0, v_norms=[1.0, 2.0, 3.0])
                f.write(json.dumps(rec) + "\n")
    fig, axes = plot_norms.make_figure([str(vpt)], ["VPT"])
    assert [len(ax.lines) for ax in axes.positions] == [2]
    assert list(axes.positions[0].lines[1].get_ydata()) == pytest.approx([0.7, 1.4])
    assert list(axes.matrix.lines[0].get_ydata()) == pytest.approx([2.0, 4.0])
    assert "Visual prompt norms" in fig._suptitle.get_text()
    fig, axes = plot_norms.make_figure([str(ivlp)], ["IVLP"])  # text norms by default
    assert [len(ax.lines) for ax in axes.positions] == [3]
    fig, axes = plot_norms.make_figure([str(ivlp)], ["IVLP"], visual=True)
    assert [len(ax.lines) for ax in axes.positions] == [2]
    out = tmp_path / "v.png"
    assert plot_norms.main([str(ivlp), "--visual", "-o", str(out)]) == 0 and out.stat().st_size > 1000


@pytest.mark.parametrize("trainer", ["CoOp", "CoOpNemesis", "CoOpCRT"])
def test_every_trainer_yaml_merges(trainer):
    files = sorted(glob.glob(os.path.join(ROOT, "configs", "trainers", trainer, "*.yaml")))
    files = [f for f in files if not os.path.basename(f).startswith("tinysynth")]
    assert len(files) >= 6
    node = {"CoOp": "COOP", "CoOpNemesis": "CoOpNemesis", "CoOpCRT": "CoOpCRT"}[trainer]
    for f in files:
        args = train.parse_args(["--trainer", trainer, "--config-file", f, "--dataset-config-file",
                                 os.path.join(ROOT, "configs", "datasets", "food101.yaml")])
        cfg = train.setup_cfg(args)
        s = resolve_prompt_node(cfg, node)
        assert s["CTX_INIT"] == ("a photo of a" if f.endswith("ctxv1.yaml") else "")
        if f.endswith("_lr35.yaml"):  # DePT's ten-epoch baseline recipe
            assert cfg.OPTIM.LR == 0.0035 and cfg.DATALOADER.TRAIN_X.BATCH_SIZE == 4 and cfg.OPTIM.MAX_EPOCH == 10
        elif not f.endswith("_val.yaml"):
            assert cfg.OPTIM.LR == 0.002 and cfg.DATALOADER.TRAIN_X.BATCH_SIZE == 32
    assert cfg.REGULARISER.NEMESIS.PAN_SCALE == 50.0 and cfg.REGULARISER.NEMESIS.OMEGA == "constant"


def test_nemesis_options_fallback_and_alias():
    args = train.parse_args(["--trainer", "CoOpNemesis", "REGULARISER.NEMESIS.A", "2.0", "REGULARISER.NEMESIS.BETA",
                             "1.0", "TRAINER.CoOpNemesis.NT", "inf", "TRAINER.CoOp.N_CTX", "8", "TRAINER.COOP.CSC", "True"])
    cfg = train.setup_cfg(args)
    opts = nemesis_options(cfg, "CoOpNemesis")
    assert opts["a"] == 2.0 and opts["beta"] == 1.0 and opts["norm_type"] == "inf"
    # TRAINER.COOP / TRAINER.CoOp are CoOp's spellings, not CoOpNemesis's (whose node is TRAINER.CoOpNemesis)
    assert resolve_prompt_node(cfg)["N_CTX"] == 16 and resolve_prompt_node(cfg)["CSC"] is False
    cfg = train.setup_cfg(train.parse_args(["--trainer", "CoOp", "TRAINER.CoOp.N_CTX", "8", "TRAINER.COOP.CSC", "True"]))
    s = resolve_prompt_node(cfg, "COOP")
    assert s["N_CTX"] == 8 and s["CSC"] is True
