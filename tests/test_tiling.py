"""Tiled inference: window plans, blend weights, and tiled-vs-whole-image outputs."""

import itertools

import numpy as np
import pytest

from mobile_enhance.compat import keras
from mobile_enhance.enhance.tiling import (
    MIN_WEIGHT,
    Tile,
    TilingError,
    blend_weights,
    enhance_tiled,
    padding_needed,
    plan_tiles,
    ramp,
    reflect_index,
)
from mobile_enhance.errors import UserError
from mobile_enhance.models import build_model


def psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2))


# ---------------------------------------------------------------------------- plans


def test_plan_exact_example():
    # 100 rows: step 48, windows at 0 and 36 (the last ends at 100); 150 columns: 0, 48, 86.
    assert plan_tiles(100, 150, tile=64, overlap=16, multiple=1) == [
        Tile(y, x, 64, 64) for y in (0, 36) for x in (0, 48, 86)
    ]


def test_plan_small_image_is_one_padded_window():
    assert plan_tiles(37, 45, tile=64, overlap=16, multiple=32) == [Tile(0, 0, 64, 64)]
    assert plan_tiles(37, 45, tile=64, overlap=16, multiple=4) == [Tile(0, 0, 40, 48)]
    assert plan_tiles(37, 45, tile=64, overlap=16, multiple=1) == [Tile(0, 0, 37, 45)]
    assert padding_needed(plan_tiles(37, 45, 64, 16, 32), 37, 45) == (27, 19)
    assert padding_needed(plan_tiles(1, 1, 64, 16, 4), 1, 1) == (3, 3)


def test_plan_mixed_axes_and_pairs():
    # Rows shorter than the tile (one padded window), columns longer (several full windows).
    tiles = plan_tiles(37, 203, tile=64, overlap=24, multiple=32)
    assert {t.h for t in tiles} == {64} and {t.y for t in tiles} == {0}
    assert [t.x for t in tiles] == [0, 40, 80, 120, 139]
    assert padding_needed(tiles, 37, 203) == (27, 0)
    # A fixed 100x60 model: tile and multiple are its input size, so every window is exactly that.
    tiles = plan_tiles(250, 61, tile=(100, 60), overlap=10, multiple=(100, 60))
    assert {(t.h, t.w) for t in tiles} == {(100, 60)}
    assert [t.y for t in tiles if t.x == 0] == [0, 90, 150]
    assert [t.x for t in tiles if t.y == 0] == [0, 1]


SIZES = [1, 2, 5, 31, 32, 33, 64, 65, 100, 127, 203, 513]
CONFIGS = [(64, 16, 1), (64, 24, 4), (64, 0, 32), (96, 95, 32), (32, 8, 32), (48, 47, 1), (256, 32, 4)]


@pytest.mark.parametrize("tile,overlap,multiple", CONFIGS)
def test_plan_properties(tile, overlap, multiple):
    for height, width in itertools.product(SIZES, SIZES[::3]):
        tiles = plan_tiles(height, width, tile, overlap, multiple)
        assert tiles == plan_tiles(height, width, tile, overlap, multiple)
        covered = np.zeros((height, width), bool)
        for t in tiles:
            assert t.h % multiple == 0 and t.w % multiple == 0 and 0 < t.h <= tile and 0 < t.w <= tile
            assert t.y >= 0 and t.x >= 0
            covered[t.y : t.y + t.h, t.x : t.x + t.w] = True
        assert covered.all(), (height, width)
        for n, starts, length in (
            (height, sorted({t.y for t in tiles}), tiles[0].h),
            (width, sorted({t.x for t in tiles}), tiles[0].w),
        ):
            if n > tile:
                assert length == tile and starts[0] == 0 and starts[-1] + tile == n
                gaps = np.diff(starts)
                assert (gaps <= tile - overlap).all() and (gaps > 0).all()
                assert (gaps[:-1] == tile - overlap).all()
            else:
                assert starts == [0] and length == -(-n // multiple) * multiple
        # Row-major order, every (row, column) start pair once.
        assert tiles == sorted(tiles, key=lambda t: (t.y, t.x))
        assert len(tiles) == len({t.y for t in tiles}) * len({t.x for t in tiles})


@pytest.mark.parametrize(
    "args,match",
    [
        ((100, 100, 64, 64, 1), "overlap 64 must be smaller than the tile height 64"),
        ((100, 100, 64, 70, 1), "overlap 70 must be smaller"),
        ((100, 100, 60, 8, 32), "tile height 60 is not a multiple of the model's size multiple 32 .use 32 or 64."),
        ((100, 100, (64, 50), 8, 4), "tile width 50 is not a multiple of the model's size multiple 4"),
        ((0, 100, 64, 8, 1), "height must be >= 1, got 0"),
        ((100, -3, 64, 8, 1), "width must be >= 1, got -3"),
        ((100, 100, 0, 0, 1), "tile must be >= 1, got 0"),
        ((100, 100, 64, -1, 1), "overlap must be >= 0, got -1"),
        ((100, 100, 64, 8, 0), "multiple must be >= 1, got 0"),
        ((100.0, 100, 64, 8, 1), "height must be an integer, got 100.0"),
        ((100, 100, 64, True, 1), "overlap must be an integer, got True"),
        ((100, 100, (64, 64, 64), 8, 1), r"tile must be an int or a \(height, width\) pair"),
    ],
)
def test_plan_rejects_bad_arguments(args, match):
    with pytest.raises(TilingError, match=match) as info:
        plan_tiles(*args)
    assert isinstance(info.value, ValueError) and isinstance(info.value, UserError)


def test_plan_accepts_numpy_integers():
    assert plan_tiles(np.int64(100), np.int32(150), np.int64(64), np.int8(16), np.uint8(1)) == plan_tiles(
        100, 150, 64, 16, 1
    )


# ---------------------------------------------------------------------------- weights


def test_ramp_values():
    r = ramp(10, 3)
    expected = [(0.5 - 0.5 * np.cos(np.pi * (k + 1) / 4)) ** 2 for k in range(3)]
    np.testing.assert_allclose(r[:3], expected, rtol=1e-7)
    np.testing.assert_array_equal(r[3:7], 1.0)
    np.testing.assert_array_equal(r, r[::-1])
    assert r.dtype == np.float32
    np.testing.assert_array_equal(ramp(5, 0), np.ones(5, np.float32))
    # an overlap longer than half the window ramps over half the window
    np.testing.assert_array_equal(ramp(7, 100), ramp(7, 3))
    np.testing.assert_array_equal(ramp(64, 60), ramp(64, 32))
    r = ramp(7, 3)
    assert r[3] == 1 and (np.diff(r[:4]) > 0).all() and (np.diff(r[3:]) < 0).all()


@pytest.mark.parametrize("h,w,overlap", [(64, 48, 16), (37, 45, 24), (1, 1, 8), (100, 100, 0), (9, 4001, 2000)])
def test_blend_weights(h, w, overlap):
    b = blend_weights(h, w, overlap)
    assert b.shape == (h, w) and b.dtype == np.float32
    assert (b > 0).all() and b.max() <= 1.0
    assert (b >= np.float32(MIN_WEIGHT) ** 2).all()
    np.testing.assert_array_equal(b, ramp(h, overlap)[:, None] * ramp(w, overlap)[None, :])
    np.testing.assert_array_equal(b, b[::-1, ::-1])
    # rising across the overlap from each edge
    r = ramp(w, overlap)
    k = min(overlap, (w + 1) // 2)
    assert (np.diff(r[:k]) >= 0).all()


def test_weights_fall_towards_the_edge_faster_than_a_raised_cosine():
    r = ramp(64, 24).astype(np.float64)
    rc = 0.5 - 0.5 * np.cos(np.pi * (np.arange(24) + 1) / 25)
    assert (r[:12] < rc[:12]).all()  # the outer half of the overlap counts less than a plain raised cosine


# ---------------------------------------------------------------------------- reflection


@pytest.mark.parametrize("n", [1, 2, 3, 7])
@pytest.mark.parametrize("pad", [0, 1, 2, 6, 13])
def test_reflect_index_matches_numpy_pad(n, pad):
    line = np.arange(n)
    expected = np.pad(line, (0, pad), mode="reflect") if n > 1 else np.pad(line, (0, pad), mode="edge")
    np.testing.assert_array_equal(line[reflect_index(np.arange(n + pad), n)], expected)
    assert [reflect_index(i, n) for i in range(n + pad)] == list(expected)


# ---------------------------------------------------------------------------- enhance_tiled


def naive_tiled(fn, image, tile, overlap, multiple):
    """Reference blend: np.pad the image, full 2-D weight map, no separability shortcut."""
    H, W, _ = image.shape
    tiles = plan_tiles(H, W, tile, overlap, multiple)
    ph, pw = padding_needed(tiles, H, W)
    padded = np.pad(image, ((0, ph), (0, 0), (0, 0)), mode="reflect" if H > 1 else "edge")
    padded = np.pad(padded, ((0, 0), (0, pw), (0, 0)), mode="reflect" if W > 1 else "edge")
    acc = np.zeros((H + ph, W + pw, 3), np.float64)
    wsum = np.zeros((H + ph, W + pw), np.float64)
    for t in tiles:
        out = np.asarray(fn(padded[None, t.y : t.y + t.h, t.x : t.x + t.w]))[0]
        wt = blend_weights(t.h, t.w, overlap).astype(np.float64)
        acc[t.y : t.y + t.h, t.x : t.x + t.w] += wt[..., None] * out
        wsum[t.y : t.y + t.h, t.x : t.x + t.w] += wt
    return (acc / wsum[..., None])[:H, :W]


class CountingFn:
    """A window function whose output reveals which call produced it: x + 0.1 * call index."""

    def __init__(self):
        self.shapes = []

    def __call__(self, x):
        self.shapes.append(x.shape)
        return x * 0.5 + 0.1 * (len(self.shapes) % 7)


CASES = [
    ((150, 203), 64, 24, 1),
    ((150, 203), 64, 24, 4),
    ((150, 203), 64, 24, 32),
    ((37, 45), 64, 24, 4),
    ((37, 45), 64, 24, 32),
    ((37, 203), 64, 24, 32),
    ((1, 1), 32, 8, 4),
    ((2, 97), (32, 48), 16, (32, 16)),
    ((101, 99), 100, 99, 1),
]


@pytest.mark.parametrize("size,tile,overlap,multiple", CASES)
def test_identity_is_exact(rng, size, tile, overlap, multiple):
    image = rng.random((*size, 3), dtype=np.float32)
    out = enhance_tiled(lambda x: x, image, tile=tile, overlap=overlap, multiple=multiple)
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, image, atol=2e-6, rtol=0)


@pytest.mark.parametrize("size,tile,overlap,multiple", CASES)
def test_blend_matches_naive_reference(rng, size, tile, overlap, multiple):
    image = rng.random((*size, 3), dtype=np.float32)
    fn, ref_fn = CountingFn(), CountingFn()
    out = enhance_tiled(fn, image, tile=tile, overlap=overlap, multiple=multiple)
    np.testing.assert_allclose(out, naive_tiled(ref_fn, image, tile, overlap, multiple), atol=2e-6, rtol=0)
    plan = plan_tiles(*size, tile, overlap, multiple)
    assert fn.shapes == [(1, t.h, t.w, 3) for t in plan]  # one window at a time, in plan order


@pytest.fixture(scope="module")
def srcnn():
    """A real srcnn whose last conv is scaled so its output spans [0, 1] (more to get wrong
    at the seams than the nearly flat output of a fresh initialisation)."""
    keras.utils.set_random_seed(1)
    model = build_model("srcnn")
    kernel, bias = model.get_layer("conv3").get_weights()
    model.get_layer("conv3").set_weights([kernel * 10, bias])
    return lambda x: model(x, training=False).numpy()


def test_image(size, rng):
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([np.sin(yy / 7.0) * 0.5 + 0.5, np.cos(xx / 11.0) * 0.5 + 0.5, (yy + xx) / (h + w)], -1)
    return (0.5 * rng.random((h, w, 3)) + 0.5 * smooth).astype(np.float32)


test_image.__test__ = False  # a helper, not a test


def whole_image_reference(fn, image, tile, multiple):
    """The model run on the whole image, reflect-padded up to ``multiple`` along the axes
    that are no longer than the tile (where tiling pads too)."""
    H, W, _ = image.shape
    Hp = -(-H // multiple) * multiple if H <= tile else H
    Wp = -(-W // multiple) * multiple if W <= tile else W
    padded = image[np.ix_(reflect_index(np.arange(Hp), H), reflect_index(np.arange(Wp), W))]
    return fn(padded[None])[0][:H, :W]


@pytest.mark.parametrize(
    "size,multiple", [((150, 203), 1), ((150, 203), 4), ((150, 203), 32), ((37, 45), 4), ((37, 45), 32), ((37, 203), 32)]
)
def test_srcnn_tiled_matches_whole_image(srcnn, rng, size, multiple):
    image = test_image(size, rng)
    whole = whole_image_reference(srcnn, image, 64, multiple)
    assert whole.std() > 0.1  # the output has real contrast to get wrong
    tiled = enhance_tiled(srcnn, image, tile=64, overlap=24, multiple=multiple)
    assert psnr(tiled, whole) >= 45.0


def test_srcnn_without_overlap_shows_seams(srcnn, rng):
    # The same check fails when windows are merely butted together: the threshold above
    # measures the blending, not a model too flat to show seams.
    image = test_image((150, 203), rng)
    whole = srcnn(image[None])[0]
    assert psnr(enhance_tiled(srcnn, image, tile=64, overlap=0), whole) < 30.0


def test_model_output_of_wrong_shape_is_reported(rng):
    image = rng.random((40, 40, 3), dtype=np.float32)
    with pytest.raises(TilingError, match=r"returned shape \(1, 16, 16, 3\) for a window of shape \(1, 32, 32, 3\)"):
        enhance_tiled(lambda x: x[:, ::2, ::2], image, tile=32, overlap=8)


@pytest.mark.parametrize("shape", [(40, 40), (40, 40, 4), (1, 40, 40, 3)])
def test_image_of_wrong_shape_is_reported(shape):
    with pytest.raises(TilingError, match=r"image must be \(H, W, 3\), got shape"):
        enhance_tiled(lambda x: x, np.zeros(shape, np.float32))


def test_bad_tiling_arguments_are_reported_before_running(rng):
    calls = []
    with pytest.raises(TilingError, match="not a multiple"):
        enhance_tiled(lambda x: calls.append(1) or x, rng.random((40, 40, 3), dtype=np.float32), tile=30, multiple=4)
    assert not calls
