package org.mobileenhance.demo

import android.content.ContentResolver
import android.content.res.AssetManager
import android.graphics.Bitmap
import android.graphics.BitmapFactory
import android.net.Uri
import android.os.Build
import java.io.File
import java.io.FileNotFoundException
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** An ARGB_8888 bitmap read row by row as RGB floats in [0, 1]. */
class BitmapSource(private val bitmap: Bitmap) : PixelSource {
    override val height: Int = bitmap.height
    override val width: Int = bitmap.width
    private var pixels = IntArray(0)

    override fun readRow(y: Int, x0: Int, count: Int, dst: FloatArray, dstOffset: Int) {
        if (pixels.size < count) pixels = IntArray(count)
        bitmap.getPixels(pixels, 0, count, x0, y, count, 1)
        for (i in 0 until count) {
            val p = pixels[i]
            val o = dstOffset + 3 * i
            dst[o] = ((p shr 16) and 0xFF) / 255f
            dst[o + 1] = ((p shr 8) and 0xFF) / 255f
            dst[o + 2] = (p and 0xFF) / 255f
        }
    }
}

/** Writes finished RGB float rows into an ARGB_8888 bitmap (opaque, rounded to 8 bits). */
class BitmapSink(val bitmap: Bitmap) : PixelSink {
    private val row = IntArray(bitmap.width)

    override fun writeRow(y: Int, rgb: FloatArray) {
        for (c in row.indices) {
            row[c] = (0xFF shl 24) or (to8(rgb[3 * c]) shl 16) or (to8(rgb[3 * c + 1]) shl 8) or to8(rgb[3 * c + 2])
        }
        bitmap.setPixels(row, 0, row.size, 0, y, row.size, 1)
    }

    private fun to8(v: Float): Int = Math.round(Math.max(0f, Math.min(1f, v)) * 255f)
}

object Photos {
    /** Photos above this many pixels are decoded at 1/2, 1/4, ... until they fit. */
    const val MAX_PIXELS = 16_000_000L

    /** Decodes [uri] as ARGB_8888, subsampled by powers of two to at most [MAX_PIXELS]. */
    fun decode(resolver: ContentResolver, uri: Uri): Bitmap {
        val bounds = BitmapFactory.Options()
        bounds.inJustDecodeBounds = true
        open(resolver, uri).use { BitmapFactory.decodeStream(it, null, bounds) }
        if (bounds.outWidth <= 0 || bounds.outHeight <= 0) throw IOException("$uri: not an image that Android can decode")
        var sample = 1
        while ((bounds.outWidth / sample).toLong() * (bounds.outHeight / sample) > MAX_PIXELS) sample *= 2
        val options = BitmapFactory.Options()
        options.inSampleSize = sample
        options.inPreferredConfig = Bitmap.Config.ARGB_8888
        return open(resolver, uri).use { BitmapFactory.decodeStream(it, null, options) }
            ?: throw IOException("$uri: decoding failed")
    }

    private fun open(resolver: ContentResolver, uri: Uri) =
        resolver.openInputStream(uri) ?: throw FileNotFoundException("$uri: the content provider returned no stream")

    /** A copy at most [maxSide] pixels on its longer side, for display. */
    fun preview(bitmap: Bitmap, maxSide: Int = 1600): Bitmap {
        val longer = Math.max(bitmap.width, bitmap.height)
        if (longer <= maxSide) return bitmap
        val scale = maxSide.toDouble() / longer
        val w = Math.max(1, Math.round(bitmap.width * scale).toInt())
        val h = Math.max(1, Math.round(bitmap.height * scale).toInt())
        return Bitmap.createScaledBitmap(bitmap, w, h, true)
    }

    /** A deterministic test card (gradients and a checkerboard) for benchmarks. */
    fun testCard(width: Int, height: Int): Bitmap {
        val bitmap = Bitmap.createBitmap(width, height, Bitmap.Config.ARGB_8888)
        val row = IntArray(width)
        for (y in 0 until height) {
            for (x in 0 until width) {
                val r = x * 255 / Math.max(1, width - 1)
                val g = y * 255 / Math.max(1, height - 1)
                val b = if ((x / 8 + y / 8) % 2 == 0) 200 else 40
                row[x] = (0xFF shl 24) or (r shl 16) or (g shl 8) or b
            }
            bitmap.setPixels(row, 0, width, 0, y, width, 1)
        }
        return bitmap
    }

    /** "Manufacturer Model (Android release, API n[, SoC])". */
    fun deviceDescription(): String {
        val soc = if (Build.VERSION.SDK_INT >= 31) ", ${Build.SOC_MODEL}" else ""
        return "${Build.MANUFACTURER} ${Build.MODEL} (Android ${Build.VERSION.RELEASE}, API ${Build.VERSION.SDK_INT}$soc)"
    }

    /** Writes [text] to [file] through a temporary file and a rename, so readers never see half a file. */
    fun writeAtomically(file: File, text: String) {
        val dir = file.parentFile ?: throw IOException("$file: no parent directory")
        if (!dir.isDirectory && !dir.mkdirs()) throw IOException("$dir: cannot create the directory")
        val tmp = File(dir, ".${file.name}.tmp")
        tmp.writeText(text)
        if (!tmp.renameTo(file)) {
            tmp.delete()
            throw IOException("$file: cannot rename ${tmp.name} into place")
        }
    }
}

/** The models bundled under assets/models/ by the copyModels Gradle task. */
object BundledModels {
    const val DIR = "models"

    /** Model names (NAME for models/NAME.tflite), sorted. */
    fun list(assets: AssetManager): List<String> {
        val files = assets.list(DIR) ?: return emptyList()
        return files.filter { it.endsWith(".tflite") }.map { it.removeSuffix(".tflite") }.sorted()
    }

    fun sidecar(assets: AssetManager, name: String): ModelSidecar {
        val path = "$DIR/$name.json"
        val text = try {
            assets.open(path).use { it.readBytes().toString(Charsets.UTF_8) }
        } catch (e: FileNotFoundException) {
            throw SidecarException("$path: missing; every bundled model needs its sidecar beside it")
        }
        return ModelSidecar.parse(text, path)
    }

    /** The .tflite file in a direct, native-order buffer, as the Interpreter wants it. */
    fun load(assets: AssetManager, name: String): ByteBuffer {
        val bytes = assets.open("$DIR/$name.tflite").use { it.readBytes() }
        val buffer = ByteBuffer.allocateDirect(bytes.size).order(ByteOrder.nativeOrder())
        buffer.put(bytes)
        buffer.rewind()
        return buffer
    }
}
