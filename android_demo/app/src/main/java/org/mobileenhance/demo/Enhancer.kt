package org.mobileenhance.demo

import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate

enum class Backend(val key: String) {
    GPU("gpu"),
    CPU("cpu")
}

/** The .tflite file and its sidecar disagree; the message names both and what differs. */
class ModelMismatchException(message: String) : Exception(message)

/**
 * A LiteRT Interpreter running one exported model on one backend.
 *
 * Create it, run it and close it on one thread: the GPU delegate belongs to the thread
 * that created it. The app gives each screen a single-thread executor for this.
 *
 * @property backend the backend that actually runs: CPU when the GPU was asked for but
 *   its delegate is unavailable ([fallbackReason] says why).
 * @property initMs wall time of [create]: delegate set-up, interpreter construction
 *   (where the GPU delegate compiles its kernels) and tensor allocation.
 */
class Enhancer private constructor(
    private val interpreter: Interpreter,
    private val gpuDelegate: GpuDelegate?,
    val modelName: String,
    val sidecar: ModelSidecar,
    val backend: Backend,
    val threads: Int,
    val initMs: Double,
    val fallbackReason: String?
) : WindowModel {
    /** The backend that was asked for (GPU when this one fell back to the CPU). */
    val requested: Backend get() = if (fallbackReason != null) Backend.GPU else backend

    private var inputH = -1
    private var inputW = -1
    private var inputBuffer: ByteBuffer = ByteBuffer.allocateDirect(0)
    private var outputBuffer: ByteBuffer = ByteBuffer.allocateDirect(0)
    private var outputType: DataType = DataType.FLOAT32
    private var outputScale = 1f
    private var outputZeroPoint = 0

    /** Time spent inside Interpreter.run since [resetTimer], in nanoseconds, and the number of runs. */
    var inferenceNanos = 0L
        private set
    var inferenceRuns = 0
        private set

    fun resetTimer() {
        inferenceNanos = 0L
        inferenceRuns = 0
    }

    /** Sets the input size (resizing a dynamic-size model) and allocates the I/O buffers. */
    fun prepare(h: Int, w: Int) {
        if (h == inputH && w == inputW) return
        if (!sidecar.dynamicSize && (h != sidecar.input.height || w != sidecar.input.width)) {
            throw IllegalArgumentException(
                "$modelName takes ${sidecar.input.height}x${sidecar.input.width} windows only, asked for ${h}x$w"
            )
        }
        val current = interpreter.getInputTensor(0).shape()
        if (current[1] != h || current[2] != w) {
            interpreter.resizeInput(0, intArrayOf(1, h, w, 3))
            interpreter.allocateTensors()
        }
        val input = interpreter.getInputTensor(0)
        val output = interpreter.getOutputTensor(0)
        val outShape = output.shape()
        val s = sidecar.upscale
        if (outShape.size != 4 || outShape[0] != 1 || outShape[1] != s * h || outShape[2] != s * w || outShape[3] != 3) {
            throw ModelMismatchException(
                "$modelName returns shape ${outShape.contentToString()} for input [1, $h, $w, 3]; its sidecar says " +
                    "[1, ${s * h}, ${s * w}, 3] (upscale $s)"
            )
        }
        inputBuffer = ByteBuffer.allocateDirect(input.numBytes()).order(ByteOrder.nativeOrder())
        outputBuffer = ByteBuffer.allocateDirect(output.numBytes()).order(ByteOrder.nativeOrder())
        outputType = output.dataType()
        val q = output.quantizationParams()
        outputScale = q.scale
        outputZeroPoint = q.zeroPoint
        inputH = h
        inputW = w
    }

    override fun run(window: FloatArray, h: Int, w: Int): FloatArray {
        prepare(h, w)
        val input = inputBuffer
        val output = outputBuffer
        input.rewind()
        writeInput(window, input)
        input.rewind()
        output.rewind()
        val start = System.nanoTime()
        interpreter.run(input, output)
        inferenceNanos += System.nanoTime() - start
        inferenceRuns += 1
        output.rewind()
        return readOutput(output, sidecar.upscale * h * sidecar.upscale * w * 3)
    }

    private fun writeInput(window: FloatArray, buffer: ByteBuffer) {
        val spec = sidecar.input
        val low = spec.rangeLow
        val span = spec.rangeHigh - spec.rangeLow
        when (spec.dtype) {
            "float32" -> for (v in window) buffer.putFloat(low + v * span)
            else -> {
                val q = spec.quantization!!
                val lo = if (spec.dtype == "int8") -128 else 0
                val hi = if (spec.dtype == "int8") 127 else 255
                for (v in window) {
                    val level = Math.round((low + v * span) / q.scale) + q.zeroPoint
                    buffer.put(Math.max(lo, Math.min(hi, level)).toByte())
                }
            }
        }
    }

    private fun readOutput(buffer: ByteBuffer, count: Int): FloatArray {
        val spec = sidecar.output
        val low = spec?.rangeLow ?: 0f
        val span = (spec?.rangeHigh ?: 1f) - low
        val out = FloatArray(count)
        for (i in 0 until count) {
            val real = when (outputType) {
                DataType.FLOAT32 -> buffer.getFloat()
                DataType.UINT8 -> ((buffer.get().toInt() and 0xFF) - outputZeroPoint) * outputScale
                DataType.INT8 -> (buffer.get().toInt() - outputZeroPoint) * outputScale
                else -> throw ModelMismatchException("$modelName: output type $outputType is not float32, uint8 or int8")
            }
            out[i] = Math.max(0f, Math.min(1f, (real - low) / span))
        }
        return out
    }

    fun close() {
        interpreter.close()
        gpuDelegate?.close()
    }

    companion object {
        /**
         * Loads [model] (a direct, native-order buffer holding the .tflite file) on [requested],
         * falling back to the CPU (XNNPACK) when the GPU delegate is unsupported or fails.
         */
        fun create(model: ByteBuffer, modelName: String, sidecar: ModelSidecar, requested: Backend, threads: Int): Enhancer {
            val start = System.nanoTime()
            var interpreter: Interpreter? = null
            var delegate: GpuDelegate? = null
            var fallbackReason: String? = null
            if (requested == Backend.GPU) {
                try {
                    val compatibility = CompatibilityList()
                    var options: GpuDelegate.Options? = null
                    try {
                        if (compatibility.isDelegateSupportedOnThisDevice) options = compatibility.bestOptionsForThisDevice
                    } finally {
                        compatibility.close()
                    }
                    if (options == null) {
                        fallbackReason = "the GPU delegate does not support this device (CompatibilityList)"
                    } else {
                        delegate = GpuDelegate(options)
                        model.rewind()
                        interpreter = Interpreter(model, Interpreter.Options().addDelegate(delegate).setNumThreads(threads))
                    }
                } catch (e: Exception) {
                    fallbackReason = "the GPU delegate failed (${e.javaClass.simpleName}: ${e.message})"
                } catch (e: LinkageError) {
                    fallbackReason = "the GPU delegate's native library is missing (${e.message})"
                }
                if (interpreter == null && delegate != null) {
                    delegate.close()
                    delegate = null
                }
            }
            if (interpreter == null) {
                model.rewind()
                interpreter = Interpreter(model, Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true))
            }
            try {
                verify(interpreter, modelName, sidecar)
                interpreter.allocateTensors()
            } catch (e: Exception) {
                interpreter.close()
                delegate?.close()
                throw e
            }
            val initMs = (System.nanoTime() - start) / 1e6
            val backend = if (delegate != null) Backend.GPU else Backend.CPU
            return Enhancer(interpreter, delegate, modelName, sidecar, backend, threads, initMs, fallbackReason)
        }

        private fun verify(interpreter: Interpreter, modelName: String, sidecar: ModelSidecar) {
            val spec = sidecar.input
            val tensor = interpreter.getInputTensor(0)
            val expected = when (spec.dtype) {
                "float32" -> DataType.FLOAT32
                "uint8" -> DataType.UINT8
                else -> DataType.INT8
            }
            fun mismatch(what: String): Nothing = throw ModelMismatchException(
                "${sidecar.source} says $what but $modelName disagrees; export the model and its sidecar together"
            )
            if (tensor.dataType() != expected) mismatch("input dtype ${spec.dtype} (the model has ${tensor.dataType()})")
            val shape = tensor.shape()
            if (shape.size != 4 || shape[3] != 3) mismatch("input shape ${spec.shape} (the model has ${shape.contentToString()})")
            if (!sidecar.dynamicSize && (shape[1] != spec.height || shape[2] != spec.width)) {
                mismatch("input shape ${spec.shape} (the model has ${shape.contentToString()})")
            }
            val q = spec.quantization
            if (q != null && expected != DataType.FLOAT32) {
                val actual = tensor.quantizationParams()
                if (Math.abs(actual.scale - q.scale) > 1e-6f * q.scale || actual.zeroPoint != q.zeroPoint) {
                    mismatch(
                        "input quantization scale ${q.scale}, zero point ${q.zeroPoint} " +
                            "(the model has ${actual.scale}, ${actual.zeroPoint})"
                    )
                }
            }
        }
    }
}
