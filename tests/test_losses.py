import numpy as np
import pytest
import scipy.io

from mobile_enhance.compat import keras, tf
from mobile_enhance.errors import UnknownNameError, UserError
from mobile_enhance.losses import parse_losses
from mobile_enhance.models import get_card
from mobile_enhance.losses import functions as F
from mobile_enhance.losses.vgg import LAYERS, VGGFeatures, VGGWeightsMissing, vgg19_graph


def imgs(seed, n=2, s=32):
    return tf.constant(np.random.default_rng(seed).random((n, s, s, 3)), tf.float32)


def test_pixel_losses_are_zero_on_equal_and_positive_otherwise():
    a, b = imgs(0), imgs(1)
    for fn in (F.l1, F.l2, F.color, F.l1_sum, F.yuv_l1, F.ssim, F.ms_ssim):
        assert np.allclose(fn(a, a).numpy(), 0, atol=1e-5), fn.__name__
        value = fn(a, b).numpy()
        assert value.shape == (2,) and (value > 0).all(), fn.__name__


def test_l1_l2_values():
    a = tf.zeros((1, 4, 4, 3))
    b = tf.fill((1, 4, 4, 3), 0.5)
    assert F.l1(a, b).numpy()[0] == pytest.approx(0.5)
    assert F.l2(a, b).numpy()[0] == pytest.approx(0.25)


def test_dped_blur_kernel():
    k = F.dped_gauss_kernel(21, 3)
    assert k.shape == (21, 21) and k.sum() == pytest.approx(1, abs=1e-6)
    assert k[10, 10] == k.max() and np.allclose(k, k.T)


def test_color_loss_ignores_fine_texture():
    base = np.full((1, 64, 64, 3), 0.5, np.float32)
    checker = base + 0.2 * ((np.indices((64, 64)).sum(0) % 2) - 0.5)[None, ..., None].astype(np.float32)
    shifted = base + np.float32(0.1)
    # a zero-mean high-frequency pattern barely moves the blurred colours, a uniform
    # colour change of the same amplitude does; plain L2 sees them alike
    assert F.l2(base, checker).numpy()[0] == pytest.approx(F.l2(base, shifted).numpy()[0], rel=1e-5)
    assert F.color(base, checker).numpy()[0] * 100 < F.color(base, shifted).numpy()[0]


def test_total_variation():
    flat = tf.fill((1, 8, 8, 3), 0.3)
    assert F.total_variation(flat).numpy()[0] == 0
    stripes = tf.constant(np.tile([0.0, 1.0], 4)[None, None, :, None] * np.ones((1, 8, 8, 3)), tf.float32)
    assert F.total_variation(stripes).numpy()[0] == pytest.approx(1.0)


def test_ssim_loss_is_one_minus_the_validation_ssim_with_finite_gradients():
    a = imgs(0, s=48)
    b = tf.clip_by_value(a + 0.1 * imgs(3, s=48), 0, 1)
    np.testing.assert_allclose(F.ssim(a, b).numpy(), 1 - tf.image.ssim(a, b, 1.0).numpy(), atol=1e-4)
    flat = tf.fill((1, 48, 48, 3), 0.5)  # zero variance everywhere
    with tf.GradientTape() as tape:
        tape.watch(flat)
        loss = F.ssim(flat, flat + 0.01)
    assert np.isfinite(tape.gradient(loss, flat).numpy()).all()


def test_ms_ssim_adapts_scales_to_patch_size():
    a = imgs(0, s=100)
    assert F.ms_ssim_value(a, a).numpy() == pytest.approx([1, 1], abs=1e-5)
    noisy = tf.clip_by_value(a + 0.1 * imgs(2, s=100), 0, 1)
    v = F.ms_ssim_value(a, noisy).numpy()
    assert (v < 1).all() and (v > 0).all()


def test_gram_and_contextual():
    fa = {"relu4_2": tf.random.stateless_uniform((2, 6, 6, 8), (1, 2))}
    fb = {"relu4_2": tf.random.stateless_uniform((2, 6, 6, 8), (3, 4))}
    same = F.contextual(fa, fa, layers=("relu4_2",)).numpy()
    diff = F.contextual(fa, fb, layers=("relu4_2",)).numpy()
    assert same.shape == (2,) and (diff > same).all()
    assert np.allclose(F.gram_texture(fa, fa, layers=("relu4_2",)).numpy(), 0)
    assert (F.gram_texture(fa, fb, layers=("relu4_2",)).numpy() > 0).all()


def test_adversarial_and_wgan_gp():
    p = tf.constant([[0.9, 0.1], [0.2, 0.8]])
    g = F.texture_generator(p, batch_sum=False).numpy()
    assert g == pytest.approx(np.log([0.1, 0.8]), rel=1e-5)
    assert F.texture_generator(p, global_batch=4).numpy() == pytest.approx(4 * g, rel=1e-5)
    d = F.discriminator_loss(p, p, batch_sum=False).numpy()
    assert d == pytest.approx(-(np.log([0.9, 0.2]) + np.log([0.1, 0.8])) / 2, rel=1e-5)
    critic = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(1)])
    loss = F.wgan_gp_critic(critic, imgs(0, s=4), imgs(1, s=4)).numpy()
    assert loss.shape == (2,) and np.isfinite(loss).all()
    assert F.wgan_generator(tf.constant([[1.0], [2.0]])).numpy() == pytest.approx([-1, -2])


def test_recipes_parse():
    dped = get_card("dped").losses
    assert [t.type for t in dped] == ["content", "color", "texture", "tv"]
    assert [t.weight for t in dped] == [10, 0.5, 1, 2000]
    terms = parse_losses("l1:1,tv:0,ms_ssim:0.5")
    assert [(t.type, t.weight) for t in terms] == [("l1", 1.0), ("ms_ssim", 0.5)]
    with pytest.raises(UnknownNameError, match="known losss|known loss"):
        parse_losses("l3:1")
    with pytest.raises(UnknownNameError, match="loss recipe"):
        parse_losses("dpde")
    with pytest.raises(UserError, match="not a number"):
        parse_losses("l1:abc")
    # a term through a named discriminator; the card's own recipe names
    (gan,) = parse_losses("gan@color:0.005")
    assert (gan.type, gan.weight, gan.disc, gan.label, gan.fn_kwargs) == ("gan", 0.005, "color", "gan_color", {})
    assert parse_losses("texture:1")[0].disc == "texture"
    with pytest.raises(UserError, match="needs the discriminator it goes through"):
        parse_losses("gan:1")
    assert parse_losses("paper", get_card("dped")) == get_card("dped").losses
    with pytest.raises(UnknownNameError, match="known loss recipes: dped_novgg, paper, pixel"):
        parse_losses("papr", get_card("dped"))


def test_gan_losses_both_sides():
    from mobile_enhance.losses.gan import GAN_LOSSES, VIEWS

    scores = {"real": tf.constant([[2.0], [0.0]]), "fake": tf.constant([[-1.0], [1.0]])}
    disc = lambda x, training=True: scores[x]  # noqa: E731 - the views below are the keys
    bce = GAN_LOSSES["bce"]
    d, extras = bce.discriminator(disc, "real", "fake")
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731
    assert d.numpy() == pytest.approx(softplus(-np.array([2.0, 0.0])) + softplus(np.array([-1.0, 1.0])), rel=1e-5) and extras == {}
    assert bce.generator(scores["fake"]).numpy() == pytest.approx(softplus(np.array([1.0, -1.0])), rel=1e-5)
    ls = GAN_LOSSES["lsgan"]
    assert ls.discriminator(disc, "real", "fake")[0].numpy() == pytest.approx(0.5 * np.array([(2 - 1) ** 2 + 1, 1 + 1]), rel=1e-5)
    assert ls.generator(scores["fake"]).numpy() == pytest.approx(0.5 * np.array([4.0, 0.0]), rel=1e-5)
    # noisy labels are drawn from the seed: the same seed gives the same loss
    def drawer(seed):
        return lambda shape, salt: tf.random.stateless_uniform(shape, tf.constant([seed, salt], tf.int64))

    noisy = [ls.discriminator(disc, "real", "fake", draw=drawer(s), real_range=(0.7, 1.2))[0].numpy() for s in (2, 2, 3)]
    assert np.array_equal(noisy[0], noisy[1]) and not np.array_equal(noisy[0], noisy[2])
    with pytest.raises(UserError, match="unknown argument.*real_rang; it takes: real_range, fake_range"):
        ls.check_kwargs("discriminator", {"real_rang": (0, 1)}, "discriminator 'x' (lsgan)")
    # WGAN-GP: a linear critic has gradient norm |w| everywhere
    w = np.full((4 * 4 * 3, 1), 0.1, np.float32)
    critic = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)])
    critic.set_weights([w])
    norm = np.sqrt(48) * 0.1
    real, fake = imgs(0, s=4), imgs(1, s=4)
    wass = critic(fake).numpy().ravel() - critic(real).numpy().ravel()
    wgan = GAN_LOSSES["wgan_gp"]
    value, extras = wgan.discriminator(critic, real, fake)
    assert extras["gp"].numpy() == pytest.approx([(norm - 1) ** 2] * 2, rel=1e-4)
    assert value.numpy() == pytest.approx(wass + 10 * (norm - 1) ** 2, rel=1e-4)
    value, extras = wgan.discriminator(critic, real, fake, weight=tf.constant(3.0), one_sided=True)
    assert extras["gp"].numpy() == pytest.approx([0.0, 0.0], abs=1e-6)  # norm < 1: no hinge
    critic.set_weights([w * 3])  # norm above 1: the hinge is linear, not squared
    assert wgan.discriminator(critic, real, fake, one_sided=True)[1]["gp"].numpy() == pytest.approx([3 * norm - 1] * 2, rel=1e-4)
    # a patch-map critic: the penalty is on the gradient of each example's mean score
    patch = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(1, 1, use_bias=False)])
    patch.set_weights([np.full((1, 1, 3, 1), 0.5, np.float32)])
    mean_norm = np.sqrt(48 * (0.5 / 16) ** 2)  # d mean(conv) / d pixel = 0.5 / 16 everywhere
    assert wgan.discriminator(patch, real, fake)[1]["gp"].numpy() == pytest.approx([(mean_norm - 1) ** 2] * 2, rel=1e-4)
    assert wgan.generator(tf.constant([[1.0], [2.0]])).numpy() == pytest.approx([-1, -2])
    assert VIEWS["gray"].channels == 1 and VIEWS["blur_rgb"].fn(imgs(0, s=8)).shape == (2, 8, 8, 3)


def test_vgg_from_keras_file_matches_keras_applications(vgg_h5):
    path, reference = vgg_h5
    features = VGGFeatures(("relu2_2", "relu5_4"), weights=str(path), allow_download=False)
    x = imgs(0, n=1, s=32)
    ours = features(x)
    caffe = keras.applications.vgg19.preprocess_input(x.numpy() * 255.0)
    expected = keras.Model(reference.input, reference.get_layer("block5_conv4").output)(caffe).numpy()
    np.testing.assert_allclose(ours["relu5_4"].numpy(), expected, rtol=1e-4, atol=1e-4)


def test_vgg_from_matconvnet_mat(tmp_path):
    rng = np.random.default_rng(0)
    trunk = vgg19_graph("relu2_1")
    entries = []
    for layer in trunk.layers:
        if layer.name.startswith("conv"):
            k, b = layer.get_weights()
            k = rng.normal(0, 0.05, k.shape).astype(np.float32)
            b = rng.normal(0, 0.05, b.shape).astype(np.float32)
            layer.set_weights([k, b])
            weights = np.empty((1, 2), dtype=object)
            weights[0, 0] = np.transpose(k, (1, 0, 2, 3))  # MatConvNet stores (W, H, in, out)
            weights[0, 1] = b.reshape(-1, 1)
            entries.append({"name": layer.name, "type": "conv", "weights": weights})
            entries.append({"name": layer.name.replace("conv", "relu"), "type": "relu", "weights": np.empty((1, 0), object)})
    layers = np.empty((1, len(entries)), dtype=object)
    for i, e in enumerate(entries):
        layers[0, i] = e
    path = tmp_path / "imagenet-vgg-verydeep-19.mat"
    scipy.io.savemat(path, {"layers": layers})
    features = VGGFeatures(("relu2_1",), weights=str(path), allow_download=False)
    x = imgs(1, n=1, s=16)
    expected = trunk(x.numpy() * 255.0 - np.array([123.68, 116.779, 103.939], np.float32))[-1].numpy()
    np.testing.assert_allclose(features(x)["relu2_1"].numpy(), expected, rtol=1e-4, atol=1e-3)


def test_vgg_missing_says_how_to_provide(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MOBILE_ENHANCE_VGG_WEIGHTS", raising=False)
    with pytest.raises(VGGWeightsMissing, match="--vgg_weights=FILE"):
        VGGFeatures(allow_download=False)
    with pytest.raises(UserError, match="not found"):
        VGGFeatures(weights=str(tmp_path / "nope.h5"), allow_download=False)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="not a VGG-19 Keras weights file"):
        VGGFeatures(weights=str(bad), allow_download=False)
    assert "relu5_4" in LAYERS


def test_ms_ssim_matches_tensorflow_and_has_finite_gradients():
    a = imgs(3, s=96)
    b = tf.clip_by_value(a + 0.05 * imgs(4, s=96), 0, 1)
    weights = (0.0448, 0.2856, 0.3001, 0.2363)
    weights = tuple(w / sum(weights) for w in weights)
    expected = tf.image.ssim_multiscale(a, b, 1.0, filter_size=7, power_factors=weights).numpy()
    np.testing.assert_allclose(F.ms_ssim_value(a, b).numpy(), expected, rtol=2e-3)
    # anti-correlated images: tf's version gives NaN gradients here, ours must not
    x = tf.Variable(imgs(5, s=32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(F.ms_ssim(x, 1.0 - x))
    assert np.isfinite(tape.gradient(loss, x).numpy()).all()
