"""Images for calibration and fidelity at an export size, from a training data source.

Sizes are the file's *input* size ``height x width``; a model that upscales ``s`` times
(x4 super-resolution) takes inputs of that size and is compared with targets of
``s height x s width``, cut from the same place (an input pixel ``(y, x)`` is the target's
block ``(s y, s x)``). Sources yield ``(input, target)``; an ``sr:`` source made with
``upscale=s`` yields inputs ``s`` times smaller than their targets (:func:`source_upscale`).
"""

from __future__ import annotations

import numpy as np


def source_upscale(source) -> int:
    """Target side over input side of the pairs ``source`` yields (1: same size)."""
    inputs, targets = source.output_shapes()
    return max(1, int(targets[0]) // int(inputs[0]))


def input_side(source) -> int:
    """Side of the square training inputs ``source`` yields (its patch size over its upscale)."""
    return int(source.output_shapes()[0][0])


def mosaic(patches, height: int, width: int) -> np.ndarray:
    """Fill ``height x width`` with square patches in row order (cropping the last ones)."""
    p = patches[0].shape[0]
    out = np.zeros((height, width, 3), np.float32)
    k = 0
    for y in range(0, height, p):
        for x in range(0, width, p):
            patch = patches[k % len(patches)]
            out[y : y + p, x : x + p] = patch[: height - y, : width - x]
            k += 1
    return out


def _per_image(patch: int, height: int, width: int) -> int:
    return 1 if height <= patch and width <= patch else -(-height // patch) * -(-width // patch)


def _fit(images, height: int, width: int, count: int, scale: int = 1) -> list[np.ndarray]:
    """``count`` images of ``scale height x scale width`` made from square patches of
    ``scale`` times an input patch's side: centre crops when the size fits in a patch, else
    mosaics of consecutive patches (cycling). Offsets are taken on the input grid, so that
    inputs (``scale`` 1) and their targets (``scale`` s) are cut from the same place."""
    p = images[0].shape[0] // scale
    per = _per_image(p, height, width)
    if per == 1:
        y, x = (p - height) // 2 * scale, (p - width) // 2 * scale
        h, w = height * scale, width * scale
        return [images[i % len(images)][y : y + h, x : x + w] for i in range(min(count, len(images)))]
    n = len(images)
    return [mosaic([images[(i * per + j) % n] for j in range(per)], height * scale, width * scale)
            for i in range(max(1, min(count, n // per)))]


def _at_size(source, height: int, width: int):
    """The source cutting crops big enough for targets of ``height x width`` where it can
    (sources of whole photos: crops of exactly that shape, so that a 1536x2048 frame comes
    from a 2560x1600 photo), else ``None`` (sources of fixed patches, such as DPED's 100x100)."""
    if source.patch_size >= max(height, width):
        return source
    return source.cropping(height, width) if hasattr(source, "cropping") else None


def _center(image, height, width, scale: int = 1):
    """The centre ``height x width`` of an input (``scale`` 1), or the block of its target
    (``scale`` s) under the centre of an input ``s`` times smaller than ``image``."""
    y, x = (image.shape[0] // scale - height) // 2, (image.shape[1] // scale - width) // 2
    return image[scale * y : scale * (y + height), scale * x : scale * (x + width)]


def representative_inputs(source, height: int, width: int, count: int = 32, upscale: int | None = None) -> list[np.ndarray]:
    """``count`` inputs of ``height x width`` from the training stream (for int8 calibration):
    crops of that size where the source cuts its own, else mosaics of its patches.
    ``upscale``: the model's (default: the source's, :func:`source_upscale`)."""
    s = source_upscale(source) if upscale is None else int(upscale)
    sized = _at_size(source, s * height, s * width)
    if sized is not None:
        return [_center(sized.example(i)[0], height, width) for i in range(count)]
    per = _per_image(input_side(source), height, width)
    return _fit([source.example(i)[0] for i in range(count * per)], height, width, count)


def heldout_pairs(source, height: int, width: int, count: int = 16, upscale: int | None = None):
    """Held-out ``(inputs, targets)`` from the source's validation split, inputs of
    ``height x width`` and targets of ``upscale`` times that (default: the source's own
    upscale, :func:`source_upscale`): crops of that size where the source cuts its own,
    else mosaics of its patches; ``(None, None)`` without a source or held-out pairs."""
    if source is None:
        return None, None
    s = source_upscale(source) if upscale is None else int(upscale)
    sized = _at_size(source, s * height, s * width)
    if sized is not None:
        pairs = sized.validation()[:count]
        if pairs:
            return (np.stack([_center(a, height, width) for a, _ in pairs]),
                    np.stack([_center(b, height, width, s) for _, b in pairs]))
    pairs = source.validation()
    if not pairs:
        return None, None
    xs = _fit([a for a, _ in pairs], height, width, count)
    ys = _fit([b for _, b in pairs], height, width, count, s)
    return np.stack(xs), np.stack(ys)


