"""Exact graph rewrites that XNNPACK runs faster: the same function, other layers.

XNNPACK's convolutions are fast when they have many output channels; a layer with 3 of
them, or a transposed conv, wastes most of the work (whole models with and without the
rewrites: ``benchmarks/rewrite_speed.py``).

- **Thin convolution** (stride 1, ``same``, odd kernel of 5 or more, at most 4 input or
  output channels, even input size): ``space_to_depth(2)``, a convolution on the
  half-size image whose kernel holds the original one split by pixel phase (4x the
  channels, a (k+1)/2-ish kernel), then ``depth_to_space(2)``.
- **Transposed convolution** (stride 2, ``same``): each of the 4 output pixel phases is
  an ordinary convolution of the input with some of the kernel's taps, so one
  convolution with 4x the output channels and ``depth_to_space(2)`` give the same output.
  The file then has no TRANSPOSE_CONV, which would bake its input size into the file.

- **Nearest x2, then a convolution** (``UpSampling2D(2)`` whose one consumer is a stride-1
  ``same`` convolution of odd kernel): each output pixel phase of the convolution sees the
  low-resolution input through some of its taps summed, so one convolution on the input
  with 4x the output channels and ``depth_to_space(2)`` give the same output at the same
  multiply count. XNNPACK takes no RESIZE_NEAREST_NEIGHBOR: without the rewrite the file
  leaves the delegate at every upsampling (EnhanceNet's two).

- **PReLU with one slope per channel** (integer files only): XNNPACK takes float PRELU but
  no int8 one, so an int8 SRResNet left the delegate at every activation and ran slower than
  its float32 file. ``x + relu((alpha - 1) * x)`` is the same function when every slope is at
  most 1 (a 1x1 depthwise convolution with a fused ReLU, then an ADD); otherwise
  ``x + (1 - alpha) * relu(-x)`` (two 1x1 depthwise convolutions, then the ADD). Both
  are ops XNNPACK takes in int8 (``benchmarks/README.md`` has the speed-up).

Each rewrite moves weights only (zeros where a phase has no tap): the float output equals
the original's up to summation order. Layers the rewrites do not match stay as they are.
"""

from __future__ import annotations

import numpy as np

from mobile_enhance.compat import keras, tf
from mobile_enhance.models.layers import Demux, Mux

L = keras.layers


def _is_thin_conv(layer, even_size: bool) -> bool:
    if not _is_plain_conv(layer) or not even_size:
        return False
    cin, cout = layer.kernel.shape[2], layer.kernel.shape[3]
    return layer.kernel_size[0] >= 5 and min(cin, cout) <= 4


def _is_stride2_transpose(layer) -> bool:
    return (
        type(layer) is L.Conv2DTranspose and tuple(layer.strides) == (2, 2) and layer.padding == "same"
        and layer.kernel_size[0] == layer.kernel_size[1] and layer.output_padding is None
        and tuple(layer.dilation_rate) == (1, 1)
    )


def thin_conv_kernel(kernel: np.ndarray) -> np.ndarray:
    """``(k, k, Cin, Cout)`` stride-1 kernel -> ``(K, K, 4 Cin, 4 Cout)`` on 2x2 pixel blocks.

    Output phase ``(py, px)`` of block ``(m, n)`` is pixel ``(2m + py, 2n + px)``; input
    phase ``(qy, qx)`` of block ``(m + by, n + bx)`` is pixel ``(2m + 2by + qy, ...)``, so
    the tap is ``ky = 2 by + qy - py`` (and the same across). Channel order is that of
    TensorFlow's ``space_to_depth`` / ``depth_to_space``: ``(phase_y * 2 + phase_x) * C + c``.
    """
    k, _, cin, cout = kernel.shape
    r = k // 2
    b = -(-r // 2)  # blocks each side
    out = np.zeros((2 * b + 1, 2 * b + 1, 4 * cin, 4 * cout), kernel.dtype)
    for py in range(2):
        for px in range(2):
            for qy in range(2):
                for qx in range(2):
                    for by in range(-b, b + 1):
                        for bx in range(-b, b + 1):
                            ky, kx = 2 * by + qy - py, 2 * bx + qx - px
                            if abs(ky) <= r and abs(kx) <= r:
                                i, o = (qy * 2 + qx) * cin, (py * 2 + px) * cout
                                out[by + b, bx + b, i : i + cin, o : o + cout] = kernel[ky + r, kx + r]
    return out


def transpose_kernel(kernel: np.ndarray) -> np.ndarray:
    """``(k, k, Cout, Cin)`` stride-2 ``same`` transposed-conv kernel -> ``(K, K, Cin, 4 Cout)``.

    The transposed conv puts input pixel ``i`` at outputs ``2 i + k - pad`` (``pad = (k - 2)
    // 2``, TensorFlow's ``same``), so output ``2 m + p`` takes input ``m + t`` through tap
    ``k = p + pad - 2 t``: an ordinary ``same`` convolution per output phase ``p``.
    """
    k, _, cout, cin = kernel.shape
    pad = max(k - 2, 0) // 2
    taps = [(p, t, p + pad - 2 * t) for p in range(2) for t in range(-k, k + 1) if 0 <= p + pad - 2 * t < k]
    radius = max(abs(t) for _, t, _ in taps)
    out = np.zeros((2 * radius + 1, 2 * radius + 1, cin, 4 * cout), kernel.dtype)
    for py, ty, ky in taps:
        for px, tx, kx in taps:
            o = (py * 2 + px) * cout
            out[ty + radius, tx + radius, :, o : o + cout] = kernel[ky, kx].T
    return out


def _is_plain_conv(layer) -> bool:
    """A stride-1 ``same`` Conv2D of odd square kernel, no dilation, one group."""
    k = layer.kernel_size if type(layer) is L.Conv2D else (0, 0)
    return (
        type(layer) is L.Conv2D and k[0] == k[1] and k[0] % 2 == 1 and tuple(layer.strides) == (1, 1)
        and layer.padding == "same" and tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1
    )


def _upsample_conv_pairs(model) -> dict:
    """``{id(output of a nearest x2 upsampling): the convolution that alone consumes it}``
    over ``model``'s own graph."""
    consumers: dict = {}
    for nodes in model._nodes_by_depth.values():  # noqa: SLF001 - the functional graph
        for node in nodes:
            if not node.is_input:
                for t in tf.nest.flatten((node.call_args, node.call_kwargs)):
                    consumers.setdefault(id(t), []).append(node)
    ends = {id(t) for t in model.outputs}
    pairs = {}
    for nodes in model._nodes_by_depth.values():  # noqa: SLF001
        for node in nodes:
            layer = node.layer
            if node.is_input or type(layer) is not L.UpSampling2D or tuple(layer.size) != (2, 2) or layer.interpolation != "nearest":
                continue
            (out,) = tf.nest.flatten(node.outputs)
            users = consumers.get(id(out), [])
            if id(out) not in ends and len(users) == 1 and _is_plain_conv(users[0].layer):
                pairs[id(out)] = users[0].layer
    return pairs


def nearest_conv_kernel(kernel: np.ndarray) -> np.ndarray:
    """``(k, k, Cin, Cout)`` kernel of a ``same`` convolution after nearest x2 ->
    ``(K, K, Cin, 4 Cout)`` on the input before the upsampling.

    Output pixel ``2 m + p`` takes upsampled pixel ``2 m + p + d`` through tap ``d + r``
    (``r = k // 2``), which is input pixel ``m + floor((p + d) / 2)``: taps that land on
    the same input pixel add up. The zero padding agrees: upsampled pixels outside the
    image are input pixels outside it.
    """
    k, _, cin, cout = kernel.shape
    r = k // 2
    radius = (r + 1) // 2
    out = np.zeros((2 * radius + 1, 2 * radius + 1, cin, 4 * cout), np.float64)
    for py in range(2):
        for px in range(2):
            o = (py * 2 + px) * cout
            for ky in range(k):
                for kx in range(k):
                    oy, ox = (py + ky - r) // 2, (px + kx - r) // 2
                    out[oy + radius, ox + radius, :, o : o + cout] += kernel[ky, kx]
    return out.astype(kernel.dtype)


def _is_channel_prelu(layer) -> bool:
    """A PReLU whose slopes are shared over H and W: one per channel."""
    return isinstance(layer, L.PReLU) and len(layer.alpha.shape) == 3 and tuple(layer.alpha.shape[:2]) == (1, 1)


def _depthwise_1x1(weights, name, relu):
    """A 1x1 DepthwiseConv2D (optionally with a fused ReLU) and its per-channel weights."""
    layer = L.DepthwiseConv2D(1, use_bias=False, activation="relu" if relu else None, name=name)
    return layer, [weights.reshape(1, 1, -1, 1).astype(np.float32)]


def _prelu_layers(layer, x):
    """``(output, [(new layer, weights)])``: ``layer`` (a channel PReLU) applied to ``x``
    as depthwise 1x1 convolutions with a fused ReLU and an ADD (see the module docstring)."""
    alpha = layer.alpha.numpy().reshape(-1)
    if np.all(alpha <= 1):
        layers = [_depthwise_1x1(alpha - 1, f"{layer.name}_negative", True)]
    else:
        layers = [_depthwise_1x1(-np.ones_like(alpha), f"{layer.name}_negative", True),
                  _depthwise_1x1(1 - alpha, f"{layer.name}_slope", False)]
    r = x
    for new, _ in layers:
        r = new(r)
    return L.Add(name=f"{layer.name}_sum")([x, r]), layers


def _conv_like(layer, kernel, bias, name):
    """A ``same`` Conv2D holding ``kernel`` with ``layer``'s activation (applied per pixel,
    so it commutes with ``depth_to_space``)."""
    conv = L.Conv2D(kernel.shape[-1], kernel.shape[0], padding="same", activation=layer.activation,
                    use_bias=bias is not None, name=name)
    return conv, [kernel] + ([bias] if bias is not None else [])


def _even(input_size) -> bool:
    return input_size is not None and all(int(s) % 2 == 0 for s in input_size)


def rewritable(model, input_size=None, integer: bool = False) -> list[str]:
    """Names of the layers :func:`rewrite_for_xnnpack` replaces at ``input_size``."""
    even = _even(input_size)
    after_upsampling = {id(conv) for conv in _upsample_conv_pairs(model).values()}
    return [layer.name for layer in model.layers
            if _is_thin_conv(layer, even) or _is_stride2_transpose(layer) or id(layer) in after_upsampling
            or (integer and _is_channel_prelu(layer))]


def rewrite_for_xnnpack(model, input_size=None, integer: bool = False):
    """``(model, names of the rewritten layers)``: ``model`` itself when nothing matches.

    ``input_size`` ``(H, W)``: thin convolutions are rewritten only at a known even size
    (``space_to_depth`` needs one); transposed convolutions at any size. ``integer``: the
    model becomes an int8 file, so channel PReLUs are rewritten too.
    """
    even = _even(input_size)
    if not rewritable(model, input_size, integer):
        return model, []
    rewritten, weights = [], []
    pairs = _upsample_conv_pairs(model)
    low_res = {}  # id(upsampled tensor of a pair) -> the new graph's tensor before the upsampling
    new = {}
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
    for old, fresh in zip(model.inputs, inputs):
        new[id(old)] = fresh
    for depth in sorted(model._nodes_by_depth, reverse=True):  # noqa: SLF001 - the functional graph, inputs first
        for node in model._nodes_by_depth[depth]:  # noqa: SLF001
            if node.is_input:
                continue
            layer = node.layer
            args = tf.nest.map_structure(lambda t: new.get(id(t), t), node.call_args)
            kwargs = tf.nest.map_structure(lambda t: new.get(id(t), t), node.call_kwargs)
            (x,) = args if len(args) == 1 else (None,)
            (first, *_) = tf.nest.flatten(node.outputs)
            if id(first) in pairs:  # the convolution after it takes the input as it is
                low_res[id(first)] = x
                continue
            source = tf.nest.flatten(node.call_args)[0] if node.call_args else None
            if x is not None and id(source) in low_res:
                kernel = nearest_conv_kernel(layer.kernel.numpy())
                bias = np.tile(layer.bias.numpy(), 4) if layer.use_bias else None
                conv, w = _conv_like(layer, kernel, bias, f"{layer.name}_phases")
                y = Mux(name=f"{layer.name}_mux")(conv(low_res[id(source)]))
                weights.append((conv, w))
                rewritten.append(layer.name)
                for old, out in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(y)):
                    new[id(old)] = out
                continue
            thin = x is not None and _is_thin_conv(layer, even)
            if integer and x is not None and _is_channel_prelu(layer):
                y, layers = _prelu_layers(layer, x)
                weights.extend(layers)
                rewritten.append(layer.name)
            elif thin or (x is not None and _is_stride2_transpose(layer)):
                kernel = (thin_conv_kernel if thin else transpose_kernel)(layer.kernel.numpy())
                bias = np.tile(layer.bias.numpy(), 4) if layer.use_bias else None
                conv, w = _conv_like(layer, kernel, bias, f"{layer.name}_{'blocks' if thin else 'phases'}")
                y = Mux(name=f"{layer.name}_mux")(conv(Demux(name=f"{layer.name}_demux")(x) if thin else x))
                weights.append((conv, w))
                rewritten.append(layer.name)
            else:
                clone = layer.__class__.from_config(layer.get_config())
                y = clone(*args, **kwargs)
                weights.append((clone, layer.get_weights()))
            for old, out in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(y)):
                new[id(old)] = out
    result = keras.Model(inputs, [new[id(t)] for t in model.outputs] if len(model.outputs) > 1 else new[id(model.outputs[0])],
                         name=model.name)
    for layer, w in weights:
        layer.set_weights(w)
    return result, rewritten
