"""The one place that decides which Keras is used.

tensorflow-model-optimization 0.8 only works with Keras 2, which TensorFlow 2.16+
ships separately as the ``tf_keras`` package. Setting ``TF_USE_LEGACY_KERAS=1``
before TensorFlow is imported makes ``tf.keras`` resolve to ``tf_keras`` too, so
models built here, ``tf.lite.TFLiteConverter`` and tfmot all agree on one Keras.

Every module of the package imports ``keras``, ``tf`` and ``tfmot`` from here.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if os.environ["TF_USE_LEGACY_KERAS"] != "1":  # pragma: no cover - user override
    raise ImportError(
        "mobile_enhance needs Keras 2 (tf_keras) for tensorflow-model-optimization, "
        f"but TF_USE_LEGACY_KERAS={os.environ['TF_USE_LEGACY_KERAS']!r} is set; unset it or set it to 1."
    )

import contextlib  # noqa: E402
import sys  # noqa: E402


@contextlib.contextmanager
def _native_stderr_silenced():
    """Hide what TensorFlow's C++ runtime prints to fd 2 while it starts.

    TF 2.21 logs through absl before its log level is read, so TF_CPP_MIN_LOG_LEVEL
    cannot hide the start-up lines (oneDNN notice, "could not find cuda drivers",
    "failed call to cuInit" on machines without a GPU). Python exceptions are
    unaffected: they are raised after fd 2 is restored. Set
    MOBILE_ENHANCE_TF_LOGS=1 to see those lines.
    """
    if os.environ.get("MOBILE_ENHANCE_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _native_stderr_silenced():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    GPUS = tf.config.list_physical_devices("GPU")  # initialises the platforms, quietly


def tfmot():
    """Return ``tensorflow_model_optimization``, imported on first use (it is slow to import)."""
    import tensorflow_model_optimization as _tfmot

    return _tfmot


__all__ = ["GPUS", "tf", "keras", "tfmot"]
