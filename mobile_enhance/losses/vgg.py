"""VGG-19 feature extractor for the perceptual losses, and where its weights come from.

Weights, in this order:
  1. a file given by the user (``--vgg_weights`` or ``MOBILE_ENHANCE_VGG_WEIGHTS``):
     a Keras weights file (``.h5``/``.weights.h5``, e.g. keras' ImageNet
     ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``) or the MatConvNet
     ``imagenet-vgg-verydeep-19.mat`` that DPED uses;
  2. keras' cache (``~/.keras/models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``);
  3. ``keras.applications.VGG19(weights="imagenet")``, which downloads, where online.
With none of them, :class:`VGGWeightsMissing` says in one line how to provide them.

Layer names follow the papers: ``conv{b}_{i}`` / ``relu{b}_{i}`` (DPED's ``relu5_4`` is
keras' ``block5_conv4`` output), ``pool{b}`` the 2x2 max pooling after block ``b`` (keras'
``block{b}_pool``; EnhanceNet's ``pool2`` and ``pool5``). Input: ``(N, H, W, 3)`` RGB
float32 in [0, 1]; the extractor subtracts the ImageNet mean on the 0-255 scale and, for Keras (Caffe-trained)
weights, swaps to BGR, as each weight file expects.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mobile_enhance.compat import keras, tf
from mobile_enhance.errors import UserError

KERAS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_MEAN_RGB = np.array([123.68, 116.779, 103.939], np.float32)
BLOCKS = (2, 2, 4, 4, 4)
WIDTHS = (64, 128, 256, 512, 512)
#: The trunk's outputs in order: each block's ReLUs, then its 2x2 max pooling (``pool5``
#: ends the trunk; EnhanceNet's perceptual loss reads ``pool2`` and ``pool5``).
LAYERS = tuple(name for b, n in enumerate(BLOCKS, 1) for name in [f"relu{b}_{i}" for i in range(1, n + 1)] + [f"pool{b}"])


class VGGWeightsMissing(UserError):
    pass


HOW_TO = (
    "VGG-19 ImageNet weights are needed for the content/perceptual loss and none were found: "
    f"pass --vgg_weights=FILE (keras' {KERAS_FILE} or MatConvNet's imagenet-vgg-verydeep-19.mat), "
    "set MOBILE_ENHANCE_VGG_WEIGHTS, or train with a recipe without VGG terms"
)


def vgg19_graph(until: str = "relu5_4") -> keras.Model:
    """VGG-19 convolutional trunk up to layer ``until`` (random weights), outputs every
    relu and pool up to it, in the order of :data:`LAYERS`."""
    if until not in LAYERS:
        raise UserError(f"unknown VGG-19 layer {until!r}; known: {', '.join(LAYERS)}")
    inputs = keras.Input((None, None, 3), name="vgg_input")
    x, outputs = inputs, []
    for b, (n, width) in enumerate(zip(BLOCKS, WIDTHS), 1):
        for i in range(1, n + 1):
            x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{b}_{i}")(x)
            outputs.append(x)
            if f"relu{b}_{i}" == until:
                return keras.Model(inputs, outputs, name="vgg19")
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{b}")(x)
        outputs.append(x)
        if f"pool{b}" == until:
            return keras.Model(inputs, outputs, name="vgg19")
    raise AssertionError("unreachable")


def _load_keras_file(model: keras.Model, path: Path) -> None:
    """Keras ImageNet weights: layers ``block{b}_conv{i}`` in order (BGR, Caffe)."""
    reference = keras.applications.VGG19(include_top=False, weights=None)
    try:
        reference.load_weights(str(path))
    except Exception as error:  # noqa: BLE001 - any failure is the user's file
        raise UserError(f"{path}: not a VGG-19 Keras weights file ({error})") from None
    for layer in model.layers:
        if layer.name.startswith("conv"):
            b, i = layer.name[4:].split("_")
            layer.set_weights(reference.get_layer(f"block{b}_conv{i}").get_weights())


def _load_matconvnet(model: keras.Model, path: Path) -> None:
    """MatConvNet ``imagenet-vgg-verydeep-19.mat`` (RGB). Kernels are stored (W, H, in, out)."""
    import scipy.io

    try:
        data = scipy.io.loadmat(str(path))
        layers = data["layers"][0]
    except Exception as error:  # noqa: BLE001
        raise UserError(f"{path}: not a MatConvNet VGG-19 .mat file ({error})") from None
    found = {}
    for entry in layers:
        entry = entry[0][0]
        name = str(entry["name"][0])
        if name.startswith("conv"):
            kernel, bias = entry["weights"][0]
            found[name] = (np.transpose(kernel, (1, 0, 2, 3)).astype(np.float32), bias.reshape(-1).astype(np.float32))
    for layer in model.layers:
        if layer.name.startswith("conv"):
            if layer.name not in found:
                raise UserError(f"{path}: layer {layer.name} missing from the .mat file")
            layer.set_weights(list(found[layer.name]))


def find_weights(path: str | None = None) -> Path | None:
    """The first available weights file, following the order in the module docstring."""
    candidates = [path, os.environ.get("MOBILE_ENHANCE_VGG_WEIGHTS"), Path.home() / ".keras" / "models" / KERAS_FILE]
    for i, candidate in enumerate(candidates):
        if not candidate:
            continue
        candidate = Path(candidate)
        if candidate.is_file():
            return candidate
        if i < 2:
            raise UserError(f"{candidate}: VGG-19 weights file not found")
    return None


class VGGFeatures:
    """Callable ``images -> {layer: features}`` for the layers asked for.

    Args:
      layers: names from :data:`LAYERS`, e.g. ``("relu5_4",)`` or ``("pool2", "pool5")``.
      weights: path of a weights file; ``None`` searches (see module docstring).
      allow_download: try ``keras.applications`` when no file is found.
    """

    def __init__(self, layers=("relu5_4",), weights: str | None = None, allow_download: bool = True):
        self.layers = tuple(layers)
        unknown = [name for name in self.layers if name not in LAYERS]
        if unknown:
            raise UserError(f"unknown VGG-19 layer {unknown[0]!r}; known: {', '.join(LAYERS)}")
        deepest = max(self.layers, key=LAYERS.index)
        trunk = vgg19_graph(deepest)
        path = find_weights(weights)
        if path is None and allow_download:
            path = self._download()
        if path is None:
            raise VGGWeightsMissing(HOW_TO)
        self.bgr = path.suffix != ".mat"
        (_load_matconvnet if path.suffix == ".mat" else _load_keras_file)(trunk, path)
        self.source = str(path)
        wanted = [trunk.get_layer(name.replace("relu", "conv")).output for name in self.layers]
        self.model = keras.Model(trunk.input, wanted, name="vgg19_features")
        self.model.trainable = False

    @staticmethod
    def _download() -> Path | None:
        try:
            return Path(keras.utils.get_file(KERAS_FILE, "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_FILE, cache_subdir="models"))
        except Exception:  # noqa: BLE001 - offline: report through VGGWeightsMissing
            return None

    def preprocess(self, images):
        x = images * 255.0 - IMAGENET_MEAN_RGB
        return x[..., ::-1] if self.bgr else x

    def __call__(self, images) -> dict:
        outputs = self.model(self.preprocess(tf.convert_to_tensor(images, tf.float32)), training=False)
        if len(self.layers) == 1:
            outputs = [outputs]
        return dict(zip(self.layers, outputs))
