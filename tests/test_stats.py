from mobile_enhance.compat import keras
from mobile_enhance.models import build_model
from mobile_enhance.models.stats import count_macs


def test_macs_of_a_hand_counted_graph():
    L = keras.layers
    x = keras.Input((None, None, 3))
    y = L.Conv2D(8, 3, strides=2, padding="same")(x)  # 8x8 out: 64 * 9 * 3 * 8
    y = L.Conv2DTranspose(4, 2, strides=2, padding="same")(y)  # 8x8 in: 64 * 4 * 8 * 4
    y = L.DepthwiseConv2D(3, padding="same")(y)  # 16x16: 256 * 9 * 4
    y = L.Dense(5)(y)  # 256 * 4 * 5
    model = keras.Model(x, y)
    assert count_macs(model, 16, 16) == 64 * 9 * 3 * 8 + 64 * 4 * 8 * 4 + 256 * 9 * 4 + 256 * 4 * 5


def test_dped_macs_scale_with_pixels():
    model = build_model("dped")
    # DPED is all stride-1 convs: MACs = pixels x (params of conv kernels).
    kernel_params = sum(w.numpy().size for w in model.weights if "kernel" in w.name)
    assert count_macs(model, 20, 30) == 20 * 30 * kernel_params


def test_the_in_graph_bicubic_counts_as_the_convolution_it_runs():
    from mobile_enhance.models.layers import LegacyBicubicUpsample

    x = keras.Input((None, None, 3))
    model = keras.Model(x, LegacyBicubicUpsample(4)(x))
    assert count_macs(model, 5, 7) == 5 * 7 * (4 * 4 * 3) * (4 * 4 * 3)  # a 4x4 conv from 3 to 48 channels per input pixel
