"""The ``blur:PHOTOS`` source and its degradation model (mobile_enhance.data.blur)."""

import numpy as np
import pytest
from PIL import Image

from mobile_enhance.cli import main as cli
from mobile_enhance.data import DATA_KINDS, DataError, data_kind, make_source, parse_data_spec
from mobile_enhance.data.blur import KINDS, Blur, blur_image, disk_kernel, gaussian_kernel, motion_kernel
from mobile_enhance.data.sources import BlurSource


def sharp_photos(folder, count=5, size=(64, 80), seed=0):
    """Photos of flat rectangles with hard edges: much gradient energy for a blur to remove."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = np.full((*size, 3), rng.random(3), np.float32)
        for _ in range(12):
            y, x = rng.integers(0, size[0] - 8), rng.integers(0, size[1] - 8)
            image[y : y + rng.integers(4, 24), x : x + rng.integers(4, 24)] = rng.random(3)
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


def gradient_energy(image, axis=None):
    """Mean squared difference of neighbouring pixels (both directions, or along ``axis``)."""
    dy = np.mean(np.diff(image, axis=0) ** 2)
    dx = np.mean(np.diff(image, axis=1) ** 2)
    return {None: dx + dy, 0: dy, 1: dx}[axis]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return sharp_photos(tmp_path_factory.mktemp("blur") / "photos")


@pytest.mark.parametrize("kernel", [
    gaussian_kernel(0.5), gaussian_kernel(2.5), disk_kernel(0.3), disk_kernel(1.0), disk_kernel(2.7), disk_kernel(4.0),
    motion_kernel(3, 0), motion_kernel(11, 90), motion_kernel(7.3, 33), motion_kernel(5.5, 141),
])
def test_kernels_sum_to_one_are_odd_and_centred(kernel):
    assert kernel.dtype == np.float32 and kernel.min() >= 0
    assert abs(float(kernel.sum()) - 1.0) < 1e-6
    assert kernel.shape[0] % 2 == 1 and kernel.shape[1] % 2 == 1
    rows, cols = np.indices(kernel.shape)
    centre = ((kernel.shape[0] - 1) / 2, (kernel.shape[1] - 1) / 2)
    assert abs((kernel * rows).sum() - centre[0]) < 1e-3 and abs((kernel * cols).sum() - centre[1]) < 1e-3


def test_kernel_shapes_follow_their_parameters():
    assert gaussian_kernel(2.5).shape == (17, 17)  # cut at 3 sigma
    disk = disk_kernel(2.0)
    assert disk.shape == (5, 5) and disk[2, 2] == disk.max() and disk[0, 0] == 0  # corners lie outside r = 2
    area = np.pi * 4.0**2
    assert abs((disk_kernel(4.0) > 0).sum() - area) < 2 * np.pi * 4.0 + 4  # covers the disk's area, edge pixels partly
    assert motion_kernel(9, 0).shape[0] == 1 and motion_kernel(9, 90).shape[1] == 1  # horizontal and vertical lines
    diagonal = motion_kernel(9, 45)
    assert diagonal[0, -1] > 0 and diagonal[-1, 0] > 0 and diagonal[0, 0] == 0  # 45 degrees: up and to the right
    for bad in (lambda: gaussian_kernel(0), lambda: disk_kernel(-1), lambda: motion_kernel(0, 10)):
        with pytest.raises(ValueError):
            bad()


def test_blur_image_keeps_a_flat_image_and_the_mean():
    flat = np.full((20, 24, 3), 0.4, np.float32)
    np.testing.assert_allclose(blur_image(flat, disk_kernel(3.0)), flat, atol=1e-6)
    rng = np.random.default_rng(0)
    image = rng.random((40, 40, 3)).astype(np.float32)
    out = blur_image(image, gaussian_kernel(1.5))
    assert abs(out.mean() - image.mean()) < 2e-3 and gradient_energy(out) < 0.2 * gradient_energy(image)


def test_same_seed_same_pair_other_seeds_differ(photos):
    a = make_source(f"blur:{photos}", 32, seed=5)
    b = make_source(f"blur:{photos}", 32, seed=5)
    for i in (0, 3, 11):
        x, y = a.example(i)
        x2, y2 = b.example(i)
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
        assert x.shape == y.shape == (32, 32, 3) and x.dtype == y.dtype == np.float32
    other = make_source(f"blur:{photos}", 32, seed=6)
    assert not np.array_equal(a.example(3)[0], other.example(3)[0])
    assert not np.array_equal(a.example(3)[0], a.example(4)[0])
    # the same crop with another draw of the kernel and noise: the Blur itself is seeded
    crop = a.example(0)[1]
    same = Blur()(crop, np.random.default_rng([1, 2])), Blur()(crop, np.random.default_rng([1, 2]))
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(same[0], Blur()(crop, np.random.default_rng([1, 3])))


@pytest.mark.parametrize("kind", KINDS)
def test_each_kernel_kind_makes_the_input_blurrier_than_the_target(kind, photos):
    source = BlurSource(photos, 48, seed=1, blur=Blur(kinds=(kind,)))
    for i in range(6):
        x, y = source.example(i)
        assert gradient_energy(x) < 0.8 * gradient_energy(y), (kind, i)
        assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.8  # still the same scene
        assert x.min() >= 0 and x.max() <= 1
        np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-3)  # on the 8-bit grid


def test_kind_and_parameters_come_from_the_seed():
    drawn = [Blur().kernel(np.random.default_rng([0, i])) for i in range(60)]
    assert {kind for kind, _, _ in drawn} == set(KINDS)
    for kind, params, kernel in drawn:
        assert abs(float(kernel.sum()) - 1) < 1e-6
        if kind == "gaussian":
            assert 0.5 <= params["sigma"] <= 2.5
        elif kind == "defocus":
            assert 1.0 <= params["radius"] <= 4.0
        else:
            assert 3.0 <= params["length"] <= 11.0 and 0.0 <= params["angle"] <= 180.0
    with pytest.raises(ValueError, match="subset of gaussian, defocus, motion"):
        Blur(kinds=("box",))


def test_motion_blur_smears_along_its_direction_only(photos):
    y = make_source(f"blur:{photos}", 48, seed=2, augment=False).example(1)[1]
    kept = {}
    for angle in (0, 90):
        motion = Blur(kinds=("motion",), motion_length=(9, 9), motion_angle=(angle, angle), shot_noise=(0, 0), read_noise=(0, 0))
        x = motion(y, np.random.default_rng(0))
        kept[angle] = [gradient_energy(x, axis) / gradient_energy(y, axis) for axis in (0, 1)]  # (across rows, columns)
    # horizontal motion (0 degrees) smears across columns, vertical (90) across rows
    assert kept[0][1] < 0.5 * kept[0][0] and kept[90][0] < 0.5 * kept[90][1]


def test_noise_follows_its_ranges():
    flat = np.full((64, 64, 3), 0.5, np.float32)
    tiny = {"kinds": ("gaussian",), "gaussian_sigma": (0.5, 0.5)}
    read = Blur(**tiny, shot_noise=(0, 0), read_noise=(0.02, 0.02))(flat, np.random.default_rng(0))
    assert abs(read.std() - 0.02) < 0.002 and abs(read.mean() - 0.5) < 0.002
    shot = Blur(**tiny, shot_noise=(0.04, 0.04), read_noise=(0, 0))(flat, np.random.default_rng(0))
    assert abs(shot.std() - 0.04 * np.sqrt(0.5)) < 0.003
    clean = Blur(**tiny, shot_noise=(0, 0), read_noise=(0, 0))(flat, np.random.default_rng(0))
    np.testing.assert_allclose(clean, np.round(0.5 * 255) / 255, atol=1e-6)


def test_held_out_photos_and_validation(photos):
    source = make_source(f"blur:{photos}", 32, seed=0, val_fraction=0.4)
    assert source.val_files and not set(source.val_files) & set(source.items)
    assert len(source.items) + len(source.val_files) == 5
    val = source.validation()
    assert len(val) == len(source.val_files) * source.val_crops
    again = make_source(f"blur:{photos}", 32, seed=0, val_fraction=0.4).validation()
    for (x, y), (x2, y2) in zip(val, again):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
        assert gradient_energy(x) < gradient_energy(y)


def test_spec_and_kind(photos):
    assert parse_data_spec(f"blur:{photos}") == ("blur", [str(photos)])
    assert data_kind(f"blur:{photos}") == DATA_KINDS["blur"] == "paired"
    with pytest.raises(DataError, match="expected blur:PATH"):
        parse_data_spec("blur:")


def test_train_help_lists_blur():
    from absl import flags

    from mobile_enhance.cli import train_cmd

    fv = flags.FlagValues()
    train_cmd.define_flags(fv)
    assert "blur:PHOTO_DIR" in fv["data"].help


@pytest.mark.parametrize("make", ["empty", "missing"])
def test_a_blur_source_over_an_empty_or_missing_folder_is_one_line_and_exit_2(make, tmp_path, capsys):
    folder = tmp_path / "EMPTY"
    if make == "empty":
        folder.mkdir()
        (folder / "notes.txt").write_text("not a photo")
    run_dir = tmp_path / "run"
    assert cli(["mobile-enhance", "train", "--model=nonbn_resg", f"--data=blur:{folder}", f"--run_dir={run_dir}", "--steps=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(folder) in err and ("no image files" if make == "empty" else "not a folder") in err
    assert not run_dir.exists()


def test_photos_all_smaller_than_the_patch_are_one_line_and_exit_2(tmp_path, capsys):
    folder = tmp_path / "small"
    sharp_photos(folder, count=2, size=(40, 50))
    source = BlurSource(folder, 64, val_fraction=0)
    with pytest.raises(DataError, match=r"blur source .*small: no file gives an example \(.*: 50x40 is smaller than the 64x64 patch"):
        source.dataset(2)
    run_dir = tmp_path / "run"
    args = ["mobile-enhance", "train", "--model=nonbn_resg", f"--data=blur:{folder}", f"--run_dir={run_dir}", "--steps=1", "--patch_size=64"]
    assert cli(args) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "smaller than the 64x64 patch" in errors[0] and str(folder) in errors[0]
    assert not run_dir.exists()
