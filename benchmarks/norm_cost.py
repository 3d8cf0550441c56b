"""What do instance norms cost a float32 LiteRT file? Timed against two cheaper stand-ins.

For each model with instance norms, three float32 files at ``--size`` (random weights):
as exported; with each norm written as ``x * a + b`` (``a`` and ``b`` per image and channel
from the mean and the mean square: two full-size passes fewer, not exact to the last bit);
and with each norm replaced by its per-channel affine only (a lower bound: what the model
would cost with no normalization at all). All files are timed interleaved in one process
(LiteRT, XNNPACK, ``--threads``), so the ratios share the machine's state. Writes
``OUT/norm_cost.md`` with ``--out``.

usage: python benchmarks/norm_cost.py [--models=fast_dped,muxdemux] [--size=720x1280] [--runs=7] [--threads=2] [--out=DIR]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def variants(model):
    """``{label: keras model}``: the model, its moments form, and its affine-only stand-in."""
    from mobile_enhance.compat import keras, tf
    from mobile_enhance.models.layers import InstanceNormalization

    class Affine(keras.layers.Layer):
        def build(self, shape):
            self.gamma = self.add_weight(name="gamma", shape=(shape[-1],))
            self.beta = self.add_weight(name="beta", shape=(shape[-1],))

        def call(self, x):
            return x * self.gamma + self.beta

    class Moments(Affine):
        def __init__(self, epsilon, **kwargs):
            super().__init__(**kwargs)
            self.epsilon = epsilon

        def get_config(self):
            return {**super().get_config(), "epsilon": self.epsilon}

        def call(self, x):
            mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
            scale = self.gamma * tf.math.rsqrt(tf.reduce_mean(x * x, axis=[1, 2], keepdims=True) - mean * mean + self.epsilon)
            return x * scale + (self.beta - mean * scale)

    def swap(cls):
        def clone(layer):
            if isinstance(layer, InstanceNormalization):
                return cls(name=layer.name) if cls is Affine else cls(epsilon=layer.epsilon, name=layer.name)
            return layer.__class__.from_config(layer.get_config())

        swapped = keras.models.clone_model(model, clone_function=clone)
        swapped.set_weights(model.get_weights())
        return swapped

    return {"instance norm (as exported)": model, "moments form": swap(Moments), "affine only (no norm)": swap(Affine)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="fast_dped,muxdemux")
    parser.add_argument("--size", default="720x1280")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from mobile_enhance.export import convert
    from mobile_enhance.models import build_model
    from mobile_enhance.runtime import make_interpreter

    h, w = (int(v) for v in args.size.split("x"))
    x = np.random.default_rng(0).random((1, h, w, 3), dtype=np.float32)
    lines = [f"# Instance-norm cost in float32 LiteRT files, {h}x{w}, {args.threads} threads, median of {args.runs} interleaved runs",
             "", "| model | graph | median ms | vs as exported | max abs diff vs Keras |", "|---|---|---|---|---|"]
    for name in args.models.split(","):
        model = build_model(name)
        reference = model(x).numpy()
        interpreters = {}
        for label, graph in variants(model).items():
            it = make_interpreter(model_content=convert(graph, "float32", (h, w)), num_threads=args.threads)
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            diff = float(np.abs(it.get_tensor(it.get_output_details()[0]["index"]) - reference).max())
            interpreters[label] = (it, diff)
        times = {label: [] for label in interpreters}
        for _ in range(args.runs):
            for label, (it, _) in interpreters.items():
                start = time.perf_counter()
                it.invoke()
                times[label].append(time.perf_counter() - start)
        base = np.median(times["instance norm (as exported)"])
        for label, (_, diff) in interpreters.items():
            median = np.median(times[label])
            lines.append(f"| {name} | {label} | {1000 * median:.1f} | {median / base:.2f}x | "
                         + (f"{diff:.1e} |" if "affine" not in label else "(not the same function) |"))
    text = "\n".join(lines) + "\n"
    from mobile_enhance.fileio import emit_report

    emit_report(text, args.out, "norm_cost.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
