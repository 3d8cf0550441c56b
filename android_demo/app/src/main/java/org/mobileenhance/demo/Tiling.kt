package org.mobileenhance.demo

// Kotlin port of mobile_enhance/enhance/tiling.py: the same integer plans, the same
// weights (to float32 rounding) and the same blend. Pure Kotlin, no Android classes, so
// tests/test_android_demo.py runs it on the JVM against the Python module.
//
// Differences from the Python module are in memory only: the blend keeps a band of
// accumulator rows (from the current row of windows down to the end of its windows) and
// hands finished rows to a PixelSink, so a 12 MP photo needs at most width x tile x 3
// floats beside its input and output bitmaps, not a full-size float image.

/** One window: top-left corner (y, x) and size h x w, in image pixels. */
data class Tile(val y: Int, val x: Int, val h: Int, val w: Int)

/** Tiling arguments or a model output that cannot work; the message says which. */
class TilingException(message: String) : IllegalArgumentException(message)

/** Rows of an image as RGB floats in [0, 1]. */
interface PixelSource {
    val height: Int
    val width: Int

    /** Writes pixels (y, x0 until x0 + count), all inside the image, to dst from dstOffset as R, G, B. */
    fun readRow(y: Int, x0: Int, count: Int, dst: FloatArray, dstOffset: Int)
}

/** Receives finished output rows, top to bottom, each (output width) x 3 floats (R, G, B). */
interface PixelSink {
    fun writeRow(y: Int, rgb: FloatArray)
}

/** The model on one window: h x w x 3 floats (row-major, RGB) in, (s*h) x (s*w) x 3 out (s: its upscale). */
interface WindowModel {
    fun run(window: FloatArray, h: Int, w: Int): FloatArray
}

object Tiling {
    /** Smallest 1-D weight (as in tiling.py): every weight and every product of two stays a normal float. */
    const val MIN_WEIGHT = 1e-6

    private fun checkPositive(name: String, value: Int, minimum: Int = 1) {
        if (value < minimum) throw TilingException("$name must be >= $minimum, got $value")
    }

    /** Same checks and messages as tiling.py's _check. */
    fun checkArguments(tileH: Int, tileW: Int, overlap: Int, multipleH: Int, multipleW: Int) {
        checkPositive("tile", tileH)
        checkPositive("tile", tileW)
        checkPositive("multiple", multipleH)
        checkPositive("multiple", multipleW)
        checkPositive("overlap", overlap, 0)
        for ((axis, t, m) in listOf(Triple("height", tileH, multipleH), Triple("width", tileW, multipleW))) {
            if (t % m != 0) {
                val lo = Math.max(m, t / m * m)
                throw TilingException(
                    "tile $axis $t is not a multiple of the model's size multiple $m (use $lo or ${lo + m})"
                )
            }
            if (overlap >= t) throw TilingException("overlap $overlap must be smaller than the tile $axis $t")
        }
    }

    /** Window starts along an axis of n pixels (arguments already checked). */
    fun axisStarts(n: Int, tile: Int, overlap: Int): IntArray {
        if (n <= tile) return intArrayOf(0)
        val step = tile - overlap
        val count = (n - tile + step - 1) / step + 1
        return IntArray(count) { i -> Math.min(i * step, n - tile) }
    }

    /** The common window length along an axis of n pixels: the tile, or n rounded up to the multiple. */
    fun axisLength(n: Int, tile: Int, multiple: Int): Int =
        if (n <= tile) (n + multiple - 1) / multiple * multiple else tile

    /** Overlapping windows covering a height x width image, row by row (tiling.py plan_tiles). */
    fun planTiles(height: Int, width: Int, tileH: Int, tileW: Int, overlap: Int, multipleH: Int, multipleW: Int): List<Tile> {
        checkPositive("height", height)
        checkPositive("width", width)
        checkArguments(tileH, tileW, overlap, multipleH, multipleW)
        val h = axisLength(height, tileH, multipleH)
        val w = axisLength(width, tileW, multipleW)
        val tiles = ArrayList<Tile>()
        for (y in axisStarts(height, tileH, overlap)) {
            for (x in axisStarts(width, tileW, overlap)) tiles.add(Tile(y, x, h, w))
        }
        return tiles
    }

    fun planTiles(height: Int, width: Int, tile: Int, overlap: Int, multiple: Int): List<Tile> =
        planTiles(height, width, tile, tile, overlap, multiple, multiple)

    /** Rows below and columns right of the image that the windows reach: [bottom, right]. */
    fun paddingNeeded(tiles: List<Tile>, height: Int, width: Int): IntArray {
        var bottom = 0
        var right = 0
        for (t in tiles) {
            bottom = Math.max(bottom, t.y + t.h - height)
            right = Math.max(right, t.x + t.w - width)
        }
        return intArrayOf(bottom, right)
    }

    /** Source index of a possibly out-of-range index on an axis of n pixels (np.pad "reflect"). */
    fun reflectIndex(index: Int, n: Int): Int {
        if (n == 1) return 0
        val period = 2 * (n - 1)
        val m = Math.floorMod(index, period)
        return if (m < n) m else period - m
    }

    /** 1-D weights of an n-pixel window: a squared raised cosine over min(overlap, n / 2) pixels at each end. */
    fun ramp(n: Int, overlap: Int): FloatArray {
        checkPositive("window length", n)
        checkPositive("overlap", overlap, 0)
        val r = Math.min(overlap, n / 2)
        return FloatArray(n) { i ->
            val k = Math.min(i, n - 1 - i)
            if (k < r) {
                val rc = 0.5 - 0.5 * Math.cos(Math.PI * (k + 1) / (r + 1))
                Math.max(MIN_WEIGHT, rc * rc).toFloat()
            } else {
                1f
            }
        }
    }

    /** Separable weights of an h x w window, row-major: ramp(h)[i] * ramp(w)[j] as a float product. */
    fun blendWeights(h: Int, w: Int, overlap: Int): FloatArray {
        val wy = ramp(h, overlap)
        val wx = ramp(w, overlap)
        val out = FloatArray(h * w)
        for (i in 0 until h) for (j in 0 until w) out[i * w + j] = wy[i] * wx[j]
        return out
    }

    /** Sum of the windows' 1-D ramps at each of the n pixels (double sums in window order, as in tiling.py). */
    fun weightSum(n: Int, starts: IntArray, ramp: FloatArray): FloatArray {
        val total = DoubleArray(n)
        for (s in starts) {
            val end = Math.min(s + ramp.size, n)
            for (i in s until end) total[i] += ramp[i - s].toDouble()
        }
        return FloatArray(n) { total[it].toFloat() }
    }

    /** Copies window (y, x, h, w) of the source into dst (h x w x 3), reflecting past the image's end. */
    fun readWindow(source: PixelSource, y: Int, x: Int, h: Int, w: Int, dst: FloatArray) {
        val height = source.height
        val width = source.width
        val inside = Math.min(w, width - x)
        for (r in 0 until h) {
            val sy = reflectIndex(y + r, height)
            val rowOffset = r * w * 3
            source.readRow(sy, x, inside, dst, rowOffset)
            for (c in inside until w) {
                val sx = reflectIndex(x + c, width)
                if (sx >= x && sx < x + inside) {
                    System.arraycopy(dst, rowOffset + (sx - x) * 3, dst, rowOffset + c * 3, 3)
                } else {
                    source.readRow(sy, sx, 1, dst, rowOffset + c * 3)
                }
            }
        }
    }

    /**
     * Runs [model] window by window over [source] and writes the blended rows to [sink]
     * (tiling.py enhance_tiled). Windows are planned on the input; a model with an
     * [upscale] s returns s*h x s*w windows, and the sink receives s*height rows of
     * s*width pixels: every coordinate of the plan scaled by s, the blend over s * overlap.
     * [onWindow] is called after each window with (done, total).
     */
    fun enhance(
        source: PixelSource,
        sink: PixelSink,
        tileH: Int,
        tileW: Int,
        overlap: Int,
        multipleH: Int,
        multipleW: Int,
        model: WindowModel,
        upscale: Int = 1,
        onWindow: ((Int, Int) -> Unit)? = null
    ) {
        val height = source.height
        val width = source.width
        checkPositive("height", height)
        checkPositive("width", width)
        checkPositive("upscale", upscale)
        checkArguments(tileH, tileW, overlap, multipleH, multipleW)
        val s = upscale
        val ys = axisStarts(height, tileH, overlap)
        val xs = axisStarts(width, tileW, overlap)
        val h = axisLength(height, tileH, multipleH)
        val w = axisLength(width, tileW, multipleW)
        val outH = s * height
        val outW = s * width
        val wy = ramp(s * h, s * overlap)
        val wx = ramp(s * w, s * overlap)
        val sumY = weightSum(outH, IntArray(ys.size) { s * ys[it] }, wy)
        val sumX = weightSum(outW, IntArray(xs.size) { s * xs[it] }, wx)
        val window = FloatArray(h * w * 3)
        val band = ArrayList<FloatArray>() // accumulator output rows first, first + 1, ...
        var first = 0
        var done = 0
        val total = ys.size * xs.size
        val ow = s * w
        for (iy in ys.indices) {
            val y = s * ys[iy]
            val rowsInside = s * Math.min(h, height - ys[iy])
            while (first + band.size < y + rowsInside) band.add(FloatArray(outW * 3))
            for (xi in xs) {
                readWindow(source, ys[iy], xi, h, w, window)
                val out = model.run(window, h, w)
                if (out.size != s * h * ow * 3) {
                    throw TilingException(
                        "the model returned ${out.size} values for a window of $h x $w x 3; it must return " +
                            "${s * h} x $ow x 3 (${s * h * ow * 3})" + if (s > 1) " (upscale $s)" else " (the same size)"
                    )
                }
                val x = s * xi
                val colsInside = s * Math.min(w, width - xi)
                for (r in 0 until rowsInside) {
                    val acc = band[y + r - first]
                    val weightRow = wy[r]
                    for (c in 0 until colsInside) {
                        val weight = weightRow * wx[c]
                        val o = (r * ow + c) * 3
                        val a = (x + c) * 3
                        acc[a] += weight * out[o]
                        acc[a + 1] += weight * out[o + 1]
                        acc[a + 2] += weight * out[o + 2]
                    }
                }
                done += 1
                if (onWindow != null) onWindow(done, total)
            }
            // Rows above the next row of windows are finished.
            val finishedBelow = if (iy + 1 < ys.size) s * ys[iy + 1] else outH
            while (first < finishedBelow) {
                val acc = band.removeAt(0)
                val sy = sumY[first]
                for (c in 0 until outW) {
                    val sx = sumX[c]
                    for (k in 0 until 3) acc[c * 3 + k] = acc[c * 3 + k] / sy / sx
                }
                sink.writeRow(first, acc)
                first += 1
            }
        }
    }
}
