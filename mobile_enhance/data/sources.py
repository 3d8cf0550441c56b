"""Training data sources: DPED, paired folders, synthetic phone-like pairs, blurred pairs, SR, unpaired.

Every source is a deterministic, random-access stream: example ``i`` is a pure function
of ``(seed, i)``. Which file it comes from is given by a seeded permutation per epoch
(the shuffle), the crop and the flip/rot90 augmentation by a generator seeded with
``(seed, i)``. So a run resumed at step ``s`` continues at example ``s * batch`` with
exactly the data the uninterrupted run would have seen, with no iterator state in the
checkpoint and nothing to skip through.

Images are decoded on demand inside ``tf.data`` (``numpy_function``), never the whole
set in memory. Files that turn out to be unreadable are reported once each (a warning
naming the file) and replaced by the next file of the permutation; if more than half of
the files tried are bad, the stream stops with an error.

Tensor contract: each example is ``(input, target)``, both ``(P, P, 3)`` float32 in
[0, 1] (``sr`` without upsampling: input ``(P/4, P/4, 3)``).
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from mobile_enhance.data.blur import Blur
from mobile_enhance.data.images import BadImageError, list_images, read_image
from mobile_enhance.data.synthetic import Degradation
from mobile_enhance.errors import UserError

log = logging.getLogger("mobile_enhance.data")

PHONES = ("iphone", "blackberry", "sony")


class DataError(UserError):
    """A data path or layout that cannot be used; the message names the path."""


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/rotations of a square patch: rot90 ``k % 4`` times, mirrored if ``k >= 4``."""
    out = np.rot90(image, k % 4, axes=(0, 1))
    return np.ascontiguousarray(out[:, ::-1] if k >= 4 else out)


class Source:
    """Base class: a deterministic random-access stream of ``(input, target)`` examples.

    Subclasses set ``self.items`` (one entry per file or pair) and implement
    ``_example(item, rng)``; they may override ``validation``.

    Attributes:
      patch_size: side of the square training patches.
      seed: seed of the shuffle, crops, augmentation and degradations.
      augment: apply a random flip/rot90 (same for input and target).
    """

    kind = "source"

    def __init__(self, patch_size: int, seed: int = 0, augment: bool = True):
        if patch_size <= 0:
            raise DataError(f"patch size must be positive, got {patch_size}")
        self.patch_size = int(patch_size)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.items: list = []
        self._bad: set = set()
        self._first_error: str | None = None
        self._tried = 0
        self._lock = threading.Lock()

    # -- the stream -----------------------------------------------------------------

    @functools.lru_cache(maxsize=2)
    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch, 1]).permutation(len(self.items))

    def example(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Example ``index`` of the stream: ``(input, target)`` float32 arrays."""
        n = len(self.items)
        epoch, position = divmod(int(index), n)
        rng = np.random.default_rng([self.seed, int(index), 2])
        for attempt in range(n):
            item = self.items[self._permutation(epoch)[(position + attempt) % n]]
            if self._key(item) in self._bad:
                continue
            try:
                pair = self._example(item, rng)
            except BadImageError as error:
                self._mark_bad(item, error)
                continue
            with self._lock:
                self._tried += 1
            if self.augment:
                k = int(rng.integers(8))
                if pair[0].shape[0] != pair[0].shape[1]:
                    k -= k % 2  # a non-square crop keeps its shape: no quarter turns
                pair = tuple(dihedral(x, k) for x in pair)
            return tuple(np.asarray(x, np.float32) for x in pair)
        raise DataError(f"{self.describe()}: no file gives an example ({self._first_error or 'every file is unreadable'})")

    def _key(self, item):
        return item

    def _mark_bad(self, item, error):
        with self._lock:
            if self._key(item) not in self._bad:
                self._bad.add(self._key(item))
                self._first_error = self._first_error or str(error)
                log.warning("skipping file (unreadable or too small): %s", error)
            self._tried += 1
            if len(self._bad) > max(3, self._tried // 2):
                raise DataError(f"{self.describe()}: {len(self._bad)} of {self._tried} files tried are unreadable; last: {error}")

    def _example(self, item, rng):
        raise NotImplementedError

    @property
    def bad_files(self) -> list[str]:
        return sorted(str(k) for k in self._bad)

    def output_shapes(self):
        p = self.patch_size
        return (p, p, 3), (p, p, 3)

    def dataset(self, batch_size: int, start_example: int = 0, parallel: int | None = None):
        """``tf.data`` pipeline of batches from example ``start_example`` on, forever.

        Order is deterministic (``deterministic=True``), so two runs with the same seed
        see the same batches whatever the thread timing.
        """
        from mobile_enhance.compat import tf

        shapes = self.output_shapes()
        # one example now, in Python: a source none of whose files gives one (unreadable,
        # every photo smaller than the patch) fails here in one line, not inside tf.data
        self.example(int(start_example))

        def load(index):
            x, y = tf.numpy_function(lambda i: self.example(int(i)), [index], (tf.float32, tf.float32), stateful=False)
            x.set_shape(shapes[0])
            y.set_shape(shapes[1])
            return x, y

        ds = tf.data.Dataset.range(int(start_example), np.iinfo(np.int64).max)
        ds = ds.map(load, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True)
        return ds.batch(int(batch_size), drop_remainder=True).prefetch(2)

    def validation(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Fixed validation pairs (no augmentation); empty where the source has none."""
        return []

    def describe(self) -> str:
        return f"{self.kind} source"


def _crop_pair(a: np.ndarray, b: np.ndarray, size: int, rng, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The same random ``size x size`` crop of two aligned images."""
    h, w = a.shape[:2]
    if b.shape[:2] != (h, w):
        raise BadImageError(f"{where}: input is {w}x{h} but target is {b.shape[1]}x{b.shape[0]}; pairs must be aligned")
    if h < size or w < size:
        raise BadImageError(f"{where}: {w}x{h} is smaller than the {size}x{size} patch")
    y = int(rng.integers(h - size + 1))
    x = int(rng.integers(w - size + 1))
    return a[y : y + size, x : x + size], b[y : y + size, x : x + size]


def _center(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return a[y : y + size, x : x + size]


def _match_pairs(inputs: list[Path], targets: list[Path], where: str) -> list[tuple[Path, Path]]:
    by_stem = {p.stem: p for p in targets}
    pairs = [(p, by_stem[p.stem]) for p in inputs if p.stem in by_stem]
    unpaired = sorted({p.stem for p in inputs} ^ set(by_stem))
    if unpaired:
        shown = ", ".join(unpaired[:5]) + (" ..." if len(unpaired) > 5 else "")
        log.warning("%s: %d files without a partner, left out: %s", where, len(unpaired), shown)
    empty = [p for pair in pairs for p in pair if p.stat().st_size == 0]
    if empty:
        log.warning("%s: %d empty files, left out: %s", where, len(empty), ", ".join(map(str, empty[:5])))
        pairs = [pair for pair in pairs if pair[0].stat().st_size and pair[1].stat().st_size]
    if not pairs:
        raise DataError(f"{where}: no input/target pairs (files are paired by name)")
    return pairs


class PairedSource(Source):
    """Aligned input/target image pairs, matched by file name; random aligned crops.

    Used directly for ``pairs:IN,TARGET`` and, with DPED's layout, for ``dped``.
    """

    kind = "pairs"

    def __init__(self, pairs, patch_size: int, seed: int = 0, augment: bool = True, val_pairs=(), where: str = ""):
        super().__init__(patch_size, seed, augment)
        self.items = list(pairs)
        self.val_pairs = list(val_pairs)
        self.where = where

    def _example(self, item, rng):
        a, b = read_image(item[0]), read_image(item[1])
        return _crop_pair(a, b, self.patch_size, rng, f"{item[0]} / {item[1]}")

    def validation(self):
        out = []
        for a_path, b_path in self.val_pairs:
            try:
                a, b = read_image(a_path), read_image(b_path)
                if min(a.shape[:2]) < self.patch_size or a.shape != b.shape:
                    raise BadImageError(f"{a_path} / {b_path}: too small or not aligned")
            except BadImageError as error:
                log.warning("validation: skipping %s", error)
                continue
            out.append((_center(a, self.patch_size), _center(b, self.patch_size)))
        return out

    def describe(self):
        return f"{self.kind} source {self.where}"


def dped_source(root, phone: str, patch_size: int = 100, seed: int = 0, augment: bool = True, val_count: int = 200):
    """DPED phone/DSLR patches: ``root/<phone>/training_data/{<phone>,canon}/<i>.jpg``.

    Validation: the first ``val_count`` pairs of ``root/<phone>/test_data/patches/``.
    ``patch_size`` up to 100 (DPED's patches); smaller sizes take random crops (RSGUNet
    trains on 96x96).
    """
    root = Path(root)
    if phone not in PHONES:
        raise DataError(f"unknown DPED phone {phone!r}; DPED phones: {', '.join(PHONES)}")
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (expected a DPED tree: {root}/<phone>/training_data/<phone>/)")
    present = [p for p in PHONES if (root / p / "training_data").is_dir()]
    if not present:
        raise DataError(
            f"{root} is not a DPED tree: expected {root}/<phone>/training_data/{{<phone>,canon}}/<i>.jpg "
            f"with phone one of {', '.join(PHONES)}"
        )
    if phone not in present:
        raise DataError(f"{root}: no data for phone {phone!r} (found: {', '.join(present)})")
    train = root / phone / "training_data"
    for sub in (phone, "canon"):
        if not (train / sub).is_dir():
            raise DataError(f"{train / sub}: missing (a DPED tree has training_data/{phone}/ and training_data/canon/)")
    if patch_size > 100:
        raise DataError(f"DPED patches are 100x100; patch size {patch_size} is too large")
    pairs = _match_pairs(list_images(train / phone), list_images(train / "canon"), str(train))
    val_pairs = []
    test = root / phone / "test_data" / "patches"
    if (test / phone).is_dir() and (test / "canon").is_dir():
        val_pairs = _match_pairs(list_images(test / phone), list_images(test / "canon"), str(test))[:val_count]
    else:
        log.warning("%s: no test patches; training without validation", test)
    return PairedSource(pairs, patch_size, seed, augment, val_pairs, where=f"dped:{root} ({phone})")


def split_holdout(files: list[Path], val_fraction: float) -> tuple[list[Path], list[Path]]:
    """Deterministic split of a sorted file list: every k-th file is held out."""
    if not 0 <= val_fraction < 1:
        raise DataError(f"validation fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0 or len(files) < 2:
        return files, []
    step = max(2, round(1 / val_fraction))
    held = files[step // 2 :: step]
    return [f for f in files if f not in held], held


def pairs_source(input_dir, target_dir, patch_size: int, seed: int = 0, augment: bool = True, val_fraction: float = 0.1):
    """Any two folders of aligned images, paired by file name."""
    pairs = _match_pairs(list_images(input_dir), list_images(target_dir), f"{input_dir} , {target_dir}")
    if len(pairs) > 1 and val_fraction:
        step = max(2, round(1 / val_fraction))
        val = pairs[step // 2 :: step]
        pairs = [p for p in pairs if p not in val]
    else:
        val = []
    return PairedSource(pairs, patch_size, seed, augment, val, where=f"pairs:{input_dir},{target_dir}")


class _PhotoCache:
    """Decoded photos, least recently used first out, bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: dict = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> np.ndarray:
        with self._lock:
            if path in self._items:
                self._items[path] = self._items.pop(path)
                return self._items[path]
        image = read_image(path)
        with self._lock:
            self._items[path] = image
            while sum(a.nbytes for a in self._items.values()) > self.max_bytes and len(self._items) > 1:
                self._items.pop(next(iter(self._items)))
        return image


class PhotoSource(Source):
    """Random crops of a folder of photos, turned into pairs by ``make_pair``.

    Decoded photos are cached up to ``cache_bytes`` (1 GiB by default), so a folder of a
    few dozen photos is decoded once; larger folders cycle through the cache.
    """

    kind = "photos"

    def __init__(self, folder, patch_size, seed=0, augment=True, val_fraction=0.15, val_crops=8, cache_bytes=1 << 30):
        super().__init__(patch_size, seed, augment)
        self.folder = Path(folder)
        files = list_images(self.folder)
        if not files:
            raise DataError(f"{self.folder}: no image files ({', '.join(s for s in ('.jpg', '.png', '...'))})")
        self.items, self.val_files = split_holdout(files, val_fraction)
        self.val_crops = int(val_crops)
        self.crop_shape = None  # (H, W) of non-square crops (export calibration at a full-frame size)
        self._cache = _PhotoCache(cache_bytes)

    def cropping(self, height: int, width: int) -> "PhotoSource":
        """A copy cutting ``height x width`` crops (export calibration and fidelity at a
        frame size), sharing the decoded-photo cache but keeping its own list of bad files:
        a photo too small for the frame is still fine for training."""
        other = copy.copy(self)
        other._bad, other._first_error, other._tried, other._lock = set(), None, 0, threading.Lock()
        other.patch_size, other.crop_shape = max(height, width), (int(height), int(width))
        return other

    def _crop(self, photo: np.ndarray, rng, where) -> tuple[np.ndarray, tuple]:
        """A random crop of ``crop_shape`` (``(H, W)``; square patches when ``None``), from
        the photo turned a quarter where it only fits that way."""
        h, w = photo.shape[:2]
        ch, cw = self.crop_shape or (self.patch_size, self.patch_size)
        if (h < ch or w < cw) and h >= cw and w >= ch:
            photo, h, w = np.rot90(photo), w, h
        if h < ch or w < cw:
            what = "patch" if ch == cw else "crop"
            raise BadImageError(f"{where}: {w}x{h} is smaller than the {cw}x{ch} {what} (width x height)")
        y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        return photo[y : y + ch, x : x + cw], (y, x, h, w)

    def _example(self, item, rng):
        photo = self._cache.get(item)
        crop, where = self._crop(photo, rng, item)
        return self.make_pair(crop, where, rng)

    def make_pair(self, crop, where, rng):
        raise NotImplementedError

    def validation(self):
        out = []
        for i, path in enumerate(self.val_files):
            try:
                photo = read_image(path)
            except BadImageError as error:
                log.warning("validation: skipping %s", error)
                continue
            rng = np.random.default_rng([self.seed, i, 3])
            for _ in range(self.val_crops):
                try:
                    crop, where = self._crop(photo, rng, path)
                except BadImageError as error:
                    log.warning("validation: skipping %s", error)
                    break
                out.append(tuple(np.asarray(a, np.float32) for a in self.make_pair(crop, where, rng)))
        return out

    def describe(self):
        return f"{self.kind} source {self.folder}"


class SyntheticSource(PhotoSource):
    """(phone-like, original) pairs from any folder of photos.

    The input is the crop put through :class:`mobile_enhance.data.synthetic.Degradation`
    (vignetting in full-frame coordinates, softness, colour cast, sensor noise,
    compressed tone and contrast, JPEG), with parameters drawn from the example's seed.
    """

    kind = "synthetic"

    def __init__(self, folder, patch_size, seed=0, augment=True, val_fraction=0.15, degradation: Degradation | None = None, **kw):
        super().__init__(folder, patch_size, seed, augment, val_fraction, **kw)
        self.degradation = degradation or Degradation()

    def make_pair(self, crop, where, rng):
        return self.degradation(crop, rng, frame=where), crop


class BlurSource(PhotoSource):
    """(blurred and noisy, sharp) pairs from any folder of photos (``blur:PATH``), for
    same-size sharpening (NonBN-ResG).

    The input is the crop put through :class:`mobile_enhance.data.blur.Blur`: one
    Gaussian, defocus (disk) or motion (line) kernel, then shot and read noise, then 8-bit
    rounding, with the kernel and its parameters drawn from the example's seed, so the
    same seed and index always give the same pair. Held-out photos as for ``synthetic``.
    """

    kind = "blur"

    def __init__(self, folder, patch_size, seed=0, augment=True, val_fraction=0.15, blur: Blur | None = None, **kw):
        super().__init__(folder, patch_size, seed, augment, val_fraction, **kw)
        self.blur = blur or Blur()

    def make_pair(self, crop, where, rng):
        return self.blur(crop, rng), crop


class PhotoOnlySource(PhotoSource):
    """Crops of any photos with no targets (``photos:PATH``): calibration and fidelity data
    for exporting a model from elsewhere (an imported one) that was not trained on a data
    source of ours. Each example is ``(crop, crop)``; ``has_targets`` is False, so export
    measures fidelity against the float model only."""

    kind = "photos"
    has_targets = False

    def make_pair(self, crop, where, rng):
        return crop, crop


class SRSource(PhotoSource):
    """(bicubic x``scale`` down, original) pairs for the super-resolution references.

    With ``upsample`` the input is brought back to the target size with bicubic
    interpolation (for same-size generators); without, it is ``(P/scale, P/scale, 3)``.
    """

    kind = "sr"

    def __init__(self, folder, patch_size, seed=0, augment=True, val_fraction=0.15, scale=4, upsample=True, **kw):
        if patch_size % scale:
            raise DataError(f"sr: patch size {patch_size} is not a multiple of the scale {scale}")
        super().__init__(folder, patch_size, seed, augment, val_fraction, **kw)
        self.scale, self.upsample = int(scale), bool(upsample)

    def output_shapes(self):
        p = self.patch_size
        return ((p, p, 3) if self.upsample else (p // self.scale, p // self.scale, 3)), (p, p, 3)

    def make_pair(self, crop, where, rng):
        (h, w), s = crop.shape[:2], self.scale
        image = Image.fromarray(np.round(crop * 255).astype(np.uint8))
        small = image.resize((w // s, h // s), Image.BICUBIC)
        if self.upsample:
            small = small.resize((w, h), Image.BICUBIC)
        return np.asarray(small, np.float32) / 255.0, crop


class UnpairedSource(Source):
    """Crops from two unrelated folders, for weakly supervised models (WESPE).

    Example ``i`` is ``(crop of an A photo, crop of a B photo)``; A and B are shuffled
    independently.
    """

    kind = "unpaired"

    def __init__(self, folder_a, folder_b, patch_size, seed=0, augment=True, cache_bytes=1 << 30):
        super().__init__(patch_size, seed, augment)
        self.a = list_images(folder_a)
        self.b = list_images(folder_b)
        for folder, files in ((folder_a, self.a), (folder_b, self.b)):
            if not files:
                raise DataError(f"{folder}: no image files")
        self.items = list(range(max(len(self.a), len(self.b))))
        self.folders = (folder_a, folder_b)
        self._cache = _PhotoCache(cache_bytes)

    def _example(self, item, rng):
        out = []
        for files in (self.a, self.b):
            path = files[int(rng.integers(len(files)))]
            photo = self._cache.get(path)
            h, w = photo.shape[:2]
            p = self.patch_size
            if h < p or w < p:
                raise BadImageError(f"{path}: {w}x{h} is smaller than the {p}x{p} patch")
            y, x = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
            out.append(photo[y : y + p, x : x + p])
        return tuple(out)

    def describe(self):
        return f"unpaired source {self.folders[0]} , {self.folders[1]}"
