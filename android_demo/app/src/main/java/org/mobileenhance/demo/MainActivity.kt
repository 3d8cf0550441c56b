package org.mobileenhance.demo

import android.app.Activity
import android.content.Intent
import android.graphics.Bitmap
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.provider.MediaStore
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.EditText
import android.widget.ImageView
import android.widget.RadioGroup
import android.widget.Spinner
import android.widget.TextView
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Pick a photo, enhance it with a bundled model on the GPU delegate or the CPU, and show
 * before, after and the latencies of the last run on each backend.
 *
 * Latencies: init = [Enhancer.create] (once per model, backend and thread count; later
 * runs reuse the interpreter and show the figure from when it was created); inference =
 * time inside Interpreter.run summed over the photo's windows; end-to-end = decoding the
 * photo, tiling, all windows with their pixel conversions and the output bitmap (display
 * not included).
 */
class MainActivity : Activity() {
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()

    /** Touched on [worker] only: the GPU delegate must stay on the thread that made it. */
    private var enhancer: Enhancer? = null

    private var photoUri: Uri? = null
    private var models: List<String> = emptyList()
    private val lastRuns = LinkedHashMap<String, String>()

    private lateinit var modelSpinner: Spinner
    private lateinit var backendGroup: RadioGroup
    private lateinit var threadsInput: EditText
    private lateinit var pickButton: Button
    private lateinit var enhanceButton: Button
    private lateinit var benchmarkButton: Button
    private lateinit var statusText: TextView
    private lateinit var latencyText: TextView
    private lateinit var beforeImage: ImageView
    private lateinit var afterImage: ImageView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        modelSpinner = findViewById(R.id.model_spinner)
        backendGroup = findViewById(R.id.backend_group)
        threadsInput = findViewById(R.id.threads_input)
        pickButton = findViewById(R.id.pick_button)
        enhanceButton = findViewById(R.id.enhance_button)
        benchmarkButton = findViewById(R.id.benchmark_button)
        statusText = findViewById(R.id.status_text)
        latencyText = findViewById(R.id.latency_text)
        beforeImage = findViewById(R.id.before_image)
        afterImage = findViewById(R.id.after_image)

        models = BundledModels.list(assets)
        modelSpinner.adapter = ArrayAdapter(this, R.layout.spinner_item, models)
        pickButton.setOnClickListener { pickPhoto() }
        enhanceButton.setOnClickListener { enhance() }
        benchmarkButton.setOnClickListener { openBenchmark() }
        if (models.isEmpty()) {
            statusText.text = getString(R.string.no_models)
            enhanceButton.isEnabled = false
            benchmarkButton.isEnabled = false
        }
        val saved = savedInstanceState?.getString(KEY_PHOTO)
        if (saved != null) showBefore(Uri.parse(saved))
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        val uri = photoUri
        if (uri != null) outState.putString(KEY_PHOTO, uri.toString())
    }

    override fun onDestroy() {
        worker.execute {
            enhancer?.close()
            enhancer = null
        }
        worker.shutdown()
        super.onDestroy()
    }

    private fun pickPhoto() {
        val intent = if (Build.VERSION.SDK_INT >= 33) {
            Intent(MediaStore.ACTION_PICK_IMAGES).setType("image/*")
        } else {
            Intent(Intent.ACTION_GET_CONTENT).setType("image/*").addCategory(Intent.CATEGORY_OPENABLE)
        }
        startActivityForResult(intent, REQUEST_PHOTO)
    }

    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        super.onActivityResult(requestCode, resultCode, data)
        if (requestCode != REQUEST_PHOTO || resultCode != RESULT_OK) return
        val uri = data?.data ?: return
        showBefore(uri)
    }

    private fun showBefore(uri: Uri) {
        photoUri = uri
        afterImage.setImageBitmap(null)
        statusText.text = getString(R.string.decoding)
        worker.execute {
            try {
                val photo = Photos.decode(contentResolver, uri)
                val preview = Photos.preview(photo)
                val message = getString(R.string.photo_picked, photo.width, photo.height)
                runOnUiThread {
                    beforeImage.setImageBitmap(preview)
                    statusText.text = message
                }
            } catch (e: Exception) {
                runOnUiThread { statusText.text = getString(R.string.failed, e.message ?: e.toString()) }
            }
        }
    }

    private fun selectedBackend(): Backend =
        if (backendGroup.checkedRadioButtonId == R.id.backend_cpu) Backend.CPU else Backend.GPU

    private fun threads(): Int? {
        val n = threadsInput.text.toString().trim().toIntOrNull()
        if (n == null || n < 1 || n > MAX_THREADS) {
            statusText.text = getString(R.string.bad_number, getString(R.string.threads_label), 1, MAX_THREADS)
            return null
        }
        return n
    }

    private fun selectedModel(): String? {
        val i = modelSpinner.selectedItemPosition
        return if (i >= 0 && i < models.size) models[i] else null
    }

    private fun openBenchmark() {
        val model = selectedModel() ?: return
        val threads = threads() ?: return
        startActivity(
            Intent(this, BenchmarkActivity::class.java)
                .putExtra(BenchmarkActivity.EXTRA_MODEL, model)
                .putExtra(BenchmarkActivity.EXTRA_BACKEND, selectedBackend().key)
                .putExtra(BenchmarkActivity.EXTRA_THREADS, threads)
        )
    }

    private fun setBusy(busy: Boolean) {
        pickButton.isEnabled = !busy
        enhanceButton.isEnabled = !busy
        benchmarkButton.isEnabled = !busy
    }

    /** On [worker]: the cached interpreter if it matches, else a new one. */
    private fun enhancerFor(model: String, backend: Backend, threads: Int): Enhancer {
        val current = enhancer
        if (current != null && current.modelName == model && current.requested == backend && current.threads == threads) {
            return current
        }
        current?.close()
        enhancer = null
        val sidecar = BundledModels.sidecar(assets, model)
        val created = Enhancer.create(BundledModels.load(assets, model), model, sidecar, backend, threads)
        enhancer = created
        return created
    }

    private fun enhance() {
        val uri = photoUri
        if (uri == null) {
            statusText.text = getString(R.string.pick_first)
            return
        }
        val model = selectedModel() ?: return
        val threads = threads() ?: return
        val backend = selectedBackend()
        setBusy(true)
        statusText.text = getString(R.string.loading_model, model, backend.key)
        worker.execute {
            var width = 0
            var height = 0
            try {
                val fresh = enhancer.let { it == null || it.modelName != model || it.requested != backend || it.threads != threads }
                val e = enhancerFor(model, backend, threads)
                val start = System.nanoTime()
                val photo = Photos.decode(contentResolver, uri)
                width = photo.width
                height = photo.height
                val c = e.sidecar.tileConfig()
                val output = Bitmap.createBitmap(width * c.upscale, height * c.upscale, Bitmap.Config.ARGB_8888)
                e.resetTimer()
                Tiling.enhance(
                    BitmapSource(photo), BitmapSink(output), c.tileH, c.tileW, c.overlap, c.multipleH, c.multipleW, e,
                    upscale = c.upscale
                ) { done, total ->
                    if (done == total || done % 4 == 0) runOnUiThread { statusText.text = getString(R.string.progress, done, total) }
                }
                val endToEndMs = (System.nanoTime() - start) / 1e6
                val line = String.format(
                    Locale.US,
                    "%s x%d: init %.1f ms%s | inference %.1f ms (%d windows of %dx%d) | end-to-end %.1f ms | %dx%d %s",
                    e.backend.key, threads, e.initMs, if (fresh) "" else " (at load)",
                    e.inferenceNanos / 1e6, e.inferenceRuns, Tiling.axisLength(height, c.tileH, c.multipleH),
                    Tiling.axisLength(width, c.tileW, c.multipleW),
                    endToEndMs, width, height, model
                )
                val note = e.fallbackReason
                val before = Photos.preview(photo)
                val after = Photos.preview(output)
                runOnUiThread {
                    beforeImage.setImageBitmap(before)
                    afterImage.setImageBitmap(after)
                    lastRuns[e.backend.key] = line
                    latencyText.text = lastRuns.values.joinToString("\n")
                    statusText.text = if (note != null) getString(R.string.fallback, note) else getString(R.string.done)
                    setBusy(false)
                }
            } catch (e: OutOfMemoryError) {
                runOnUiThread {
                    statusText.text = getString(R.string.out_of_memory, width, height)
                    setBusy(false)
                }
            } catch (e: Exception) {
                runOnUiThread {
                    statusText.text = getString(R.string.failed, e.message ?: e.toString())
                    setBusy(false)
                }
            }
        }
    }

    companion object {
        private const val REQUEST_PHOTO = 1
        private const val KEY_PHOTO = "photo"
        const val MAX_THREADS = 16
    }
}
