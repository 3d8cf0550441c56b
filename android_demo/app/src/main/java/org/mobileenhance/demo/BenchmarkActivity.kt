package org.mobileenhance.demo

import android.app.Activity
import android.content.Intent
import android.graphics.Bitmap
import android.os.Bundle
import android.widget.Button
import android.widget.EditText
import android.widget.RadioGroup
import android.widget.TextView
import java.io.File
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Runs one bundled model N times on one backend and shares the result as JSON in the form
 * `mobile-enhance bench` writes ([BenchResult]).
 *
 * Each run enhances a deterministic test card of exactly one window (the model's input
 * size, or the app's tile for dynamic-size models) through the same path as a photo:
 * inference_ms is the time inside Interpreter.run, end_to_end_ms adds reading the bitmap,
 * converting to the input type, converting back and writing the output bitmap.
 * init_ms is creating the interpreter (GPU delegate set-up included). [WARMUP_RUNS] runs
 * before the timed ones are not counted. The JSON is also saved, written atomically, under
 * the app's external files directory, bench/MODEL_BACKEND_xTHREADS.json
 * (adb pull /sdcard/Android/data/org.mobileenhance.demo/files/bench/).
 */
class BenchmarkActivity : Activity() {
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var lastJson: String? = null
    private lateinit var model: String

    private lateinit var backendGroup: RadioGroup
    private lateinit var threadsInput: EditText
    private lateinit var runsInput: EditText
    private lateinit var runButton: Button
    private lateinit var shareButton: Button
    private lateinit var statusText: TextView
    private lateinit var resultText: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_benchmark)
        backendGroup = findViewById(R.id.bench_backend_group)
        threadsInput = findViewById(R.id.bench_threads_input)
        runsInput = findViewById(R.id.bench_runs_input)
        runButton = findViewById(R.id.bench_run_button)
        shareButton = findViewById(R.id.bench_share_button)
        statusText = findViewById(R.id.bench_status_text)
        resultText = findViewById(R.id.bench_result_text)

        val requested = intent.getStringExtra(EXTRA_MODEL)
        if (requested == null) {
            finish()
            return
        }
        model = requested
        backendGroup.check(if (intent.getStringExtra(EXTRA_BACKEND) == Backend.CPU.key) R.id.bench_backend_cpu else R.id.bench_backend_gpu)
        threadsInput.setText(intent.getIntExtra(EXTRA_THREADS, 4).toString())
        val modelText = findViewById<TextView>(R.id.bench_model_text)
        try {
            val c = BundledModels.sidecar(assets, model).tileConfig()
            modelText.text = getString(R.string.benchmark_model, model, c.tileH, c.tileW, WARMUP_RUNS)
        } catch (e: Exception) {
            modelText.text = getString(R.string.failed, e.message ?: e.toString())
            runButton.isEnabled = false
        }
        runButton.setOnClickListener { runBenchmark() }
        shareButton.setOnClickListener { share() }
    }

    override fun onDestroy() {
        worker.shutdownNow()
        super.onDestroy()
    }

    private fun number(input: EditText, label: Int, max: Int): Int? {
        val n = input.text.toString().trim().toIntOrNull()
        if (n == null || n < 1 || n > max) {
            statusText.text = getString(R.string.bad_number, getString(label), 1, max)
            return null
        }
        return n
    }

    private fun runBenchmark() {
        val threads = number(threadsInput, R.string.threads_label, MainActivity.MAX_THREADS) ?: return
        val runs = number(runsInput, R.string.runs_label, MAX_RUNS) ?: return
        val backend = if (backendGroup.checkedRadioButtonId == R.id.bench_backend_cpu) Backend.CPU else Backend.GPU
        runButton.isEnabled = false
        shareButton.isEnabled = false
        statusText.text = getString(R.string.loading_model, model, backend.key)
        val outDir = getExternalFilesDir(null) ?: filesDir
        worker.execute {
            var enhancer: Enhancer? = null
            try {
                val sidecar = BundledModels.sidecar(assets, model)
                val c = sidecar.tileConfig()
                val e = Enhancer.create(BundledModels.load(assets, model), model, sidecar, backend, threads)
                enhancer = e
                val source = BitmapSource(Photos.testCard(c.tileW, c.tileH))
                val sink = BitmapSink(Bitmap.createBitmap(c.tileW * c.upscale, c.tileH * c.upscale, Bitmap.Config.ARGB_8888))
                for (i in 0 until WARMUP_RUNS) {
                    Tiling.enhance(source, sink, c.tileH, c.tileW, c.overlap, c.multipleH, c.multipleW, e, c.upscale)
                }
                val inference = DoubleArray(runs)
                val endToEnd = DoubleArray(runs)
                for (i in 0 until runs) {
                    e.resetTimer()
                    val start = System.nanoTime()
                    Tiling.enhance(source, sink, c.tileH, c.tileW, c.overlap, c.multipleH, c.multipleW, e, c.upscale)
                    endToEnd[i] = (System.nanoTime() - start) / 1e6
                    inference[i] = e.inferenceNanos / 1e6
                    val done = i + 1
                    if (done == runs || done % 5 == 0) runOnUiThread { statusText.text = getString(R.string.benchmark_progress, done, runs) }
                }
                val result = BenchResult(
                    model, e.backend.key, threads, runs, e.initMs,
                    LatencySummary.of(inference), LatencySummary.of(endToEnd), Photos.deviceDescription()
                )
                val json = result.toJson().toString(2)
                val file = File(outDir, "bench/${model}_${e.backend.key}_x$threads.json")
                Photos.writeAtomically(file, json + "\n")
                val note = e.fallbackReason
                runOnUiThread {
                    lastJson = json
                    resultText.text = json
                    statusText.text = (if (note != null) getString(R.string.fallback, note) + "\n" else "") +
                        getString(R.string.saved_to, file.path)
                    runButton.isEnabled = true
                    shareButton.isEnabled = true
                }
            } catch (e: Exception) {
                runOnUiThread {
                    statusText.text = getString(R.string.failed, e.message ?: e.toString())
                    runButton.isEnabled = true
                }
            } finally {
                enhancer?.close()
            }
        }
    }

    private fun share() {
        val json = lastJson ?: return
        val send = Intent(Intent.ACTION_SEND)
            .setType("application/json")
            .putExtra(Intent.EXTRA_SUBJECT, "mobile_enhance benchmark: $model")
            .putExtra(Intent.EXTRA_TEXT, json)
        startActivity(Intent.createChooser(send, getString(R.string.share_title)))
    }

    companion object {
        const val EXTRA_MODEL = "org.mobileenhance.demo.MODEL"
        const val EXTRA_BACKEND = "org.mobileenhance.demo.BACKEND"
        const val EXTRA_THREADS = "org.mobileenhance.demo.THREADS"
        const val WARMUP_RUNS = 2
        const val MAX_RUNS = 1000
    }
}
