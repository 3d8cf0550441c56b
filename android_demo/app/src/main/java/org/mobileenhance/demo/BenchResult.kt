package org.mobileenhance.demo

import org.json.JSONObject

/** Median, p90 and minimum of latency samples, in milliseconds. */
data class LatencySummary(val median: Double, val p90: Double, val min: Double) {
    fun toJson(): JSONObject = JSONObject().put("median", median).put("p90", p90).put("min", min)

    companion object {
        /**
         * Percentile [q] (0..100) of [values] with linear interpolation between samples,
         * numpy's default, so the app's figures compare with `mobile-enhance bench`'s.
         */
        fun percentile(values: DoubleArray, q: Double): Double {
            if (values.isEmpty()) throw IllegalArgumentException("percentile of no samples")
            if (q < 0 || q > 100) throw IllegalArgumentException("percentile must be in [0, 100], got $q")
            val sorted = values.sortedArray()
            val position = q / 100.0 * (sorted.size - 1)
            val below = Math.floor(position).toInt()
            val above = Math.min(below + 1, sorted.size - 1)
            val t = position - below
            return sorted[below] + (sorted[above] - sorted[below]) * t
        }

        fun of(milliseconds: DoubleArray): LatencySummary {
            val median = percentile(milliseconds, 50.0) // throws on no samples
            var min = Double.POSITIVE_INFINITY
            for (v in milliseconds) if (v < min) min = v
            return LatencySummary(median, percentile(milliseconds, 90.0), min)
        }
    }
}

/**
 * One benchmark run, in the JSON form that `mobile-enhance bench` writes:
 *
 *     {"model": str, "backend": "gpu" | "cpu", "threads": int, "runs": int, "init_ms": float,
 *      "inference_ms": {"median", "p90", "min"}, "end_to_end_ms": {...}, "device": str}
 */
data class BenchResult(
    val model: String,
    val backend: String,
    val threads: Int,
    val runs: Int,
    val initMs: Double,
    val inferenceMs: LatencySummary,
    val endToEndMs: LatencySummary,
    val device: String
) {
    init {
        if (backend != "gpu" && backend != "cpu") throw IllegalArgumentException("backend must be \"gpu\" or \"cpu\", got \"$backend\"")
        if (runs < 1) throw IllegalArgumentException("runs must be >= 1, got $runs")
    }

    fun toJson(): JSONObject = JSONObject()
        .put("model", model)
        .put("backend", backend)
        .put("threads", threads)
        .put("runs", runs)
        .put("init_ms", initMs)
        .put("inference_ms", inferenceMs.toJson())
        .put("end_to_end_ms", endToEndMs.toJson())
        .put("device", device)
}
