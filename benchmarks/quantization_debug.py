"""Where does int8 lose precision? TFLite's QuantizationDebugger on a trained run.

Converts the run's generator to full int8 at its patch size, calibrated on
``--calibration`` images of its training data (as ``mobile-enhance export --quant=int8``
does), runs the debugger on ``--debug_images`` of them and lists the tensors with the
largest error relative to their quantization step: RMSE(int8 - float) / scale. Ideal
rounding gives 1/sqrt(12) = 0.29; a tensor far above that is where the model's int8
version drifts. Writes ``OUT/quantization_debug_<model>.md`` when ``--out`` is given.

usage: python benchmarks/quantization_debug.py RUN_DIR [--calibration=32] [--debug_images=8] [--top=15] [--out=DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import sys


def layer_errors(run_dir, calibration: int = 32, debug_images: int = 8) -> tuple[str, list[dict]]:
    """``(model name, rows)``, rows sorted by ``rmse_over_scale``, largest first."""
    from mobile_enhance.compat import tf
    from mobile_enhance.export import load_trained
    from mobile_enhance.export.exporter import representative_inputs
    from mobile_enhance.export.tflite import _concrete_function

    model, source, _, name, _ = load_trained(run_dir=run_dir)
    size = source.patch_size
    inputs = representative_inputs(source, size, size, calibration)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([_concrete_function(model, (size, size))], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None]] for x in inputs)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: ([x[None]] for x in inputs[:debug_images])
    )
    debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = []
    for r in csv.DictReader(io.StringIO(dump.getvalue())):
        scale, mse = float(r["scale"]), float(r["mean_squared_error"])
        rows.append({"op": r["op_name"], "tensor": r["tensor_name"], "scale": scale, "mse": mse,
                     "rmse_over_scale": mse**0.5 / scale if scale else 0.0})
    rows.sort(key=lambda r: -r["rmse_over_scale"])
    return name, rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--debug_images", type=int, default=8)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    name, rows = layer_errors(args.run, args.calibration, args.debug_images)
    lines = [f"# int8 error per tensor: {name} ({args.run})", "",
             f"RMSE(int8 - float) / quantization step on {args.debug_images} images, calibrated on {args.calibration}; "
             "ideal rounding: 0.29.", "",
             "| op | tensor | RMSE / step | step (scale) |", "|---|---|---|---|"]
    lines += [f"| {r['op']} | {r['tensor'][:70]} | {r['rmse_over_scale']:.2f} | {r['scale']:.4g} |" for r in rows[: args.top]]
    text = "\n".join(lines) + "\n"
    from mobile_enhance.fileio import emit_report

    emit_report(text, args.out, f"quantization_debug_{name}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
