package org.mobileenhance.demo.check

// Runs the app's Android-free code (Tiling.kt, Sidecar.kt, BenchResult.kt) on the JVM for
// tests/test_android_demo.py, which compares the answers with the Python package.
//
// Usage: java -cp CLASSES:kotlin-stdlib.jar:json.jar org.mobileenhance.demo.check.HarnessKt REQUEST.json
// REQUEST.json is a JSON array of cases, each {"op": ..., arguments}; the answer, printed
// on stdout, is a JSON array with one object per case: the result, or {"error": message}
// when the app's code threw one of its own exceptions.

import java.io.File
import org.json.JSONArray
import org.json.JSONObject
import org.mobileenhance.demo.BenchResult
import org.mobileenhance.demo.LatencySummary
import org.mobileenhance.demo.ModelSidecar
import org.mobileenhance.demo.PixelSink
import org.mobileenhance.demo.PixelSource
import org.mobileenhance.demo.SidecarException
import org.mobileenhance.demo.Tiling
import org.mobileenhance.demo.TilingException
import org.mobileenhance.demo.WindowModel

fun floats(values: FloatArray): JSONArray {
    val a = JSONArray()
    for (v in values) a.put(v.toDouble())
    return a
}

fun ints(values: IntArray): JSONArray {
    val a = JSONArray()
    for (v in values) a.put(v)
    return a
}

fun floatArray(a: JSONArray): FloatArray = FloatArray(a.length()) { a.getDouble(it).toFloat() }

fun doubleArray(a: JSONArray): DoubleArray = DoubleArray(a.length()) { a.getDouble(it) }

/** An image held as h x w x 3 floats. */
class ArraySource(override val height: Int, override val width: Int, private val pixels: FloatArray) : PixelSource {
    override fun readRow(y: Int, x0: Int, count: Int, dst: FloatArray, dstOffset: Int) {
        if (y < 0 || y >= height || x0 < 0 || x0 + count > width) {
            throw IllegalStateException("readRow($y, $x0, $count) outside the $height x $width image")
        }
        System.arraycopy(pixels, (y * width + x0) * 3, dst, dstOffset, count * 3)
    }
}

/** Collects rows, checking that each arrives once and in order. */
class ArraySink(private val height: Int, private val width: Int) : PixelSink {
    val pixels = FloatArray(height * width * 3)
    var next = 0

    override fun writeRow(y: Int, rgb: FloatArray) {
        if (y != next) throw IllegalStateException("row $y written, expected row $next")
        System.arraycopy(rgb, 0, pixels, y * width * 3, width * 3)
        next += 1
    }
}

/**
 * The window function of tests/test_android_demo.py: x * 0.5 + 0.1 * (call number % 7),
 * each pixel repeated upscale x upscale times (a nearest-neighbour upscaler).
 */
class CountingModel(private val upscale: Int = 1) : WindowModel {
    var calls = 0
    val shapes = JSONArray()

    override fun run(window: FloatArray, h: Int, w: Int): FloatArray {
        calls += 1
        shapes.put(JSONArray().put(h).put(w))
        val shift = 0.1f * (calls % 7)
        val s = upscale
        val out = FloatArray(s * h * s * w * 3)
        for (r in 0 until s * h) for (c in 0 until s * w) for (k in 0 until 3) {
            out[(r * s * w + c) * 3 + k] = window[((r / s) * w + c / s) * 3 + k] * 0.5f + shift
        }
        return out
    }
}

fun answer(case: JSONObject): JSONObject {
    val out = JSONObject()
    when (val op = case.getString("op")) {
        "plan" -> {
            val tiles = Tiling.planTiles(
                case.getInt("height"), case.getInt("width"), case.getInt("tile_h"), case.getInt("tile_w"),
                case.getInt("overlap"), case.getInt("multiple_h"), case.getInt("multiple_w")
            )
            val a = JSONArray()
            for (t in tiles) a.put(ints(intArrayOf(t.y, t.x, t.h, t.w)))
            out.put("tiles", a)
            out.put("padding", ints(Tiling.paddingNeeded(tiles, case.getInt("height"), case.getInt("width"))))
        }
        "ramp" -> out.put("weights", floats(Tiling.ramp(case.getInt("n"), case.getInt("overlap"))))
        "weights" -> out.put("weights", floats(Tiling.blendWeights(case.getInt("h"), case.getInt("w"), case.getInt("overlap"))))
        "reflect" -> {
            val n = case.getInt("n")
            val indices = case.getJSONArray("indices")
            out.put("indices", ints(IntArray(indices.length()) { Tiling.reflectIndex(indices.getInt(it), n) }))
        }
        "enhance" -> {
            val height = case.getInt("height")
            val width = case.getInt("width")
            val upscale = case.optInt("upscale", 1)
            val sink = ArraySink(upscale * height, upscale * width)
            val model = CountingModel(upscale)
            Tiling.enhance(
                ArraySource(height, width, floatArray(case.getJSONArray("image"))), sink,
                case.getInt("tile_h"), case.getInt("tile_w"), case.getInt("overlap"),
                case.getInt("multiple_h"), case.getInt("multiple_w"), model, upscale
            )
            if (sink.next != upscale * height) throw IllegalStateException("${sink.next} of ${upscale * height} rows written")
            out.put("image", floats(sink.pixels))
            out.put("window_shapes", model.shapes)
        }
        "sidecar" -> {
            val s = ModelSidecar.parse(case.getString("text"), case.getString("source"))
            out.put("format", s.format)
            out.put("upscale", s.upscale)
            val shape = JSONArray()
            for (d in s.input.shape) shape.put(d ?: JSONObject.NULL)
            out.put("shape", shape)
            out.put("dtype", s.input.dtype)
            out.put("range", JSONArray().put(s.input.rangeLow.toDouble()).put(s.input.rangeHigh.toDouble()))
            val q = s.input.quantization
            out.put("quantization", if (q == null) JSONObject.NULL else JSONObject().put("scale", q.scale.toDouble()).put("zero_point", q.zeroPoint))
            out.put("has_output", s.output != null)
            out.put("size_multiple", s.sizeMultiple)
            out.put("dynamic_size", s.dynamicSize)
            out.put("model", s.model ?: JSONObject.NULL)
            val c = s.tileConfig()
            out.put("tile_config", ints(intArrayOf(c.tileH, c.tileW, c.overlap, c.multipleH, c.multipleW, c.upscale)))
        }
        "summary" -> {
            val s = LatencySummary.of(doubleArray(case.getJSONArray("values")))
            out.put("median", s.median).put("p90", s.p90).put("min", s.min)
        }
        "bench_json" -> {
            val r = BenchResult(
                case.getString("model"), case.getString("backend"), case.getInt("threads"), case.getInt("runs"),
                case.getDouble("init_ms"), LatencySummary.of(doubleArray(case.getJSONArray("inference"))),
                LatencySummary.of(doubleArray(case.getJSONArray("end_to_end"))), case.getString("device")
            )
            out.put("json", r.toJson().toString())
        }
        else -> throw IllegalArgumentException("unknown op \"$op\"")
    }
    return out
}

fun main(args: Array<String>) {
    if (args.size != 1) {
        System.err.println("usage: HarnessKt REQUEST.json")
        System.exit(2)
    }
    val cases = JSONArray(File(args[0]).readText())
    val answers = JSONArray()
    for (i in 0 until cases.length()) {
        val answer = try {
            answer(cases.getJSONObject(i))
        } catch (e: TilingException) {
            JSONObject().put("error", e.message)
        } catch (e: SidecarException) {
            JSONObject().put("error", e.message)
        } catch (e: IllegalArgumentException) {
            JSONObject().put("error", e.message)
        }
        answers.put(answer)
    }
    println(answers.toString())
}
