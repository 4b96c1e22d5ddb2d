"""tools/report.py (numbers against hand computation), paper numbers, figures, parse_test_res messages."""
from __future__ import annotations

import json
import math
import os

import pytest

from tests.helpers.fake_runs import write_run
from tools import parse_test_res, plot_results, report

FS = "rn50_ep50_1shots/nctx16_cscFalse_ctpend"
B2N = "shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """One tree of every protocol: a missing seed, an unfinished seed, reference-fork folders without a record."""
    r = str(tmp_path_factory.mktemp("out"))
    write_run(f"{r}/eurosat/CoOp/{FS}/seed1", 50.0)  # our record
    write_run(f"{r}/eurosat/CoOp/{FS}/seed2", 52.0, "legacy")  # reference fork: log ends with Elapsed, no record
    write_run(f"{r}/eurosat/CoOp/{FS}/seed3", None, "unfinished")
    write_run(f"{r}/dtd/CoOp/{FS}/seed1", 40.0)
    write_run(f"{r}/dtd/CoOp/{FS}/seed2", 43.0)  # seed3 missing
    for ds, base, new in (("eurosat", (90.0, 88.0, 86.0), (60.0, 62.0, 64.0)), ("dtd", (80.0, 78.0, 79.0), (50.0, 55.0, 51.0))):
        for s in (1, 2, 3):
            write_run(f"{r}/base2new/train_base/{ds}/{B2N}/seed{s}", base[s - 1])
            if not (ds == "dtd" and s == 3):  # dtd new seed3 missing
                write_run(f"{r}/base2new/test_new/{ds}/{B2N}/seed{s}", new[s - 1], "legacy", kind="eval")
    crt = f"{r}/CoOpCRT/eurosat/CoOp/rn50_ep50_1shots"
    write_run(f"{crt}/original/seed1", 50.0, kind="eval")
    for p in (0, 1):
        for f in ("0.001", "0.1"):
            for s in (1, 2):
                write_run(f"{crt}/rescale/pos-{p}_scale-{f}/seed{s}", 40.0 + p + float(f) * 10 + s, kind="eval")
    write_run(f"{r}/ZeroshotCLIP/rn50/eurosat", 37.5, kind="eval")
    write_run(f"{r}/evaluation/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1_16shots/caltech101/seed1", 94.3, "legacy", kind="eval")
    return r


def _row(rows, **kw):
    hits = [r for r in rows if all(r.get(k) == v for k, v in kw.items())]
    assert len(hits) == 1, (kw, hits)
    return hits[0]


def test_seed_statistics_missing_and_unfinished(tree):
    rep = report.build_report(tree)
    eu = _row(rep["single"], protocol="fewshot", dataset="eurosat")
    # seeds 1 (record) and 2 (reference-fork log); population std; CI = 1.96 * std / sqrt(n)
    assert eu["n"] == 2 and eu["values"] == [50.0, 52.0]
    assert eu["mean"] == pytest.approx(51.0) and eu["std"] == pytest.approx(1.0)
    assert eu["ci95"] == pytest.approx(1.96 / math.sqrt(2))
    assert eu["unfinished"] == ["seed3 (interrupted)"] and eu["missing"] == []
    dtd = _row(rep["single"], protocol="fewshot", dataset="dtd")
    assert dtd["mean"] == pytest.approx(41.5) and dtd["std"] == pytest.approx(1.5) and dtd["missing"] == ["seed3"]
    avg = _row(rep["averages"], protocol="fewshot", method="CoOp")
    assert avg["mean"] == pytest.approx((51.0 + 41.5) / 2) and avg["n_datasets"] == 2 and avg["cfg"] == "rn50"
    assert avg["paper_mean"] == 59.3 and avg["paper_source"] == "nemesis_fewshot"  # the Nemesis figure, 1 shot
    assert avg["check"].startswith("partial")  # 2 of 11 datasets: not comparable
    zs = _row(rep["single"], protocol="zeroshot")
    assert zs["mean"] == 37.5 and zs["seeds"] == ["-"] and zs["method"] == "ZeroshotCLIP"
    # --seeds names the expected seeds: 4 and 5 are missing everywhere
    rep5 = report.build_report(tree, expected_seeds=[1, 2, 3, 4, 5])
    assert _row(rep5["single"], protocol="fewshot", dataset="dtd")["missing"] == ["seed3", "seed4", "seed5"]


def test_base_to_new_h_of_seed_means(tree):
    rep = report.build_report(tree)
    eu = _row(rep["base2new"], dataset="eurosat")
    assert eu["n"] == 3 and eu["base"] == pytest.approx(88.0) and eu["new"] == pytest.approx(62.0)
    assert eu["base_std"] == pytest.approx(math.sqrt(8 / 3))
    assert eu["H"] == pytest.approx(2 / (1 / 88 + 1 / 62))  # H of the means, not the mean of per-seed H
    per_seed_h = [2 / (1 / b + 1 / n) for b, n in ((90, 60), (88, 62), (86, 64))]
    assert eu["H"] != pytest.approx(sum(per_seed_h) / 3, abs=1e-6)
    dtd = _row(rep["base2new"], dataset="dtd")  # new seed3 missing: the common seeds 1, 2
    assert dtd["n"] == 2 and dtd["base"] == pytest.approx(79.0) and dtd["new"] == pytest.approx(52.5)
    assert dtd["missing"] == ["new seed3"]
    # the paper: DePT's CoCoOp rerun (same config), per dataset
    assert dtd["paper_base"] == 77.37 and dtd["paper_new"] == 52.97 and dtd["paper_H"] == 62.88
    assert dtd["diff_base"] == pytest.approx(79.0 - 77.37)
    assert "base" in dtd["check"] and "new" not in dtd["check"]  # |+1.63| > std 1.0; |-0.47| < std 2.5
    avg = _row(rep["averages"], protocol="base2new")
    assert avg["base"] == pytest.approx((88 + 79) / 2) and avg["new"] == pytest.approx((62 + 52.5) / 2)
    assert avg["H"] == pytest.approx(2 / (1 / 83.5 + 1 / 57.25))
    assert avg["paper_source"] == "kgcoop_readme" and avg["paper_base"] == 80.47  # the CoCoOp paper's average


def test_crt_and_xd_rows(tree):
    rep = report.build_report(tree)
    r = _row(rep["crt"], type="rescale", position=1, factor="0.1")
    assert r["n"] == 2 and r["mean"] == pytest.approx(41 + 1 + 1.5)
    assert _row(rep["crt"], type="original")["mean"] == 50.0
    xd = _row(rep["single"], protocol="xd")
    assert xd["dataset"] == "caltech101" and xd["paper_mean"] == 94.30 and xd["check"] == "ok"


def test_cli_writes_table_csv_json_and_figures(tree, capsys, tmp_path):
    out = tmp_path / "rep"
    assert report.main([tree, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| CoCoOp | dtd | 16 |" in text and "79.00 ± 1.00" in text and "1.96 * std / sqrt(n)" in text
    data = json.loads((out / "report.json").read_text())
    assert data["ci_formula"].startswith("95% CI")
    csv_text = (out / "report.csv").read_text()
    assert "new seed3" in csv_text and "seed3 (interrupted)" in csv_text
    for stem in ("fewshot_curves", "base2new_16shots", "crt_eurosat_rn50_ep50_1shots"):
        for ext in ("png", "pdf"):
            assert (out / f"{stem}.{ext}").stat().st_size > 5000, stem
    assert report.main([str(tmp_path / "nowhere")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert report.main([str(empty)]) == 2
    assert "no run folders" in capsys.readouterr().err


def test_figure_objects(tree):
    rep = report.build_report(tree)
    paper = report.load_paper()
    fig, axes = plot_results.fewshot_figure(rep, paper)
    titles = [ax.get_title() for ax in axes]
    assert titles == ["dtd", "eurosat", "Average over 2 datasets (paper: 11)"]
    assert fig.legends and "CoOp, paper" in [t.get_text() for t in fig.legends[0].get_texts()]
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in axes)
    fig, axes = plot_results.base2new_figure(rep, 16)
    assert [ax.get_ylabel() for ax in axes] == ["base accuracy (%)", "new accuracy (%)", "H (harmonic mean) (%)"]
    bars = [p for p in axes[2].patches]
    assert [round(b.get_height(), 4) for b in bars] == [round(2 / (1 / 79 + 1 / 52.5), 4),
                                                        round(2 / (1 / 88 + 1 / 62), 4),
                                                        round(2 / (1 / 83.5 + 1 / 57.25), 4)]
    assert [t.get_text() for t in axes[2].get_xticklabels()] == ["dtd", "eurosat", "average"]
    assert fig.legends
    fig, axes = plot_results.crt_figure([r for r in rep["crt"]], "eurosat")
    assert len(axes) == 1 and axes[0].images and "uncorrupted: 50.0%" in fig._suptitle.get_text()
    img = axes[0].images[0].get_array()
    assert img.shape == (2, 2) and img[1, 1] == pytest.approx(43.5)  # position 1 x factor 0.1
    assert len(fig.axes) == 2  # the heat map and its colour bar


def test_paper_numbers_file():
    paper = report.load_paper()
    entries = paper["entries"]
    assert set(e["source"] for e in entries) <= set(paper["sources"])
    for src in paper["sources"].values():
        assert isinstance(src["read_off_figure"], bool) and isinstance(src["approximate"], bool)
    assert paper["sources"]["nemesis_fewshot"]["approximate"] is True

    def one(**kw):
        return _row(entries, **kw)
    # spot checks against the published numbers
    assert (one(source="dept_b2n", method="MaPLe", dataset="eurosat")["base"],
            one(source="dept_b2n", method="MaPLe", dataset="eurosat")["H"]) == (94.67, 78.28)
    assert one(source="dept_b2n", method="ExtrasLinearProbeKgCoOp", dataset="average")["H"] == 79.10
    assert one(source="dept_xd", method="CoCoOp", dataset="average")["accuracy"] == 65.73
    assert one(source="dept_dg", method="ExtrasLinearProbeMaPLe", dataset="imagenet_a")["accuracy"] == 49.70
    assert one(source="nemesis_fewshot", method="CoOpNemesis", variant="PAN", shots=16)["accuracy"] == 74.6
    assert one(source="nemesis_dg", method="CoOpNemesis", variant="PUN A=10.0", dataset="imagenet_r")["accuracy"] == 56.78
    assert one(source="kgcoop_readme", method="KgCoOp")["new"] == 73.6
    assert len([e for e in entries if e["source"] == "dept_b2n"]) == 14 * 12
    # published H = harmonic mean of the published base/new (to rounding), except the entries that say otherwise
    # (DePT's MaPLe FGVCAircraft, its 4/8-shot CoOp rows and the lambda CSV)
    odd = []
    for e in entries:
        if e.get("H") is not None and e.get("base") and e.get("new"):
            ok = report.harmonic_mean(e["base"], e["new"]) == pytest.approx(e["H"], abs=0.06)
            assert ok != ("not the harmonic mean" in e.get("note", "")), e
            odd += [] if ok else [(e["source"], e["method"], e["dataset"])]
    assert ("dept_b2n", "MaPLe", "fgvc_aircraft") in odd and len(odd) == 11


def test_parse_test_res_says_which_seeds_and_suggests_test_log(tmp_path, capsys):
    exp = tmp_path / "exp"
    write_run(str(exp / "seed1"), 70.0, "legacy", kind="eval")
    write_run(str(exp / "seed2"), 72.0, "legacy", kind="eval")
    write_run(str(exp / "seed3"), None, "unfinished")
    assert parse_test_res.main([str(exp)]) == 2
    err = capsys.readouterr().err
    assert f"{exp / 'seed1'}: an evaluation log (no 'Finish training'): parse it with --test-log" in err
    assert f"{exp / 'seed3'}: unfinished run (interrupted" in err
    assert "error: no finished result found" in err and "add --test-log" in err
    assert parse_test_res.main([str(exp), "--test-log"]) == 0
    cap = capsys.readouterr()
    assert "* accuracy: 71.00% +- 1.00%" in cap.out  # the interface and output are unchanged
    assert "1 of 3 run folders" in cap.err and "seed3" in cap.err and "seed1" not in cap.err
    # a finished run with a record: its value comes from the record, even when the log lacks the end signal
    rec = tmp_path / "rec"
    write_run(str(rec / "seed1"), 66.0)
    (rec / "seed1" / "log.txt").write_text("truncated\n")
    assert parse_test_res.main([str(rec)]) == 0
    assert "accuracy: 66.00%" in capsys.readouterr().out
    assert parse_test_res.main([str(tmp_path / "missing")]) == 2


def test_nseeds_is_a_one_word_change(tmp_path):
    """NSEEDS=5 runs seeds 1..5 in every script (scripts/coop/lib.sh); a bad value is one error line, exit 2."""
    import subprocess

    from tests.helpers.script_stub import python_stub_env

    env, calls = python_stub_env(tmp_path)
    env.pop("SEEDS")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = lambda e: subprocess.run(["bash", os.path.join(root, "scripts", "cocoop", "base2new_train.sh"), "dtd"],  # noqa: E731
                                   env=e, capture_output=True, text=True)
    r = run(dict(env, NSEEDS="5"))
    assert r.returncode == 0, r.stderr
    assert [ln.split("--seed ")[1].split()[0] for ln in calls.read_text().splitlines()] == ["1", "2", "3", "4", "5"]
    r = run(dict(env, NSEEDS="five"))
    assert r.returncode == 2 and r.stderr.startswith("error: NSEEDS must be a positive integer")


@pytest.mark.parametrize("rel, expected", [
    ("eurosat/CoOp/rn50_16shots/nctx16_cscFalse_ctpend", ("fewshot", "CoOp", "eurosat", 16, "rn50", None)),
    ("dtd/CoOpNemesis/Beta-0.0/rn50_ep100_4shots/alpha1.0_cw0.1_pn1_nctx16_cscFalse_ctpend_nttwo",
     ("fewshot", "CoOpNemesis", "dtd", 4, "rn50_ep100", "PAN A=1.0")),
    ("base2new/test_new/dtd/shots_16_8.0/KgCoOp/vit_b16_ep100_ctxv1", ("base2new", "KgCoOp", "dtd", 16, "vit_b16_ep100_ctxv1", None)),
    ("train_base/ExtrasLinearProbeCoOp/dtd/shots16/vit_b16_ep10_bs4_lr35",  # DePT's runner
     ("base2new", "ExtrasLinearProbeCoOp", "dtd", 16, "vit_b16_ep10_bs4_lr35", None)),
    ("ExtrasLinearProbeCoOp/caltech101/shots16/vit_b16_ep10_bs4_lr35",
     ("xd", "ExtrasLinearProbeCoOp", "caltech101", 16, "vit_b16_ep10_bs4_lr35", None)),
    ("evaluation/CoOp/rn50_16shots/nctx16_cscFalse_ctpend/imagenet_r", ("dg", "CoOp", "imagenet_r", 16, "rn50", None)),
    ("imagenet_a/CoOpNemesis/Beta-1.0/rn50_16shots/alpha10.0_nctx16_cscFalse_ctpend_nttwo",  # output_dg
     ("dg", "CoOpNemesis", "imagenet_a", 16, "rn50", "PUN A=10.0")),
    ("CoOpCRT/dtd/CoOp/rn50_ep50_1shots/replace/pos-3_std-0.5", ("crt", "CoOpCRT:CoOp", "dtd", 1, "rn50_ep50", None)),
    ("ZeroshotCLIP2/vit_b16/imagenet", ("zeroshot", "ZeroshotCLIP2", "imagenet", None, "vit_b16", None)),
])
def test_layouts_of_every_protocol(rel, expected):
    e = report.classify(rel, report.known_datasets())
    assert (e.protocol, e.method, e.dataset, e.shots, e.cfg, e.variant) == expected
