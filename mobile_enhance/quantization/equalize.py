"""Equalization for full-integer files: the float function unchanged, its tensors put on
scales one int8 scale per tensor can hold (instance norms' channels, concatenations'
inputs), and instance-norm statistics computed as int8 kernels compute them best."""

from __future__ import annotations

import numpy as np

from mobile_enhance.compat import keras, tf


def reconfigured(model, configs: dict, weights: dict | None = None):
    """A copy of ``model`` with ``configs[name]`` merged into that layer's config and
    ``weights[name]`` (where given) in place of its weights."""
    weights = weights or {}

    def clone(layer):
        return layer.__class__.from_config({**layer.get_config(), **configs.get(layer.name, {})})

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        layer.set_weights(weights.get(layer.name, model.get_layer(layer.name).get_weights()))
    return copy


#: Most input pixels per batch of :func:`_typical_spreads`: every probed tensor of the batch
#: is alive at once (DPED's eight norm inputs for eight 720x1280 images: over 11 GB).
SPREAD_PIXELS = 1 << 20


def _typical_spreads(model, tensors, inputs, batch_size: int) -> list[np.ndarray]:
    """Per tensor of ``model``: each channel's typical spatial std, the median over
    ``inputs`` of each image's (one batch at a time, of at most ``batch_size`` images and
    :data:`SPREAD_PIXELS` pixels: full-size tensors are large)."""
    probe = keras.Model(model.inputs, list(tensors))
    spreads = [[] for _ in tensors]
    pixels = int(np.prod(np.shape(inputs[0])[:2])) if len(inputs) else 1
    batch_size = max(1, min(batch_size, SPREAD_PIXELS // max(pixels, 1)))
    for start in range(0, len(inputs), batch_size):
        values = probe(np.asarray(inputs[start : start + batch_size], np.float32), training=False)
        for i, value in enumerate(values if len(tensors) > 1 else [values]):
            spreads[i].append(tf.math.reduce_std(value, axis=list(range(1, len(value.shape) - 1))).numpy())
    if not spreads[0]:
        raise ValueError("equalization needs at least one input image")
    return [np.median(np.concatenate(per_image), axis=0) for per_image in spreads]


def equalize_instance_norms(model, inputs, batch_size: int = 8):
    """A copy of ``model`` whose instance norms hold every channel's statistics on one scale.

    Full-integer TFLite stores each activation tensor with one scale for all its channels.
    An instance norm's variance is the mean of its centered input squared: a channel whose
    spread is 10x below the tensor's largest has its squares 100x below that tensor's
    range, they round to zero, and the norm then multiplies the channel by
    ``1/sqrt(epsilon)`` instead of ``1/std``. (Measured on the 2500-step muxdemux: its
    int8 file lost 6.0 dB against the targets.) Here each
    :class:`~mobile_enhance.models.layers.InstanceNormalization` gets ``prescale = 1 /
    typical std`` per channel (the median over ``inputs`` of each image's spatial std),
    so that its input, statistics and ``1/std`` are about 1 for every channel. The float
    output is unchanged (the epsilon is scaled with them). Where a convolution feeds only
    the norm, the scale goes into its weights instead and the norm's ``input_scale``
    undoes it (fast_dped's last transposed convolution, rewritten as phase convolutions +
    depth_to_space, kept a separate int8 multiply on unequal channels: its int8 file was
    38.7 dB from the float model, 39.6 with the scale in the weights).

    Args:
      model: float Keras model, ``(N, H, W, 3)`` float32.
      inputs: ``(N, H, W, 3)`` calibration images (the int8 representative set).

    Returns:
      ``(model copy, number of norms equalized)``; ``model`` itself if it has none.
      A norm whose input is constant on every image is left as it is.
    """
    from mobile_enhance.models.layers import InstanceNormalization

    norms = [layer for layer in model.layers if isinstance(layer, InstanceNormalization)]
    if not norms:
        return model, 0
    prescale = {}
    for layer, std in zip(norms, _typical_spreads(model, [layer.input for layer in norms], inputs, batch_size)):
        if std.max() <= 0:
            continue  # constant on every image: nothing to put on one scale
        floor = float(std.max()) * 1e-3  # dead channels: keep them near the others' scale
        prescale[layer.name] = 1.0 / np.maximum(std, floor)

    if not prescale:
        return model, 0
    # A norm fed by a convolution (or dense layer) that feeds nothing else takes the scale
    # in that layer's weights, and the norm's input_scale undoes it: no multiply is left
    # in the graph (the converter folds one into a convolution only where the two are
    # adjacent in the converted graph, not across the depth_to_space of a rewritten
    # transposed convolution).
    parents = _graph(model)
    consumers = {}
    for inbound in parents.values():
        for parent in inbound:
            consumers[parent] = consumers.get(parent, 0) + 1
    folded = {}
    for name, p in prescale.items():
        (source,) = parents[name]
        producer = model.get_layer(source)
        if (type(producer).__name__ in ("Conv2D", "Conv2DTranspose", "Dense") and consumers[source] == 1
                and producer.get_config().get("activation", "linear") in ("linear", "relu")
                and _rescale(model, parents, {**folded, source: p}) is not None):
            folded[source] = p
    weights, input_scales = _rescale(model, parents, folded)
    configs = {name: {"input_scale": scale.tolist()} for name, scale in input_scales.items()}
    configs.update({name: {"prescale": p.tolist()} for name, p in prescale.items() if name not in configs})
    return reconfigured(model, configs, weights), len(prescale)


# -- concatenations: one scale for the channels they join ----------------------------

_PRODUCERS = ("Conv2D", "Conv2DTranspose", "Dense", "InstanceNormalization")


def _homogeneous(layer) -> bool:
    """``f(k x) = k f(x)`` for every ``k > 0``: ReLU without cap or threshold, LeakyReLU, linear."""
    kind, config = type(layer).__name__, layer.get_config()
    if kind == "ReLU":
        return config.get("max_value") is None and not config.get("threshold")
    if kind == "LeakyReLU":
        return True
    if kind == "Activation":
        return config.get("activation") in ("relu", "linear")
    return False


def _graph(model) -> dict:
    """Layer name -> names of the layers feeding it (its one call in ``model``)."""
    parents = {}
    for entry in model.get_config()["layers"]:
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise ValueError(f"layer {entry['name']} is called more than once")
        parents[entry["name"]] = [inbound[0] for inbound in nodes[0]] if nodes else []
    return parents


def _rescale(model, parents, producers: dict):
    """Weights and norm input scales for ``model`` with each producer's output channels
    multiplied by ``producers[name]`` and every consumer compensated; ``None`` where some
    consumer cannot be (an Add, the model's output, an unknown layer, ...)."""
    weights, input_scales, factors = {}, {}, {}
    for layer in model.layers:
        name, kind = layer.name, type(layer).__name__
        ins = [factors.get(p) for p in parents[name]]
        w = None
        if kind in ("Conv2D", "Conv2DTranspose", "Dense", "InstanceNormalization") and (ins[0] is not None or name in producers):
            w = [np.array(v, copy=True) for v in layer.get_weights()]
        f = ins[0] if ins else None
        if kind in ("Conv2D", "Dense"):
            if kind == "Conv2D" and layer.groups != 1:
                return None
            if f is not None:
                w[0] /= f[:, None]  # (..., in, out)
            out = None
        elif kind == "Conv2DTranspose":
            if f is not None:
                w[0] /= f  # (kh, kw, out, in)
            out = None
        elif kind == "InstanceNormalization":
            if f is not None:
                input_scales[name] = np.asarray(layer.input_scale or np.ones_like(f)) * f
            out = None
        elif _homogeneous(layer) or kind in ("GlobalAveragePooling2D", "Dropout"):
            out = f
        elif kind == "BroadcastSpatial":
            out = f  # the vector's channels; the reference only gives the size
        elif kind == "Concatenate" and any(v is not None for v in ins):
            if layer.axis not in (-1, 3):
                return None
            widths = [int(p.shape[-1]) for p in tf.nest.flatten(layer.input)]
            out = np.concatenate([np.ones(n) if v is None else v for v, n in zip(ins, widths)])
        elif kind == "Mux" and f is not None:
            blocks = f.reshape(layer.block_size**2, -1)  # depth_to_space: channel (block, c)
            if not np.allclose(blocks, blocks[0]):
                return None
            out = blocks[0]
        elif kind == "Demux" and f is not None:
            out = np.tile(f, layer.block_size**2)
        elif kind == "NoiseChannels" and f is not None:
            out = np.concatenate([f, np.ones(layer.channels)])
        else:
            if any(v is not None for v in ins):
                return None
            out = None
        if name in producers:
            k = producers[name]
            if kind == "InstanceNormalization":
                w = [v * k for v in w]  # gamma and beta
            elif kind == "Conv2DTranspose":
                w[0] *= k[:, None]
                w[1:] = [v * k for v in w[1:]]
            else:
                w[0] *= k
                w[1:] = [v * k for v in w[1:]]
            out = k
        if w is not None:
            weights[name] = w
        factors[name] = out
    if any(factors.get(layer.name) is not None for layer in model._output_layers):  # noqa: SLF001
        return None
    return weights, input_scales


def _concat_sources(model, parents):
    """``(producer, concat input layer, block, concat)`` for each input of a Concatenate reached from
    a rescalable layer through homogeneous activations (and Mux: ``block`` channels of the
    producer make one of the input's)."""
    found = []
    for layer in model.layers:
        if type(layer).__name__ != "Concatenate":
            continue
        for name in parents[layer.name]:
            current, block = model.get_layer(name), 1
            while True:
                kind = type(current).__name__
                if _homogeneous(current) or kind in ("BroadcastSpatial", "Mux"):
                    block *= current.block_size**2 if kind == "Mux" else 1
                    current = model.get_layer(parents[current.name][0])
                    continue
                break
            kind = type(current).__name__
            if kind not in _PRODUCERS or (kind == "InstanceNormalization" and not current.scale):
                continue
            if kind != "InstanceNormalization" and current.get_config().get("activation", "linear") not in ("linear", "relu"):
                continue
            found.append((current.name, name, block, layer.name))
    return found


def equalize_concatenations(model, inputs, ratio_limit: float = 4.0, batch_size: int = 8):
    """A copy of ``model`` whose concatenations join inputs of a similar size.

    Full-integer TFLite stores a concatenation with one scale, so an input far larger
    than the others sets the step for all of them. The trained Mux/Demux decoder joins its
    upsampled path (typical std about 10) with an encoder skip (about 0.8): the skip kept
    only a few int8 steps (int8 vs float 27.6 dB on its held-out patches; 30.4 with this).
    Here an input whose typical std (the median over ``inputs`` of each image's spatial
    std) is more than ``ratio_limit`` times the other inputs' is scaled down to theirs at
    the layer that makes it (a convolution, a dense layer, or an instance norm's scale and
    shift, reached through ReLU/LeakyReLU, Mux or a broadcast), and every consumer of that
    layer compensates exactly: convolutions and dense layers divide their input weights,
    instance norms take the factor as their ``input_scale``, and concatenations, Demux
    and homogeneous activations pass it on. A layer whose factor would reach anything
    else (an Add, the model's output, ...) is left as it is. The float output is
    unchanged up to rounding.

    Returns:
      ``(model copy, number of layers rescaled)``; ``model`` itself where none is.
    """
    parents = _graph(model)
    sources = _concat_sources(model, parents)
    if not sources:
        return model, 0
    seen = list(dict.fromkeys(n for concat in {c for *_, c in sources} for n in parents[concat]))
    spreads = _typical_spreads(model, [model.get_layer(name).output for name in seen], inputs, batch_size)
    typical = dict(zip(seen, spreads))
    accepted = {}
    for producer, via, block, concat in sources:
        others = [typical[name] for name in parents[concat] if name != via]
        if producer in accepted or not others or np.median(np.concatenate(others)) <= 0:
            continue
        ratio = float(np.median(typical[via]) / np.median(np.concatenate(others)))
        if ratio <= ratio_limit:
            continue
        k = np.full(typical[via].size * block, 1.0 / ratio)  # Mux: `block` producer channels per input channel
        if _rescale(model, parents, {**accepted, producer: k}) is not None:
            accepted[producer] = k
    if not accepted:
        return model, 0
    weights, input_scales = _rescale(model, parents, accepted)
    configs = {name: {"input_scale": scale.tolist()} for name, scale in input_scales.items()}
    return reconfigured(model, configs, weights), len(accepted)


def integer_means(model):
    """``model`` with every instance norm computing its statistics as full-integer files
    should: mean and variance in one MEAN each (``row_means=False``; int8 MEAN adds in
    int32, and the row means of the float form would each be rounded to int8: fast_dped's
    int8 file 39.4 dB from the float model with row means, 39.6 without), the variance as
    per-channel dot products (``variance_matmul``, see
    :func:`mobile_enhance.models.layers.matmul_variance`). The float function is the same."""
    from mobile_enhance.models.layers import InstanceNormalization

    names = [layer.name for layer in model.layers
             if isinstance(layer, InstanceNormalization) and (layer.row_means or not layer.variance_matmul)]
    return reconfigured(model, {name: {"row_means": False, "variance_matmul": True} for name in names}) if names else model


def equalize_for_int8(model, inputs):
    """Both equalizations, as the int8 export applies them: concatenations first (their
    rescaled producers can be norms), then instance norms. Returns ``(model, counts)``,
    counts keyed as the export's sidecar: ``concat_inputs_rescaled``,
    ``instance_norms_equalized``."""
    model, rescaled = equalize_concatenations(model, inputs)
    model, norms = equalize_instance_norms(model, inputs)
    return model, {"concat_inputs_rescaled": rescaled, "instance_norms_equalized": norms}
