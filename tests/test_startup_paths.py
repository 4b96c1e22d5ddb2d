"""Start-up paths that replace a heavy import keep the results: macro-F1 without scikit-learn, the environment
report without a pip subprocess."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
from sklearn.metrics import f1_score

from dassl.evaluation.evaluator import macro_f1_score
from dassl.utils import tools


def test_macro_f1_is_bit_identical_to_sklearn():
    rng = np.random.default_rng(0)
    for t in range(400):
        n, c = int(rng.integers(1, 80)), int(rng.integers(1, 15))
        y_true = rng.integers(0, c, n).tolist()
        y_pred = y_true[:] if t % 5 == 0 else rng.integers(-1, c + 3, n).tolist()  # also labels not in y_true
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true))
        assert macro_f1_score(y_true, y_pred) == ref  # exact float equality


def test_macro_f1_hand_computed():
    # class 0: tp 1, true 2, pred 1 -> 2/3; class 1: tp 1, true 1, pred 2 -> 2/3; class 2 (only predicted): ignored
    assert macro_f1_score([0, 0, 1], [0, 1, 1]) == np.mean([2 / 3, 2 / 3])
    assert macro_f1_score([0, 1], [2, 2]) == 0.0


def test_package_list_equals_pip_freeze():
    pip = subprocess.run([sys.executable, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                         timeout=120, env={"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PATH": "/usr/bin:/bin"})
    assert pip.returncode == 0, pip.stderr
    assert tools._installed_packages_freeze() == pip.stdout.strip()


def test_env_report_lists_torch_and_pillow():
    import torch

    info = tools.collect_env_info()
    assert f"PyTorch version: {torch.__version__}" in info
    assert "[pip3] torch==" in info and "Pillow (" in info


def test_tokenizer_skips_ftfy_only_where_it_is_the_identity():
    import random
    import string

    import ftfy

    from clip import simple_tokenizer as st
    from tests.test_clip_tokenizer import CALTECH101, OXFORD_PETS

    rnd = random.Random(0)
    alphabet = string.printable[:95]  # printable ASCII incl. space, quotes, '<', '\\', no tab/newline
    texts = [f"a photo of a {c.replace('_', ' ')}." for c in CALTECH101 + OXFORD_PETS]
    texts += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40))) for _ in range(3000)]
    texts += ["<b>x</b>", "it's", "a   b", "\\x1b", "''", "--", "a<>b"]
    skipped = [t for t in texts if st._is_ftfy_fixed_point(t)]
    assert len(skipped) > 1000
    for t in skipped:
        assert ftfy.fix_text(t) == t, repr(t)
    # everything else still goes through ftfy
    for t in ["caf\u00e9", "sÃ³", "a &amp; b", "tab\there", "line\r\nbreak", "\x1b[31mred", "\ufb01sh"]:
        assert not st._is_ftfy_fixed_point(t)
        assert st._fix_text(t) == ftfy.fix_text(t)
