"""``mobile_enhance.metrics``: numpy PSNR / SSIM / MS-SSIM against the TensorFlow
definitions they reproduce, and evaluation of ``.tflite`` files without TensorFlow.

TensorFlow is imported here, in the test, only as the reference.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from dped_tree import pairs_folder
from scipy.ndimage import gaussian_filter
from test_enhance import identity4

from mobile_enhance import metrics
from mobile_enhance.compat import tf
from mobile_enhance.export import convert
from mobile_enhance.losses.functions import MS_SSIM_WEIGHTS, ms_ssim_value

SIZES = [(16, 16), (24, 40), (100, 100), (161, 97)]


def smooth(rng, shape):
    """Photo-like smooth images: blurred noise, contrast stretched, in [0, 1]."""
    blurred = gaussian_filter(rng.random(shape), (0, 2.0, 2.0, 0))
    return np.clip(0.5 + 6 * (blurred - 0.5), 0, 1).astype(np.float32)


def batch(kind, n, size, seed):
    """``(enhanced, target)``: independent noise, independent smooth images, or a smooth
    target and a close (noisy, partly out of [0, 1]) output of it."""
    rng = np.random.default_rng(seed)
    shape = (n, *size, 3)
    if kind == "random":
        return rng.random(shape, np.float32), rng.random(shape, np.float32)
    if kind == "smooth":
        return smooth(rng, shape), smooth(rng, shape)
    target = smooth(rng, shape)
    return (target + 0.03 * rng.standard_normal(shape)).astype(np.float32), target


def tf_metrics(enhanced, target):
    """The former TensorFlow ``image_metrics``, per image."""
    a = tf.clip_by_value(tf.convert_to_tensor(enhanced, tf.float32), 0.0, 1.0)
    b = tf.convert_to_tensor(target, tf.float32)
    return {"psnr": tf.image.psnr(a, b, 1.0).numpy(), "ssim": tf.image.ssim(a, b, 1.0).numpy(),
            "ms_ssim": ms_ssim_value(a, b).numpy()}


TOL = {"psnr": 1e-4, "ssim": 1e-5, "ms_ssim": 1e-5}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind", ["random", "smooth", "close"])
def test_numpy_metrics_match_tensorflow(size, kind):
    for n, seed in ((1, 0), (3, 1)):
        enhanced, target = batch(kind, n, size, seed)
        ref = tf_metrics(enhanced, target)
        a = np.clip(enhanced, 0, 1)
        mine = {"psnr": metrics.psnr(a, target), "ssim": metrics.ssim(a, target), "ms_ssim": metrics.ms_ssim(a, target)}
        for k in TOL:
            assert mine[k].shape == (n,)
            assert np.max(np.abs(mine[k] - ref[k])) <= TOL[k], (k, mine[k], ref[k])
        means = metrics.image_metrics(enhanced, target)
        assert set(means) == set(TOL) and all(isinstance(v, float) for v in means.values())
        for k in TOL:
            assert abs(means[k] - float(np.mean(ref[k]))) <= TOL[k], (k, means[k], ref[k])


def test_ssim_equals_the_tensorflow_map_averaged_in_float64():
    # tf.image.ssim averages its SSIM map in float32; near 1 on large images that sum
    # drifts (5e-4 at 512x384). Its map, averaged in float64, is the definition.
    enhanced, target = batch("close", 2, (161, 97), 3)
    a = np.clip(enhanced, 0, 1)
    index_map = tf.image.ssim(a, target, 1.0, return_index_map=True).numpy()
    assert np.max(np.abs(metrics.ssim(a, target) - index_map.astype(np.float64).mean(axis=(1, 2)))) < 1e-6


def test_edge_cases_as_tensorflow():
    assert metrics.MS_SSIM_WEIGHTS == MS_SSIM_WEIGHTS  # kept in two places: losses import TensorFlow
    rng = np.random.default_rng(0)
    x = rng.random((2, 11, 11, 3), np.float32)
    # identical images: PSNR inf, SSIM and MS-SSIM 1; 11x11 is the smallest SSIM takes
    assert np.isinf(tf.image.psnr(x, x, 1.0).numpy()).all()
    m = metrics.image_metrics(x, x)
    assert m["psnr"] == float("inf") and abs(m["ssim"] - 1) < 1e-12 and abs(m["ms_ssim"] - 1) < 1e-12
    # 11x11 and 7x7 (MS-SSIM's window) sizes still agree
    y = rng.random((2, 11, 11, 3), np.float32)
    ref = tf_metrics(x, y)
    assert np.max(np.abs(metrics.ssim(x, y) - ref["ssim"])) < 1e-5
    assert np.max(np.abs(metrics.ms_ssim(x, y) - ref["ms_ssim"])) < 1e-5
    assert np.max(np.abs(metrics.ms_ssim(x[:, :7, :9], y[:, :7, :9]) - ms_ssim_value(x[:, :7, :9], y[:, :7, :9]).numpy())) < 1e-5
    with pytest.raises(ValueError, match="SSIM needs images of at least 11x11, got 10x11"):
        metrics.image_metrics(x[:, :10], y[:, :10])
    with pytest.raises(ValueError, match="MS-SSIM needs images of at least 7x7, got 6x11"):
        metrics.ms_ssim(x[:, :6], y[:, :6])
    with pytest.raises(ValueError, match="one shape"):
        metrics.image_metrics(x, y[:, :, :10])


# ----------------------------------------------------------------------------- no TensorFlow


def _python(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_metrics_and_evaluate_import_no_tensorflow():
    out = _python("import sys, mobile_enhance.metrics, mobile_enhance.evaluate; "
                  "print('tensorflow' in sys.modules, 'tf_keras' in sys.modules)")
    assert out == "False False"


def test_evaluating_a_tflite_file_loads_no_tensorflow(tmp_path):
    model = tmp_path / "id4.tflite"
    model.write_bytes(convert(identity4(), "float32"))
    spec = pairs_folder(tmp_path / "data", [(32, 40), (24, 24)])
    code = f"""
import json, sys
from mobile_enhance.evaluate import evaluate, load_pairs, tflite_system
pairs, _ = load_pairs({spec!r})
report = evaluate([tflite_system({str(model)!r})], pairs)
loaded = ['tensorflow' in sys.modules, 'tf_keras' in sys.modules]
from mobile_enhance.cli import main  # the command, too
rc = main(["mobile-enhance", "evaluate", "--model={model}", "--data={spec}", "--quiet"])
loaded += ['tensorflow' in sys.modules, 'tf_keras' in sys.modules]
print(json.dumps({{"loaded": loaded, "rc": rc, "report": report}}))
"""
    result = json.loads(_python(code))
    assert result["loaded"] == [False] * 4 and result["rc"] == 0
    report = result["report"]
    assert report["pairs_evaluated"] == 2
    rows = {r["name"]: r for r in report["results"]}
    for k in ("psnr", "ssim", "ms_ssim"):  # the identity scores as its input
        assert abs(rows["id4.tflite"][k] - rows["input"][k]) < 1e-6
