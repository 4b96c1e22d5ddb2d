"""dassl.data.transforms.pil_ops: the start-up-free transforms give torchvision's pixels, random draws and repr."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from dassl.data.transforms import pil_ops as P

MEAN, STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
MODES = ["bilinear", "bicubic", "nearest"]


def _image(rng: np.random.Generator, w: int, h: int, mode: str = "RGB") -> Image.Image:
    if mode == "L":
        return Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), mode="L")
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), mode="RGB")


def _pipelines(mode: str, size=(32, 32), scale=(0.08, 1.0)):
    ours_i, tv_i = P.InterpolationMode(mode), T.InterpolationMode(mode)
    train = (P.Compose([P.RandomResizedCrop(size, scale=scale, interpolation=ours_i), P.RandomHorizontalFlip(),
                        P.ToTensor(), P.Normalize(MEAN, STD)]),
             T.Compose([T.RandomResizedCrop(size, scale=scale, interpolation=tv_i), T.RandomHorizontalFlip(),
                        T.ToTensor(), T.Normalize(MEAN, STD)]))
    test = (P.Compose([P.Resize(max(size), interpolation=ours_i), P.CenterCrop(size), P.ToTensor(),
                       P.Normalize(MEAN, STD)]),
            T.Compose([T.Resize(max(size), interpolation=tv_i), T.CenterCrop(size), T.ToTensor(),
                       T.Normalize(MEAN, STD)]))
    squash = (P.Compose([P.Resize(size, interpolation=ours_i), P.ToTensor()]),
              T.Compose([T.Resize(size, interpolation=tv_i), T.ToTensor()]))
    return {"train": train, "test": test, "squash": squash}


@pytest.mark.parametrize("mode", MODES)
def test_pixels_and_random_draws_equal_torchvision(mode):
    rng = np.random.default_rng(0)
    pipes = _pipelines(mode, size=(24, 20), scale=(0.3, 1.0))
    for k in range(40):
        w, h = int(rng.integers(4, 90)), int(rng.integers(4, 90))
        img = _image(rng, w, h, "L" if k % 7 == 3 else "RGB")
        for name, (ours, ref) in pipes.items():
            if img.mode == "L" and name != "squash":  # 3-channel normalisation
                continue
            torch.manual_seed(k)
            a = ours(img)
            state_a = torch.get_rng_state()
            torch.manual_seed(k)
            b = ref(img)
            assert torch.equal(a, b), (name, w, h, img.mode)
            assert torch.equal(state_a, torch.get_rng_state()), name  # same number of draws


def test_fallback_central_crop_and_extreme_aspect():
    # impossible scale/ratio: the 10 tries fail and both take the central-crop fallback
    rng = np.random.default_rng(1)
    for w, h in [(200, 3), (3, 200), (50, 50)]:
        img = _image(rng, w, h)
        ours = P.RandomResizedCrop(16, scale=(0.99, 1.0), ratio=(3.0, 4.0))
        ref = T.RandomResizedCrop(16, scale=(0.99, 1.0), ratio=(3.0, 4.0))
        torch.manual_seed(3)
        a = P.ToTensor()(ours(img))
        torch.manual_seed(3)
        b = T.ToTensor()(ref(img))
        assert torch.equal(a, b)


def test_center_crop_larger_than_image_pads_like_torchvision():
    img = _image(np.random.default_rng(2), 10, 7)
    assert torch.equal(P.ToTensor()(P.CenterCrop((12, 15))(img)), T.ToTensor()(T.CenterCrop((12, 15))(img)))


def test_tensor_inputs_are_handed_to_torchvision():
    x = torch.rand(3, 20, 30)
    assert torch.equal(P.Resize((10, 12))(x), T.Resize((10, 12))(x))
    assert torch.equal(P.CenterCrop(8)(x), T.CenterCrop(8)(x))
    assert torch.equal(P.Normalize(MEAN, STD)(x), T.Normalize(MEAN, STD)(x))
    with pytest.raises(ValueError):
        P.Normalize([0.0], [0.0])(x)


def test_repr_matches_torchvision():
    for mode in MODES:
        pipes = _pipelines(mode)
        for ours, ref in pipes.values():
            assert repr(ours) == repr(ref)


def test_build_transform_uses_them_and_is_what_torchvision_would_build():
    from dassl.config import get_cfg_default
    from dassl.data.transforms import build_transform

    cfg = get_cfg_default()
    cfg.INPUT.SIZE = (32, 32)
    cfg.INPUT.TRANSFORMS = ["random_resized_crop", "random_flip", "normalize"]
    cfg.INPUT.INTERPOLATION = "bicubic"
    train, test = build_transform(cfg, is_train=True), build_transform(cfg, is_train=False)
    assert isinstance(train, P.Compose) and isinstance(test.transforms[0], P.Resize)
    ref = T.Compose([T.RandomResizedCrop((32, 32), scale=tuple(cfg.INPUT.RRCROP_SCALE),
                                         interpolation=T.InterpolationMode.BICUBIC),
                     T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)])
    assert repr(train) == repr(ref)
    img = _image(np.random.default_rng(4), 50, 40)
    torch.manual_seed(0)
    a = train(img)
    torch.manual_seed(0)
    assert torch.equal(a, ref(img))
    # a transform we do not reimplement still comes from torchvision
    cfg.INPUT.TRANSFORMS = ["random_flip", "colorjitter", "normalize"]
    assert any(isinstance(t, T.ColorJitter) for t in build_transform(cfg, is_train=True).transforms)


def test_engine_trainers_datasets_import_without_heavy_optional_modules():
    """Importing the engine, every trainer and dataset (what train.py needs before the first batch) loads neither
    torchvision, scikit-learn, tensorboard, matplotlib nor torch._dynamo; building an optimizer does not either."""
    code = (
        "import sys, torch, train, dassl.engine, dassl.data, dassl.evaluation, trainers, datasets\n"
        "from dassl.config import get_cfg_default\n"
        "from dassl.optim import build_optimizer, build_lr_scheduler\n"
        "c = get_cfg_default(); o = build_optimizer([torch.nn.Parameter(torch.zeros(2))], c.OPTIM)\n"
        "build_lr_scheduler(o, c.OPTIM)\n"
        "from dassl.utils.run_header import versions; versions()\n"
        "bad = [m for m in ('torchvision', 'sklearn', 'torch.utils.tensorboard', 'matplotlib', 'torch._dynamo',"
        " 'open_clip', 'submitit') if m in sys.modules]\n"
        "print('LOADED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=__import__("os").path.dirname(__import__("os").path.dirname(__file__)))
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout, out.stdout
