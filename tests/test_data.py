import logging

import numpy as np
import pytest

from dped_tree import make_dped_tree, make_pair_images, make_photo_folder
from PIL import Image

from mobile_enhance.data import DataError, make_source, parse_data_spec
from mobile_enhance.data.synthetic import Degradation
from mobile_enhance.errors import UnknownNameError


@pytest.fixture(scope="module")
def dped_root(tmp_path_factory):
    return make_dped_tree(tmp_path_factory.mktemp("d"), train=6, test=3)


def test_dped_examples_are_aligned_crops_and_deterministic(dped_root):
    source = make_source(f"dped:{dped_root}", patch_size=64, seed=3, phone="iphone")
    assert len(source.items) == 6 and len(source.validation()) == 3
    x, y = source.example(5)
    assert x.shape == y.shape == (64, 64, 3) and x.dtype == np.float32
    again = make_source(f"dped:{dped_root}", patch_size=64, seed=3).example(5)
    np.testing.assert_array_equal(x, again[0])
    other = make_source(f"dped:{dped_root}", patch_size=64, seed=4).example(5)
    assert not np.array_equal(x, other[0])
    # input is a degraded target: strongly correlated
    assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.9


def test_epoch_visits_every_pair_once(dped_root):
    source = make_source(f"dped:{dped_root}", patch_size=100, seed=0, augment=False)
    targets = {source.example(i)[1].tobytes() for i in range(6)}
    assert len(targets) == 6


def test_dataset_batches(dped_root):
    source = make_source(f"dped:{dped_root}", patch_size=32, seed=0)
    x, y = next(iter(source.dataset(4)))
    assert x.shape == (4, 32, 32, 3) and y.shape == (4, 32, 32, 3)
    later = next(iter(source.dataset(4, start_example=4)))
    np.testing.assert_array_equal(later[0].numpy()[0], source.example(4)[0])


def test_not_a_dped_tree(tmp_path):
    with pytest.raises(DataError, match="is not a DPED tree"):
        make_source(f"dped:{tmp_path}", 100)
    with pytest.raises(DataError, match="no such folder"):
        make_source(f"dped:{tmp_path / 'nope'}", 100)


def test_phone_with_no_data(dped_root):
    with pytest.raises(DataError, match=r"no data for phone 'sony' .*found: iphone"):
        make_source(f"dped:{dped_root}", 100, phone="sony")
    with pytest.raises(DataError, match="unknown DPED phone"):
        make_source(f"dped:{dped_root}", 100, phone="pixel")


def test_unpaired_and_corrupt_files_are_reported(tmp_path, caplog):
    root = make_dped_tree(tmp_path, train=5, test=0)
    train = root / "iphone" / "training_data"
    (train / "canon" / "4.jpg").unlink()  # unpaired
    (train / "iphone" / "1.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")  # corrupt
    with caplog.at_level(logging.WARNING):
        source = make_source(f"dped:{root}", 50, seed=0)
        assert len(source.items) == 4
        for i in range(8):
            source.example(i)
    text = caplog.text
    assert "without a partner" in text and "4" in text
    assert "1.jpg" in text and "unreadable" in text
    assert source.bad_files == [str(train / "iphone" / "1.jpg")] or any("1.jpg" in f for f in source.bad_files)


def test_all_files_unreadable_is_an_error(tmp_path):
    root = make_dped_tree(tmp_path, train=4, test=0)
    for p in (root / "iphone" / "training_data" / "iphone").glob("*.jpg"):
        p.write_bytes(b"garbage")
    source = make_source(f"dped:{root}", 50, seed=0)
    with pytest.raises(DataError, match="unreadable"):
        for i in range(10):
            source.example(i)


def test_pairs_source(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        a, b = make_pair_images(rng, (70, 90))
        for d, arr in (("in", a), ("out", b)):
            (tmp_path / d).mkdir(exist_ok=True)
            Image.fromarray(arr).save(tmp_path / d / f"img{i}.png")
    source = make_source(f"pairs:{tmp_path / 'in'},{tmp_path / 'out'}", 48, val_fraction=0.2)
    assert len(source.items) + len(source.val_pairs) == 6 and source.val_pairs
    x, y = source.example(0)
    assert x.shape == (48, 48, 3)
    with pytest.raises(DataError, match="expected pairs:INPUT_DIR,TARGET_DIR"):
        make_source(f"pairs:{tmp_path / 'in'}", 48)


def test_synthetic_is_seedable_and_degrades(tmp_path):
    folder = make_photo_folder(tmp_path / "photos", count=7)
    source = make_source(f"synthetic:{folder}", 64, seed=1, val_fraction=0.3)
    assert len(source.val_files) >= 1 and not set(source.val_files) & set(source.items)
    x, y = source.example(2)
    np.testing.assert_array_equal(x, make_source(f"synthetic:{folder}", 64, seed=1, val_fraction=0.3).example(2)[0])
    mse = np.mean((x - y) ** 2)
    assert 1e-4 < mse < 0.05  # degraded, but the same scene
    val = source.validation()
    assert len(val) == 8 * len(source.val_files)


def test_degradation_steps():
    rng = np.random.default_rng(0)
    flat = np.full((64, 64, 3), 0.5, np.float32)
    out = Degradation(jpeg_quality=(95, 95))(flat, np.random.default_rng(1))
    assert out.shape == flat.shape and 0 <= out.min() and out.max() <= 1
    # vignetting: corners darker than the centre on a flat grey frame (noise aside)
    no_noise = Degradation(shot_noise=(0, 0), read_noise=(0, 0), color_gain=(1, 1), jpeg_quality=(95, 95), vignetting=(0.3, 0.3))
    v = no_noise(flat, rng).mean(axis=2)
    assert v[:8, :8].mean() < v[28:36, 28:36].mean() - 0.02


def test_sr_and_unpaired(tmp_path):
    folder = make_photo_folder(tmp_path / "p", count=4)
    sr = make_source(f"sr:{folder}", 64, seed=0)
    x, y = sr.example(0)
    assert x.shape == y.shape == (64, 64, 3)
    assert np.abs(x - y).mean() > 0.001
    with pytest.raises(DataError, match="multiple of the scale"):
        make_source(f"sr:{folder}", 66)
    other = make_photo_folder(tmp_path / "q", count=2, seed=5)
    un = make_source(f"unpaired:{folder},{other}", 32)
    a, b = un.example(1)
    assert a.shape == b.shape == (32, 32, 3)


def test_unknown_kind_lists_known():
    with pytest.raises(UnknownNameError, match="dped, pairs, photos, sr, synthetic, unpaired"):
        parse_data_spec("dpde:/x")


def test_export_crops_of_a_frame_wider_than_the_photos_are_tall(tmp_path):
    """--size=iphone (1536x2048) from 2560x1600 photos: crops of HxW, not of the larger side squared."""
    from mobile_enhance.export.exporter import heldout_pairs, representative_inputs

    folder = make_photo_folder(tmp_path / "photos", count=6, size=(120, 160))
    Image.fromarray(np.zeros((160, 120, 3), np.uint8) + 90).save(folder / "portrait.png")  # fits turned a quarter
    Image.fromarray(np.zeros((90, 100, 3), np.uint8) + 90).save(folder / "small.png")  # fits in no way
    source = make_source(f"synthetic:{folder}", 64, seed=1, val_fraction=0.3)
    inputs = representative_inputs(source, 96, 144, 8)
    assert len(inputs) == 8 and all(x.shape == (96, 144, 3) for x in inputs)
    x, y = heldout_pairs(source, 96, 144, 4)
    assert x.shape == y.shape == (4, 96, 144, 3)
    # the training stream still takes the small photo, and its patches stay square
    assert source.bad_files == [] and source.example(0)[0].shape == (64, 64, 3)
    sr = make_source(f"sr:{folder}", 64, seed=0)
    assert all(a.shape == (96, 144, 3) for a in representative_inputs(sr, 96, 144, 3))
