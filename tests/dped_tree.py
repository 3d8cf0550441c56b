"""Small generated trees in the on-disk layouts users train on."""

from pathlib import Path

import numpy as np
from PIL import Image


def smooth_image(rng, size):
    """A smooth random colour image (uint8), more photo-like than white noise."""
    h, w = size
    coarse = rng.random((4, 4, 3))
    img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    return np.asarray(img)


def make_pair_images(rng, size):
    target = smooth_image(rng, size).astype(np.float32) / 255
    phone = np.clip(0.8 * target + 0.05 + rng.normal(0, 0.02, target.shape), 0, 1)
    return (phone * 255).astype(np.uint8), (target * 255).astype(np.uint8)


def make_dped_tree(root: Path, phone="iphone", train=12, test=4, size=100, seed=0) -> Path:
    """``root/dped/<phone>/training_data/{<phone>,canon}/<i>.jpg`` and test patches."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "dped" / phone
    for part, count in (("training_data", train), ("test_data/patches", test)):
        for i in range(count):
            a, b = make_pair_images(rng, (size, size))
            for sub, arr in ((phone, a), ("canon", b)):
                folder = base / part / sub
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(folder / f"{i}.jpg", quality=95)
    full = base / "test_data" / "full_size_test_images"
    full.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth_image(rng, (96, 128))).save(full / "0.jpg")
    return Path(root) / "dped"


def make_photo_folder(root: Path, count=5, size=(120, 160), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(smooth_image(rng, size)).save(root / f"photo{i}.jpg", quality=95)
    return root


def pairs_folder(root: Path, sizes, seed=0) -> str:
    """``root/in`` and ``root/target`` aligned PNG pairs of the given sizes; returns the
    ``pairs:IN,TARGET`` data spec."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for sub in ("in", "target"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, size in enumerate(sizes):
        a, b = make_pair_images(rng, size)
        Image.fromarray(a).save(root / "in" / f"{i}.png")
        Image.fromarray(b).save(root / "target" / f"{i}.png")
    return f"pairs:{root / 'in'},{root / 'target'}"
