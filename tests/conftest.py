import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests are CPU-only and deterministic

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def vgg_h5(tmp_path_factory):
    """A keras VGG-19 (no top, random weights) and its weights file, as ``--vgg_weights`` takes."""
    from mobile_enhance.compat import keras

    path = tmp_path_factory.mktemp("vgg") / "vgg19_notop.h5"
    model = keras.applications.VGG19(include_top=False, weights=None)
    model.save_weights(str(path))
    return path, model
