package org.mobileenhance.demo

import org.json.JSONArray
import org.json.JSONException
import org.json.JSONObject

/** A sidecar that the app cannot use; the message starts with the file's name. */
class SidecarException(message: String) : Exception(message)

/** Tiling arguments for [Tiling.enhance]; tiles, overlap and multiples in input pixels. */
data class TileConfig(val tileH: Int, val tileW: Int, val overlap: Int, val multipleH: Int, val multipleW: Int, val upscale: Int = 1)

/** real = scale * (q - zeroPoint). */
data class Quantization(val scale: Float, val zeroPoint: Int)

/**
 * One tensor's contract from the sidecar.
 *
 * @property shape [1, H, W, 3]; H and W are null where the size is dynamic (-1 or null in the JSON).
 * @property dtype "float32", "uint8" or "int8".
 * @property rangeLow, rangeHigh the real values that image values 0 and 1 map to (default [0, 1]).
 * @property quantization scale and zero point; required for uint8 and int8.
 */
data class TensorSpec(
    val shape: List<Int?>,
    val dtype: String,
    val rangeLow: Float,
    val rangeHigh: Float,
    val quantization: Quantization?
) {
    val height: Int? get() = shape[1]
    val width: Int? get() = shape[2]
}

/**
 * What the app reads from NAME.json beside NAME.tflite, the fields of the sidecar format
 * mobile_enhance.tflite_sidecar/2 (mobile_enhance/runtime/sidecar.py documents the schema;
 * tests/test_android_demo.py checks that this reader and the Python one take the same
 * fields from the shipped sidecars):
 *
 *     {"format": "mobile_enhance.tflite_sidecar/2",
 *      "input": {"shape": [1, H, W, 3], "dtype": "uint8" | "float32" | "int8",
 *                "range": [0, 1], "quantization": {"scale": s, "zero_point": z}},
 *      "output": {...same keys; shape [1, s*H, s*W, 3]...},
 *      "size_multiple": m, "dynamic_size": true | false, "upscale": s, "model": "fast_dped" | null}
 *
 * Other keys (fidelity figures, provenance) are the exporter's and are ignored here.
 */
data class ModelSidecar(
    val source: String,
    val format: String,
    val input: TensorSpec,
    val output: TensorSpec?,
    val sizeMultiple: Int,
    val dynamicSize: Boolean,
    val upscale: Int,
    val model: String?
) {
    /**
     * How the app tiles photos for this model. A fixed-size model gets windows of exactly
     * its input size (tile = multiple = input size); a dynamic-size one gets square tiles
     * of [preferredTile] rounded down to the size multiple. The overlap is a quarter of
     * the smaller tile side, at most [maxOverlap].
     */
    fun tileConfig(preferredTile: Int = 512, maxOverlap: Int = 32): TileConfig {
        val config = if (dynamicSize) {
            // the preferred tile is in output pixels: an upscaling model's input windows are s times smaller
            val side = Math.max(1, preferredTile / upscale)
            val tile = Math.max(sizeMultiple, side / sizeMultiple * sizeMultiple)
            TileConfig(tile, tile, Math.min(maxOverlap, tile / 4), sizeMultiple, sizeMultiple, upscale)
        } else {
            val h = input.height!!
            val w = input.width!!
            TileConfig(h, w, Math.min(maxOverlap, Math.min(h, w) / 4), h, w, upscale)
        }
        Tiling.checkArguments(config.tileH, config.tileW, config.overlap, config.multipleH, config.multipleW)
        return config
    }

    companion object {
        val DTYPES = listOf("float32", "uint8", "int8")
        const val FORMAT = "mobile_enhance.tflite_sidecar/2"
        val OLD_FORMATS = listOf("mobile_enhance.tflite_sidecar/1")

        /** Parses sidecar [text]; [source] (the file's name) starts every error message. */
        fun parse(text: String, source: String): ModelSidecar {
            val root = try {
                JSONObject(text)
            } catch (e: JSONException) {
                throw SidecarException("$source: not a JSON object (${e.message})")
            }
            val p = Parser(source)
            val format = if (root.has("format") && !root.isNull("format")) p.string(root, "format", "format") else ""
            if (format in OLD_FORMATS) {
                throw SidecarException(
                    "$source: format \"$format\" is from an earlier mobile_enhance (this app reads \"$FORMAT\"); " +
                        "re-export the model with mobile-enhance export"
                )
            }
            if (format != FORMAT) p.fail("format", "must be \"$FORMAT\", got \"$format\"")
            val input = p.tensor(p.obj(root, "input", "input"), "input")
            val output = if (root.has("output") && !root.isNull("output")) p.tensor(p.obj(root, "output", "output"), "output") else null
            val multiple = p.int(root, "size_multiple", "size_multiple")
            if (multiple < 1) throw SidecarException("$source: size_multiple must be >= 1, got $multiple")
            val dynamicDims = input.height == null || input.width == null
            val dynamic = if (root.has("dynamic_size")) p.bool(root, "dynamic_size", "dynamic_size") else dynamicDims
            if (!dynamic && dynamicDims) {
                throw SidecarException("$source: dynamic_size is false but input.shape ${input.shape} has no fixed height and width")
            }
            if (!dynamic) {
                for ((axis, n) in listOf("height" to input.height!!, "width" to input.width!!)) {
                    if (n % multiple != 0) {
                        throw SidecarException("$source: input $axis $n is not a multiple of size_multiple $multiple")
                    }
                }
            }
            val upscale = p.int(root, "upscale", "upscale")
            if (upscale < 1) throw SidecarException("$source: upscale must be >= 1, got $upscale")
            if (!dynamic && output != null && output.height != null && output.width != null &&
                (output.height != input.height!! * upscale || output.width != input.width!! * upscale)
            ) {
                throw SidecarException(
                    "$source: output.shape must be input.shape x upscale $upscale = " +
                        "[1, ${input.height!! * upscale}, ${input.width!! * upscale}, 3], got ${output.shape}"
                )
            }
            val model = if (root.has("model") && !root.isNull("model")) p.string(root, "model", "model") else null
            return ModelSidecar(source, format, input, output, multiple, dynamic, upscale, model)
        }
    }

    private class Parser(val source: String) {
        fun fail(path: String, problem: String): Nothing = throw SidecarException("$source: $path $problem")

        fun value(o: JSONObject, key: String, path: String): Any {
            if (!o.has(key) || o.isNull(key)) fail(path, "is missing")
            return o.get(key)
        }

        fun obj(o: JSONObject, key: String, path: String): JSONObject =
            value(o, key, path) as? JSONObject ?: fail(path, "must be a JSON object")

        fun string(o: JSONObject, key: String, path: String): String =
            value(o, key, path) as? String ?: fail(path, "must be a string")

        fun bool(o: JSONObject, key: String, path: String): Boolean =
            value(o, key, path) as? Boolean ?: fail(path, "must be true or false")

        fun number(v: Any?, path: String): Double {
            if (v !is Number) fail(path, "must be a number, got ${JSONObject.wrap(v)}")
            val d = v.toDouble()
            if (d.isNaN() || d.isInfinite()) fail(path, "must be finite, got $d")
            return d
        }

        fun integer(v: Any?, path: String): Int {
            val d = number(v, path)
            if (d != Math.rint(d) || Math.abs(d) > Int.MAX_VALUE) fail(path, "must be an integer, got $v")
            return d.toInt()
        }

        fun int(o: JSONObject, key: String, path: String): Int = integer(value(o, key, path), path)

        fun array(o: JSONObject, key: String, path: String): JSONArray =
            value(o, key, path) as? JSONArray ?: fail(path, "must be a JSON array")

        fun tensor(o: JSONObject, path: String): TensorSpec {
            val shapeJson = array(o, "shape", "$path.shape")
            if (shapeJson.length() != 4) fail("$path.shape", "must be [1, H, W, 3], got $shapeJson")
            val shape = ArrayList<Int?>()
            for (i in 0 until 4) {
                val v = shapeJson.opt(i)
                val n = if (v == null || v == JSONObject.NULL) null else integer(v, "$path.shape[$i]")
                shape.add(if (n == -1) null else n)
            }
            if (shape[0] != null && shape[0] != 1) fail("$path.shape", "must have batch 1, got $shapeJson")
            if (shape[3] != 3) fail("$path.shape", "must end in 3 channels, got $shapeJson")
            for (i in 1..2) {
                val n = shape[i]
                if (n != null && n < 1) fail("$path.shape", "has a non-positive size: $shapeJson")
            }
            val dtype = string(o, "dtype", "$path.dtype")
            if (dtype !in DTYPES) fail("$path.dtype", "must be one of ${DTYPES.joinToString()}, got \"$dtype\"")
            var low = 0f
            var high = 1f
            if (o.has("range") && !o.isNull("range")) {
                val r = array(o, "range", "$path.range")
                if (r.length() != 2) fail("$path.range", "must be [low, high], got $r")
                low = number(r.opt(0), "$path.range[0]").toFloat()
                high = number(r.opt(1), "$path.range[1]").toFloat()
                if (!(high > low)) fail("$path.range", "must have high > low, got $r")
            }
            var quantization: Quantization? = null
            if (o.has("quantization") && !o.isNull("quantization")) {
                val q = obj(o, "quantization", "$path.quantization")
                val scale = number(value(q, "scale", "$path.quantization.scale"), "$path.quantization.scale")
                if (!(scale > 0)) fail("$path.quantization.scale", "must be > 0, got $scale")
                val zero = int(q, "zero_point", "$path.quantization.zero_point")
                val lo = if (dtype == "int8") -128 else 0
                val hi = if (dtype == "int8") 127 else 255
                if (dtype != "float32" && (zero < lo || zero > hi)) {
                    fail("$path.quantization.zero_point", "must be in [$lo, $hi] for $dtype, got $zero")
                }
                quantization = Quantization(scale.toFloat(), zero)
            }
            if (dtype != "float32" && quantization == null) fail("$path.quantization", "is missing (required for $dtype)")
            return TensorSpec(shape, dtype, low, high, quantization)
        }
    }
}
