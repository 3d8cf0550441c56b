"""Custom layers of the enhancement models.

Every operation that Keras has no layer for is a real ``Layer`` subclass here, with
``get_config`` (so models save, load and clone) and a ``quantize_config()`` method that
returns the tensorflow-model-optimization ``QuantizeConfig`` used for
quantization-aware training (see :mod:`mobile_enhance.quantization`). No ``Lambda``
layers and no raw ``tf.*`` calls on Keras tensors: tfmot refuses both, and a Lambda
does not survive saving.

Tensor contracts use ``(N, H, W, C)`` channels-last float32.
"""

from __future__ import annotations

import numpy as np

from mobile_enhance.compat import keras, tf

_PACKAGE = "mobile_enhance"


def _register(cls):
    return keras.utils.register_keras_serializable(package=_PACKAGE)(cls)


def _output_quantize_config():
    from mobile_enhance.compat import tfmot

    return _quantize_config_classes(tfmot())["output"]()


def _no_quantize_config():
    from mobile_enhance.compat import tfmot

    return _quantize_config_classes(tfmot())["none"]()


_QC_CLASSES = {}


def _quantize_config_classes(tfmot_mod):
    """Define (once) the QuantizeConfig classes; they subclass tfmot's base class."""
    if _QC_CLASSES:
        return _QC_CLASSES
    qkeras = tfmot_mod.quantization.keras

    @_register
    class OutputQuantize(qkeras.QuantizeConfig):
        """Float weights, 8-bit asymmetric moving-average quantizer on the output."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [
                qkeras.quantizers.MovingAverageQuantizer(
                    num_bits=8, per_axis=False, symmetric=False, narrow_range=False
                )
            ]

        def get_config(self):
            return {}

    @_register
    class NoQuantize(OutputQuantize):
        """Pass-through: the output keeps the quantization of the layer's input.

        For layers that only move values around (Mux, Demux), where a new quantizer
        would add error without reason.
        """

        def get_output_quantizers(self, layer):
            return []

    _QC_CLASSES["output"] = OutputQuantize
    _QC_CLASSES["none"] = NoQuantize
    return _QC_CLASSES


def quantize_config_objects():
    """Custom objects needed to deserialize a QAT model that uses these configs."""
    from mobile_enhance.compat import tfmot

    classes = _quantize_config_classes(tfmot())
    return {"OutputQuantize": classes["output"], "NoQuantize": classes["none"]}


def spatial_mean(x):
    """Mean over H and W of ``(N, H, W, C)``, kept as ``(N, 1, 1, C)``: of each row, then of the
    row means. One float32 mean over a 1536x2048 frame put a norm's output 2e-3 off (LiteRT's
    MEAN; TensorFlow's 4e-4), and fast_dped's float32 file at that size 58.5 dB from the Keras
    model, below the export's floor; in two steps no sum is longer than a row (1e-5 off,
    132 dB)."""
    return tf.reduce_mean(tf.reduce_mean(x, axis=2, keepdims=True), axis=1, keepdims=True)


# Most pixels per dot product of :func:`matmul_variance`: an int8 BATCH_MATMUL adds its
# products in int32, and 2**15 squares of at most 255 steps each (2,130,739,200) stay
# below 2**31.
VARIANCE_CHUNK = 2**15


def _variance_pieces(pixels, chunk: int):
    """How many pieces :func:`matmul_variance` cuts ``pixels`` into: the fewest of at most
    ``chunk`` pixels each, or, for a known size, a few more where that many divide
    ``pixels`` evenly (no padding): 30 for 720x1280, 96 for 1536x2048, 1 up to 181x181."""
    fewest = (pixels + chunk - 1) // chunk
    if not isinstance(pixels, int):
        return fewest
    return next((p for p in range(fewest, 2 * fewest + 1) if pixels % p == 0), fewest)


def matmul_variance(centered, chunk: int = VARIANCE_CHUNK):
    """Mean over H and W of ``centered ** 2`` for ``(N, H, W, C)``, kept as ``(N, 1, 1, C)``, as
    BATCH_MATMULs of each image's channel with itself. In a full-integer file the
    products then add up in int32: squared first, as an int8 tensor, every deviation
    smaller than about 1/16 of the largest rounds to a square of zero or one step, and the
    variance of a flat image comes out far off (muxdemux's int8 file: 30.4 dB from the
    float model with int8 squares, 33.4 dB like this).

    Above ``chunk`` pixels each channel is cut into pieces of at most ``chunk`` pixels (the
    last one padded with zeros, which int8 holds exactly as its zero point), one dot
    product each, and the pieces' sums are averaged: one dot product over a whole
    720x1280 frame overflows int32 (the shipped int8 default's deviations average up to
    68 steps on 100x100 crops of our photos: sums of twice 2**31 there). A piece's sum is
    one row times one column, as the whole channel's was, so the pieces cost no more
    multiplications; each is one call of LiteRT's BATCH_MATMUL kernel, which is why the
    pieces are as large as int32 allows (muxdemux's int8 file at 720x1280 on the 2-core
    CPU machine, one run each: 168 ms with pieces of 2**15 pixels, 245 ms with 2**14, 176 ms
    whole)."""
    dynamic = tf.shape(centered)
    n, h, w, c = (dynamic[i] if centered.shape[i] is None else int(centered.shape[i]) for i in range(4))
    pixels = h * w
    pieces = _variance_pieces(pixels, chunk)
    size = (pixels + pieces - 1) // pieces
    channels = tf.transpose(tf.reshape(centered, [n, pixels, c]), [0, 2, 1])
    static = isinstance(pixels, int)
    if static and pieces == 1:  # the graph up to 181x181, as before the pieces
        rows = tf.reshape(channels, [n * c, 1, pixels])
        return tf.reshape(tf.matmul(rows, rows, transpose_b=True), [n, 1, 1, c]) / pixels
    if not static or pieces * size != pixels:
        channels = tf.pad(channels, [[0, 0], [0, 0], [0, pieces * size - pixels]])
    rows = tf.reshape(channels, [n * c * pieces, 1, size])
    sums = tf.reshape(tf.matmul(rows, rows, transpose_b=True), [n, c, pieces])
    scale = pieces / pixels if static else tf.cast(pieces, centered.dtype) / tf.cast(pixels, centered.dtype)
    return tf.reshape(tf.reduce_mean(sums, axis=-1), [n, 1, 1, c]) * scale


@_register
class InstanceNormalization(keras.layers.Layer):
    """Instance normalization (Ulyanov et al., 2016) over H and W, per image and channel.

    ``y = gamma * (x - mean_hw(x)) / sqrt(var_hw(x) + epsilon) + beta`` with one learned
    ``gamma`` and ``beta`` per channel (2*C parameters), as in the DPED generator.

    ``prescale`` (one positive constant per channel, not trained; set for int8 export by
    :func:`mobile_enhance.quantization.equalize_instance_norms`) multiplies the input
    before the statistics and the epsilon by its square, which leaves the float output
    unchanged but puts every channel's mean, variance and 1/std on one scale, so that one
    int8 scale per tensor can hold them all.

    ``row_means`` (default): the mean and variance are means of row means (see
    :func:`spatial_mean`), exact in float32 at any frame size. Full-integer files turn it
    off (:func:`mobile_enhance.quantization.integer_means`): an int8 MEAN adds in int32,
    exactly, and a second MEAN would round the row means to int8. The same function turns
    ``variance_matmul`` on: the variance as :func:`matmul_variance` instead of the MEAN of
    the squares.

    ``input_scale`` (one positive constant per channel, not trained; set by
    :func:`mobile_enhance.quantization.equalize_concatenations`) says the input arrives
    multiplied by it: the layer normalizes as if it did not, so the producer of its input
    may be rescaled without changing the output.

    Input and output: ``(N, H, W, C)`` float32.
    """

    def __init__(self, epsilon: float = 1e-3, center: bool = True, scale: bool = True, prescale=None, input_scale=None,
                 row_means: bool = True, variance_matmul: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.row_means = bool(row_means)
        self.variance_matmul = bool(variance_matmul)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.prescale = None if prescale is None else [float(v) for v in prescale]
        self.input_scale = None if input_scale is None else [float(v) for v in input_scale]
        for label, values in (("prescale", self.prescale), ("input_scale", self.input_scale)):
            if values is not None and min(values) <= 0:
                raise ValueError(f"{self.name}: {label} must be positive, got a minimum of {min(values)}")

    def build(self, input_shape):
        channels = int(input_shape[-1])
        for label, values in (("prescale", self.prescale), ("input_scale", self.input_scale)):
            if values is not None and len(values) != channels:
                raise ValueError(f"{self.name}: {label} has {len(values)} values for {channels} channels")
        self.gamma = (
            self.add_weight(name="gamma", shape=(channels,), initializer="ones") if self.scale else None
        )
        self.beta = (
            self.add_weight(name="beta", shape=(channels,), initializer="zeros") if self.center else None
        )
        super().build(input_shape)

    def call(self, inputs):
        # Written as SUB and MUL rather than tf.nn.moments' SQUARED_DIFFERENCE: XNNPACK
        # takes int8 SUB/MUL/MEAN but not int8 SQUARED_DIFFERENCE, which left every norm
        # layer's full-size work to the slow reference kernels in int8 TFLite files.
        # normalizing x * p with epsilon * (p * s)^2 gives the norm of x / s with epsilon
        epsilon = self.epsilon
        if self.prescale is not None or self.input_scale is not None:
            prescale = tf.constant(self.prescale or [1.0] * int(inputs.shape[-1]), inputs.dtype)
            unscale = tf.constant(self.input_scale or [1.0] * int(inputs.shape[-1]), inputs.dtype)
            inputs, epsilon = inputs * prescale, epsilon * tf.square(prescale * unscale)
        average = spatial_mean if self.row_means else lambda t: tf.reduce_mean(t, axis=[1, 2], keepdims=True)
        mean = average(inputs)
        centered = inputs - mean
        variance = matmul_variance(centered) if self.variance_matmul else average(centered * centered)
        outputs = centered * tf.math.rsqrt(variance + epsilon)
        if self.gamma is not None:
            outputs = outputs * self.gamma
        if self.beta is not None:
            outputs = outputs + self.beta
        return outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "prescale": self.prescale, "input_scale": self.input_scale, "row_means": self.row_means,
                "variance_matmul": self.variance_matmul}

    def quantize_config(self):
        return _output_quantize_config()


@_register
class ScaledTanh(keras.layers.Layer):
    """``scale * tanh(x) + offset``: maps logits to the image range.

    With the defaults (0.5, 0.5) the output is exactly in [0, 1]. The official DPED code
    uses ``0.58 * tanh + 0.5``, which can overshoot to [-0.08, 1.08]; pass ``scale=0.58``
    for that behaviour.
    """

    def __init__(self, scale: float = 0.5, offset: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.offset = float(offset)

    def call(self, inputs):
        return tf.math.tanh(inputs) * self.scale + self.offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}

    def quantize_config(self):
        return _output_quantize_config()


@_register
class RangeScale(keras.layers.Layer):
    """Range scaling (RSGUNet): ``features * scale``, elementwise.

    Inputs: ``[features (N, H, W, C), scale (N, H, W, C)]``; the scale map is usually a
    sigmoid-free learned tensor from the skip path. Used instead of a residual add.
    """

    def call(self, inputs):
        features, scale = inputs
        return features * scale

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def quantize_config(self):
        return _output_quantize_config()


@_register
class BroadcastSpatial(keras.layers.Layer):
    """Tile a global feature vector over the spatial size of a reference tensor.

    Inputs: ``[vector (N, 1, 1, C), reference (N, H, W, *)]``. Output ``(N, H, W, C)``.
    Used by RSGUNet to concatenate its global feature to every pixel.
    """

    def call(self, inputs):
        vector, reference = inputs
        ref_shape = tf.shape(reference)
        target = tf.stack([ref_shape[0], ref_shape[1], ref_shape[2], tf.shape(vector)[-1]])
        return tf.broadcast_to(vector, target)

    def compute_output_shape(self, input_shape):
        vector_shape, reference_shape = input_shape
        return tf.TensorShape([reference_shape[0], reference_shape[1], reference_shape[2], vector_shape[-1]])

    def quantize_config(self):
        return _no_quantize_config()


@_register
class Demux(keras.layers.Layer):
    """Demux (Liu, Navarrete Michelini, Zhu, 2018): lossless 2x downscale.

    Rearranges each 2x2 block of pixels into channels: ``(N, H, W, C) -> (N, H/2, W/2, 4C)``
    (TensorFlow's ``space_to_depth``). H and W must be even.
    """

    def __init__(self, block_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, inputs):
        return tf.nn.space_to_depth(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        n, h, w, c = tf.TensorShape(input_shape).as_list()
        b = self.block_size
        return tf.TensorShape([n, None if h is None else h // b, None if w is None else w // b, c * b * b])

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}

    def quantize_config(self):
        return _no_quantize_config()


@_register
class Mux(keras.layers.Layer):
    """Mux: the inverse of :class:`Demux`, ``(N, H, W, 4C) -> (N, 2H, 2W, C)`` (``depth_to_space``)."""

    def __init__(self, block_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        n, h, w, c = tf.TensorShape(input_shape).as_list()
        b = self.block_size
        return tf.TensorShape([n, None if h is None else h * b, None if w is None else w * b, c // (b * b)])

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}

    def quantize_config(self):
        return _no_quantize_config()


@_register
class NoiseChannels(keras.layers.Layer):
    """Append ``channels`` noise channels to the input.

    At inference the noise is zero, which gives the deterministic, distortion-oriented
    output (the Mux/Demux paper controls the perception-distortion balance by the noise
    amplitude, and trains amplitude 0 as well as 1). Zero at inference also keeps the
    exported TFLite graph deterministic, so it can be compared with Keras. In training,
    each example's noise is ``N(0, stddev^2)`` or, with probability ``zero_fraction``,
    zero: a network trained on noise only would meet zeros for the first time at inference
    (our first muxdemux run: 12.8 dB on held-out pairs after 500 steps, against 24 dB for
    the input).

    Input ``(N, H, W, C)``, output ``(N, H, W, C + channels)``.
    """

    def __init__(self, channels: int = 1, stddev: float = 1.0, zero_fraction: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.stddev = float(stddev)
        self.zero_fraction = float(zero_fraction)

    def call(self, inputs, training=None):
        shape = tf.shape(inputs)
        noise_shape = tf.stack([shape[0], shape[1], shape[2], self.channels])
        if training:
            noise = tf.random.normal(noise_shape, stddev=self.stddev, dtype=inputs.dtype)
            keep = tf.cast(tf.random.uniform(tf.stack([shape[0], 1, 1, 1])) >= self.zero_fraction, inputs.dtype)
            noise = noise * keep
        else:
            noise = tf.zeros(noise_shape, dtype=inputs.dtype)
        return tf.concat([inputs, noise], axis=-1)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        return tf.TensorShape(shape[:-1] + [shape[-1] + self.channels])

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "stddev": self.stddev, "zero_fraction": self.zero_fraction}

    def quantize_config(self):
        return _output_quantize_config()


def legacy_bicubic_taps(scale: int) -> np.ndarray:
    """``(scale, 4)`` weights of TensorFlow's legacy bicubic for output phase ``p`` (rows) on
    input samples ``n - 1, n, n + 1, n + 2`` (columns), ``n = floor(dst / scale)``.

    The legacy grid (``align_corners=False``, ``half_pixel_centers=False``) samples output
    pixel ``dst`` at input position ``dst / scale``, so phase ``p`` sits ``p / scale`` past
    sample ``n``. Keys' cubic with ``a = -0.75``, looked up as TensorFlow does in a table of
    1024 steps per pixel (exact for scales 2 and 4; for 3 the table's step is what TF uses).
    """
    a, steps = -0.75, 1024

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    taps = np.zeros((scale, 4), np.float64)
    for p in range(scale):
        offset = int(np.rint(p / scale * steps))
        t = offset / steps
        taps[p] = [far(1 + t), near(t), near(1 - t), far(2 - t)]
    return taps


def legacy_bicubic_kernel(scale: int, channels: int = 3) -> np.ndarray:
    """``(4, 4, C, scale * scale * C)`` kernel of :class:`LegacyBicubicUpsample`: output
    channel ``(py * scale + px) * C + c`` (``depth_to_space``'s order) holds phase
    ``(py, px)`` of colour ``c``, ``outer(taps[py], taps[px])``, and sees colour ``c`` only."""
    return _phase_kernel(legacy_bicubic_taps(scale), channels)


def _phase_kernel(taps: np.ndarray, channels: int) -> np.ndarray:
    """``(K, K, C, s*s*C)`` kernel from ``(s, K)`` per-phase taps, one output channel per
    phase and colour in ``depth_to_space``'s order, each seeing its own colour only."""
    scale, k = taps.shape
    kernel = np.zeros((k, k, channels, scale * scale * channels), np.float64)
    for py in range(scale):
        for px in range(scale):
            for c in range(channels):
                kernel[:, :, c, (py * scale + px) * channels + c] = np.outer(taps[py], taps[px])
    return kernel.astype(np.float32)


def centred_bicubic_taps(scale: int) -> np.ndarray:
    """``(scale, 5)`` weights of the centred bicubic for output phase ``p`` (rows) on input
    samples ``n - 2 .. n + 2`` (columns), ``n = floor(dst / scale)``.

    The centred grid (``half_pixel_centers=True``, PIL's and TensorFlow 2's) samples output
    pixel ``dst`` at input position ``(dst + 0.5) / scale - 0.5``: phase ``p`` sits
    ``(p + 0.5) / scale - 0.5`` from sample ``n``, within half a pixel of it either way, so
    five samples cover every phase. Keys' cubic with ``a = -0.5``, the one PIL and
    ``tf.image.resize(..., "bicubic")`` use, computed exactly (no table).
    """
    a = -0.5

    def cubic(x):
        x = abs(x)
        if x <= 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        if x < 2:
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return 0.0

    taps = np.zeros((scale, 5), np.float64)
    for p in range(scale):
        d = (p + 0.5) / scale - 0.5
        taps[p] = [cubic(i - d) for i in range(-2, 3)]
    return taps


def centred_bicubic_kernel(scale: int, channels: int = 3) -> np.ndarray:
    """``(5, 5, C, scale * scale * C)`` kernel of :class:`CentredBicubicUpsample`, laid out
    as :func:`legacy_bicubic_kernel` is."""
    return _phase_kernel(centred_bicubic_taps(scale), channels)


def _replicate(x, axis: int, before: int, after: int):
    """Edge replication along ``axis`` as slices and a concatenation (STRIDED_SLICE and
    CONCATENATION in a TFLite file; any size, a 1-pixel side included)."""
    first, last = (x[:, :1], x[:, -1:]) if axis == 1 else (x[:, :, :1], x[:, :, -1:])
    return tf.concat([first] * before + [x] + [last] * after, axis=axis)


@_register
class LegacyBicubicUpsample(keras.layers.Layer):
    """TensorFlow's legacy bicubic upscaling by an integer ``scale``, from builtin TFLite ops.

    Equals ``tf.compat.v1.image.resize_bicubic(x, [s*H, s*W], align_corners=False,
    half_pixel_centers=False)``, the ``resize_images(BICUBIC)`` of TF 0.12 that EnhanceNet's
    released weights were trained against (Keys' cubic with ``a = -0.75``, indices clamped
    to the border). ``ResizeBicubic`` itself is no TFLite builtin (only a Flex op, float
    only), so the layer computes it as: the input edge-replicated by 1 pixel top and left
    and 2 bottom and right, one fixed 4x4 ``valid`` convolution with ``scale * scale * C``
    outputs (block-diagonal per colour, one output per phase: see
    :func:`legacy_bicubic_kernel`), and ``depth_to_space(scale)``: CONV_2D, DEPTH_TO_SPACE,
    STRIDED_SLICE and CONCATENATION, full int8 included. The kernel is a constant, not a
    weight: nothing to train, and no parameters counted.

    Input ``(N, H, W, C)`` float32, any H and W >= 1; output ``(N, s*H, s*W, C)``.
    """

    def __init__(self, scale: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.scale = int(scale)
        if self.scale < 1:
            raise ValueError(f"{self.name}: scale must be >= 1, got {scale}")

    #: edge pixels replicated before and after, and the kernel (see the subclass below)
    pad = (1, 2)

    def kernel(self, channels: int) -> np.ndarray:
        return legacy_bicubic_kernel(self.scale, channels)

    def call(self, inputs):
        kernel = tf.constant(self.kernel(int(inputs.shape[-1])), inputs.dtype)
        before, after = self.pad
        x = _replicate(_replicate(inputs, 1, before, after), 2, before, after)
        x = tf.nn.conv2d(x, kernel, strides=1, padding="VALID")
        return tf.nn.depth_to_space(x, self.scale)

    def compute_output_shape(self, input_shape):
        n, h, w, c = tf.TensorShape(input_shape).as_list()
        s = self.scale
        return tf.TensorShape([n, None if h is None else h * s, None if w is None else w * s, c])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}

    def quantize_config(self):
        return _output_quantize_config()


@_register
class CentredBicubicUpsample(LegacyBicubicUpsample):
    """Bicubic upscaling by an integer ``scale`` on the centred grid, from builtin TFLite ops:
    the grid and cubic (``a = -0.5``) of PIL's bicubic and ``tf.image.resize(..., "bicubic")``,
    with which the ``sr:`` source makes its baseline (:func:`mobile_enhance.data.images.bicubic_upscale`),
    so a residual on top of it starts from that baseline.

    Built as the legacy layer is, with a 5x5 kernel (:func:`centred_bicubic_kernel`) on the
    input edge-replicated by 2 pixels on each side. At the borders the two differ on purpose:
    PIL and TensorFlow drop the samples outside the image and renormalise the rest, which no
    single convolution does; edge replication changes the outermost ``2 * scale`` output
    pixels by a fraction of a grey level on smooth photos. The interior equals
    ``tf.image.resize(..., "bicubic")`` to float precision.
    """

    pad = (2, 2)

    def kernel(self, channels: int) -> np.ndarray:
        return centred_bicubic_kernel(self.scale, channels)


@_register
class ChannelOffset(keras.layers.Layer):
    """``x + offset``, one constant per channel (not a weight): EnhanceNet's input, the
    photo minus the training set's per-channel means.

    A layer rather than a bias folded into the first convolution: that convolution pads
    with zeros in mean-subtracted space, so a folded bias differs at the borders.

    Input and output ``(N, H, W, C)`` float32.
    """

    def __init__(self, offset=(0.0, 0.0, 0.0), **kwargs):
        super().__init__(**kwargs)
        self.offset = [float(v) for v in offset]

    def build(self, input_shape):
        if int(input_shape[-1]) != len(self.offset):
            raise ValueError(f"{self.name}: {len(self.offset)} offsets for {int(input_shape[-1])} channels")
        super().build(input_shape)

    def call(self, inputs):
        return inputs + tf.constant(self.offset, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "offset": list(self.offset)}

    def quantize_config(self):
        return _output_quantize_config()


@_register
class ChannelPReLU(keras.layers.PReLU):
    """Keras' PReLU with one learned slope per channel, shared over H and W.

    ``(N, H, W, C) -> (N, H, W, C)``: ``x`` where positive, ``alpha_c * x`` elsewhere;
    alpha starts at 0.25 (Lasagne's and PyTorch's default). ``shared_axes=[1, 2]`` makes
    it take any input size (Keras' default would learn a slope per pixel of a fixed
    size). A subclass only to carry a ``quantize_config()``: tfmot has no QAT rule for
    PReLU, and TFLite's int8 PRELU quantizes its output like any activation.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("shared_axes", [1, 2])
        kwargs.setdefault("alpha_initializer", keras.initializers.Constant(0.25))
        super().__init__(**kwargs)

    def quantize_config(self):
        return _output_quantize_config()


CUSTOM_LAYERS = {
    cls.__name__: cls
    for cls in (InstanceNormalization, ScaledTanh, RangeScale, BroadcastSpatial, Demux, Mux, NoiseChannels,
                LegacyBicubicUpsample, CentredBicubicUpsample, ChannelOffset, ChannelPReLU)
}


def custom_objects() -> dict:
    """Everything ``keras.models.load_model`` needs to load a model of this package."""
    return dict(CUSTOM_LAYERS)
