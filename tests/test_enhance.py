"""``mobile-enhance enhance``: tiled LiteRT inference on photo files, metadata, bad input.

Most checks use an exact identity model with a size multiple of 4 (a stride-4 conv that
moves each 4x4 block into channels and a stride-4 transposed conv that puts it back): its
output must equal its input pixel for pixel, so any error in orientation, tiling,
padding, cropping, channel handling or alpha shows as a wrong pixel.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from dped_tree import smooth_image
from PIL import Image, ImageCms, ImageOps

from mobile_enhance.cli import main
from mobile_enhance.compat import keras
from mobile_enhance.enhance import pipeline
from mobile_enhance.enhance.io import PhotoError, read_photo, reset_orientation
from mobile_enhance.enhance.pipeline import ModelError, TFLiteModel
from mobile_enhance.export import convert


def identity4():
    """``(N, H, W, 3) -> same``, exactly, for H and W multiples of 4."""
    inp = keras.Input((None, None, 3))
    down = keras.layers.Conv2D(48, 4, strides=4, use_bias=False, name="down")(inp)
    out = keras.layers.Conv2DTranspose(3, 4, strides=4, use_bias=False, name="up")(down)
    model = keras.Model(inp, out)
    kernel = np.zeros((4, 4, 3, 48), np.float32)
    for dy in range(4):
        for dx in range(4):
            for c in range(3):
                kernel[dy, dx, c, (dy * 4 + dx) * 3 + c] = 1
    model.get_layer("down").set_weights([kernel])
    model.get_layer("up").set_weights([kernel])
    return model


def small_conv():
    """Two 3x3 convs (receptive radius 2) and a sigmoid, seeded weights."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(3, 3, padding="same")(x)
    return keras.Model(inp, keras.layers.Activation("sigmoid")(x))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    ident = identity4()
    blobs = {
        "id4": convert(ident, "float32"),
        "id4_int8": convert(ident, "int8", representative=lambda: [rng.random((1, 64, 64, 3), np.float32) for _ in range(4)]),
        "id4_fixed": convert(ident, "float32", input_size=(32, 32)),
        "conv": convert(small_conv(), "float32"),
    }
    paths = {}
    for name, blob in blobs.items():
        paths[name] = root / f"{name}.tflite"
        paths[name].write_bytes(blob)
    return paths


def save(path, array, **params):
    Image.fromarray(array).save(path, **params)
    return path


def load(path):
    with Image.open(path) as im:
        return np.asarray(im)


def enhance(capsys, *args):
    rc = main(["mobile-enhance", "enhance", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def error_lines(err):
    return [ln for ln in err.splitlines() if ": error: " in ln]


def no_temp_files(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


# ----------------------------------------------------------------------------- pixels


def test_identity_model_reproduces_the_photo_through_tiles_and_padding(models, tmp_path, capsys):
    rng = np.random.default_rng(1)
    src = save(tmp_path / "a.png", (rng.random((45, 70, 3)) * 255).astype(np.uint8))  # not multiples of 4
    rc, out, err = enhance(capsys, src, "--output", tmp_path / "out", "--model", models["id4"], "--tile=32", "--overlap=8", "--format=png")
    assert rc == 0, err
    assert "size multiple 4 (from probe)" in err and "tiles 32x32, overlap 8" in err
    np.testing.assert_array_equal(load(tmp_path / "out" / "a.png"), load(src))
    assert "enhanced 1 photo" in out


def test_fixed_size_model_is_tiled_at_its_size(models, tmp_path, capsys):
    rng = np.random.default_rng(2)
    src = save(tmp_path / "b.png", (rng.random((50, 75, 3)) * 255).astype(np.uint8))
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "out", "--model", models["id4_fixed"], "--format=png")
    assert rc == 0, err
    assert "fixed 32x32; tiles 32x32, overlap 16" in err
    np.testing.assert_array_equal(load(tmp_path / "out" / "b.png"), load(src))
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "out", "--model", models["id4_fixed"], "--tile=64")
    assert rc == 2 and "fixed 32x32 input" in err and "leave --tile out" in err


def test_int8_model_runs_through_its_quantization(models, tmp_path, capsys):
    model = TFLiteModel(models["id4_int8"])
    assert model.quant == "int8" and model.input["dtype"] == np.uint8
    rng = np.random.default_rng(3)
    src = save(tmp_path / "c.png", (rng.random((40, 52, 3)) * 255).astype(np.uint8))
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "out", "--model", models["id4_int8"], "--format=png")
    assert rc == 0, err
    assert np.abs(load(tmp_path / "out" / "c.png").astype(int) - load(src)).max() <= 1


def test_overlapping_tiles_blend_without_seams(models, tmp_path, capsys):
    image = smooth_image(np.random.default_rng(4), (70, 90))
    src = save(tmp_path / "d.png", image)
    whole = TFLiteModel(models["conv"]).run(image[None].astype(np.float32) / 255)[0]
    whole = np.floor(np.clip(whole, 0, 1) * 255 + 0.5).astype(int)
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "blend", "--model", models["conv"], "--tile=32", "--overlap=12", "--format=png")
    assert rc == 0, err
    diff = np.abs(load(tmp_path / "blend" / "d.png").astype(int) - whole)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    # The same windows without overlap show their edges: the check above can fail.
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "abut", "--model", models["conv"], "--tile=32", "--overlap=0", "--format=png")
    assert rc == 0, err
    assert np.abs(load(tmp_path / "abut" / "d.png").astype(int) - whole).max() > 5


# ----------------------------------------------------------------------------- metadata and modes


def test_exif_orientation_applied_exif_and_icc_kept(models, tmp_path, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "TestCam"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = save(tmp_path / "rot.jpg", smooth_image(np.random.default_rng(5), (40, 60)), exif=exif.tobytes(), icc_profile=icc, quality=95)
    with Image.open(src) as im:
        shown = np.asarray(ImageOps.exif_transpose(im))
    assert shown.shape == (60, 40, 3)
    for fmt in ("png", "jpg"):
        rc, _, err = enhance(capsys, src, "--output", tmp_path / fmt, "--model", models["id4"], f"--format={fmt}")
        assert rc == 0, err
        with Image.open(tmp_path / fmt / f"rot.{fmt}") as out:
            assert out.size == (40, 60)
            assert out.getexif()[0x0112] == 1 and out.getexif()[0x010F] == "TestCam"
            assert out.info.get("icc_profile") == icc
            pixels = np.asarray(out).astype(int)
        if fmt == "png":
            np.testing.assert_array_equal(pixels, shown)
        else:
            assert np.abs(pixels - shown).mean() < 2


def test_reset_orientation_patches_only_the_tag():
    exif = Image.Exif()
    exif[0x010F] = "Cam"
    exif[0x0112] = 8
    block = exif.tobytes()
    patched = reset_orientation(block)
    loaded = Image.Exif()
    loaded.load(patched)
    assert loaded[0x0112] == 1 and loaded[0x010F] == "Cam"
    assert len(patched) == len(block) and sum(a != b for a, b in zip(patched, block)) == 1
    # Big-endian block, no "Exif" prefix: one IFD entry, orientation 3.
    big = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 3, 0) + struct.pack(">I", 0)
    assert reset_orientation(big) == b"Exif\x00\x00" + big[:18] + struct.pack(">H", 1) + big[20:]
    with pytest.raises(ValueError):
        reset_orientation(b"Exif\x00\x00not tiff")


def test_grayscale_and_cmyk_inputs(models, tmp_path, capsys):
    gray = smooth_image(np.random.default_rng(6), (30, 44))[..., 0]
    save(tmp_path / "gray.png", gray)
    rgb = smooth_image(np.random.default_rng(7), (30, 44))
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert read_photo(tmp_path / "cmyk.jpg").mode == "CMYK"
    rc, _, err = enhance(capsys, tmp_path / "gray.png", tmp_path / "cmyk.jpg", "--output", tmp_path / "out", "--model", models["id4"], "--format=png")
    assert rc == 0, err
    out = load(tmp_path / "out" / "gray.png")
    assert out.shape == (30, 44, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)
    with Image.open(tmp_path / "cmyk.jpg") as im:
        expected = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(load(tmp_path / "out" / "cmyk.png"), expected)


def test_alpha_kept_for_png_composited_for_jpeg(models, tmp_path, capsys):
    rng = np.random.default_rng(8)
    rgba = np.dstack([smooth_image(rng, (36, 48)), np.zeros((36, 48), np.uint8)])  # smooth: JPEG keeps it close
    rgba[..., 3] = np.linspace(0, 255, 48).astype(np.uint8)[None, :]
    src = save(tmp_path / "t.png", rgba)
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "png", "--model", models["id4"], "--format=png")
    assert rc == 0, err
    with Image.open(tmp_path / "png" / "t.png") as out:
        assert out.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(out), rgba)
    a = rgba[..., 3:4] / 255.0
    over_white = rgba[..., :3] * a + 255 * (1 - a)
    assert np.abs(read_photo(src).rgb * 255 - over_white).max() <= 1.0
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "jpg", "--model", models["id4"], "--format=jpg")
    assert rc == 0, err
    with Image.open(tmp_path / "jpg" / "t.jpg") as out:
        assert out.mode == "RGB"
        assert np.abs(np.asarray(out).astype(float) - over_white).mean() < 2


def png16_rgb(path, array):
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    h, w, _ = array.shape
    raw = b"".join(b"\x00" + array[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    head = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def tiff16_rgb(path, array):
    """A 16-bit RGB baseline TIFF, uncompressed, one strip (Pillow cannot write one)."""
    h, w, _ = array.shape
    data = array.astype("<u2").tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, None), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, None),
               (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    bps_at = 8 + 2 + 12 * len(entries) + 4
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag in (258, 273):
            out += struct.pack("<HHII", tag, kind, count, bps_at if tag == 258 else bps_at + 6)
        elif kind == 3:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    path.write_bytes(out + struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16) + data)
    return path


def test_sixteen_bit_png_and_tiff(models, tmp_path, capsys):
    rng = np.random.default_rng(9)
    gray16 = rng.integers(0, 65536, (28, 36)).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    Image.fromarray(gray16).save(tmp_path / "g16.tif")
    rgb16 = rng.integers(0, 65536, (28, 36, 3)).astype(np.uint16)
    png16_rgb(tmp_path / "c16.png", rgb16)
    tiff16_rgb(tmp_path / "c16.tif", rgb16)
    photo = read_photo(tmp_path / "g16.png")
    assert photo.mode == "I;16"
    np.testing.assert_allclose(photo.rgb[..., 1], gray16 / 65535.0, atol=1e-6)  # 16-bit precision kept on input
    names = ["g16.png", "g16.tif", "c16.png", "c16.tif"]
    rc, _, err = enhance(capsys, *(tmp_path / n for n in names), "--output", tmp_path / "out", "--model", models["id4"], "--format=same")
    assert rc == 0, err
    expected_gray = np.floor(gray16 / 65535.0 * 255 + 0.5)
    for name in ("g16.png", "g16.tif"):
        out = load(tmp_path / "out" / name)
        assert out.dtype == np.uint8 and out.shape == (28, 36, 3)
        assert np.abs(out[..., 0] - expected_gray).max() <= 1 and (out[..., 0] == expected_gray).mean() > 0.99
    for name in ("c16.png", "c16.tif"):  # Pillow decodes 16-bit RGB to its high bytes
        np.testing.assert_array_equal(load(tmp_path / "out" / name), (rgb16 >> 8).astype(np.uint8))


def test_format_same_keeps_each_format(models, tmp_path, capsys):
    image = smooth_image(np.random.default_rng(10), (24, 32))
    for name in ("p.tif", "q.bmp", "r.webp", "s.jpeg"):
        save(tmp_path / name, image)
    rc, _, err = enhance(capsys, tmp_path, "--output", tmp_path / "out", "--model", models["id4"], "--format=same")
    assert rc == 0, err
    formats = {}
    for p in (tmp_path / "out").iterdir():
        with Image.open(p) as im:
            formats[p.name] = im.format
    assert formats == {"p.tif": "TIFF", "q.bmp": "BMP", "r.webp": "WEBP", "s.jpeg": "JPEG"}


def test_folder_progress_and_output_names(models, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, suffix in enumerate((".jpg", ".png", ".JPG")):
        save(folder / f"img{i}{suffix}", smooth_image(np.random.default_rng(i), (20, 28)))
    (folder / "notes.txt").write_text("not a photo")
    rc, out, err = enhance(capsys, folder, "--output", tmp_path / "out", "--model", models["id4"])
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.jpg", "img1.jpg", "img2.jpg"]
    assert [ln.split("]")[0] for ln in err.splitlines() if ln.startswith("enhance [")] == ["enhance [1/3", "enhance [2/3", "enhance [3/3"]
    assert "enhanced 3 photos" in out
    rc, _, err = enhance(capsys, folder, "--output", tmp_path / "quiet", "--model", models["id4"], "--quiet")
    # quiet leaves only the line saying the file has no sidecar
    assert rc == 0 and err.splitlines() == [f"mobile-enhance enhance: warning: {models['id4']}: no sidecar id4.json; size multiple 4 "
                                            "and upscale 1 probed, mode float32 from its tensor types"]


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_each_named_others_processed(models, tmp_path, capsys, monkeypatch):
    good = save(tmp_path / "good.png", smooth_image(np.random.default_rng(11), (40, 50)))
    save(tmp_path / "whole.jpg", smooth_image(np.random.default_rng(12), (40, 50)), quality=95)
    jpeg = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("this is not an image\n")
    save(tmp_path / "bomb.png", np.zeros((100, 100, 3), np.uint8))  # 10,000 px > 2 x limit: refused by Pillow
    save(tmp_path / "bomb2.png", np.zeros((70, 70, 3), np.uint8))  # 4,900 px > limit: Pillow only warns
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)
    bad = ["missing.jpg", "empty.jpg", "truncated.jpg", "text.jpg", "bomb.png", "bomb2.png"]
    rc, out, err = enhance(capsys, good, *(tmp_path / b for b in bad), "--output", tmp_path / "out", "--model", models["id4"], "--quiet")
    assert rc == 1
    lines = error_lines(err)
    assert len(lines) == len(bad)
    for name, line in zip(bad, lines):
        assert str(tmp_path / name) in line, line
    assert "no such file" in lines[0] and "empty file" in lines[1] and "truncated" in lines[2]
    assert "cannot be read as an image" in lines[3]
    assert "10000 pixels" in lines[4] and "decompression bomb" in lines[4]
    assert "4900 pixels" in lines[5] and "decompression bomb" in lines[5]
    assert "6 of 7 inputs failed" in err and "enhanced 1 photo" in out
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.jpg"]


def test_empty_folder_and_no_inputs(models, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, _, err = enhance(capsys, tmp_path / "empty", "--output", tmp_path / "out", "--model", models["id4"])
    assert rc == 1 and "folder holds no image files" in err and str(tmp_path / "empty") in err
    rc, _, err = enhance(capsys, "--output", tmp_path / "out", "--model", models["id4"])
    assert rc == 2 and "give one or more photos" in err


def test_unwritable_output_folder(models, tmp_path, capsys):
    src = save(tmp_path / "a.png", smooth_image(np.random.default_rng(13), (16, 16)))
    (tmp_path / "file").write_text("x")
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "file", "--model", models["id4"])
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert str(tmp_path / "file") in err and "cannot create the output folder" in err
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "file" / "sub", "--model", models["id4"])
    assert rc == 2 and "cannot create the output folder" in err


def test_output_file_in_the_way_fails_alone(models, tmp_path, capsys):
    a = save(tmp_path / "a.png", smooth_image(np.random.default_rng(14), (16, 16)))
    b = save(tmp_path / "b.png", smooth_image(np.random.default_rng(15), (16, 16)))
    out = tmp_path / "out"
    (out / "a.jpg").mkdir(parents=True)
    rc, _, err = enhance(capsys, a, b, "--output", out, "--model", models["id4"], "--quiet")
    assert rc == 1
    assert error_lines(err) == [f"mobile-enhance enhance: error: {out / 'a.jpg'}: cannot write the output, a folder of that name is in the way"]
    assert (out / "b.jpg").is_file() and (out / "a.jpg").is_dir() and no_temp_files(out)


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(models, tmp_path, capsys, monkeypatch):
    src = save(tmp_path / "a.png", smooth_image(np.random.default_rng(16), (16, 16)))
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"previous result")

    def disk_full(self, fp, *args, **kwargs):
        fp.write(b"\xff\xd8 half a jpeg")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    rc, _, err = enhance(capsys, src, "--output", out, "--model", models["id4"])
    assert rc == 1
    assert f"{out / 'a.jpg'}: cannot write the output (No space left on device)" in err
    assert (out / "a.jpg").read_bytes() == b"previous result" and no_temp_files(out)


def test_outputs_never_overwrite_inputs_or_each_other(models, tmp_path, capsys):
    image = smooth_image(np.random.default_rng(17), (16, 16))
    save(tmp_path / "x.png", image)
    save(tmp_path / "x.jpg", image)
    before = (tmp_path / "x.png").read_bytes()
    rc, _, err = enhance(capsys, tmp_path / "x.jpg", tmp_path / "x.png", "--output", tmp_path / "out", "--model", models["id4"], "--quiet")
    assert rc == 1 and "is also the output of" in err and str(tmp_path / "x.jpg") in err
    rc, _, err = enhance(capsys, tmp_path / "x.png", "--output", tmp_path, "--model", models["id4"], "--format=same")
    assert rc == 1 and "would overwrite the photo itself" in err
    assert (tmp_path / "x.png").read_bytes() == before


# ----------------------------------------------------------------------------- models


def test_default_model_lookup(models, tmp_path, capsys, monkeypatch):
    shelf = tmp_path / "tflite_models"
    shelf.mkdir()
    monkeypatch.setattr(pipeline, "MODELS_DIR", shelf)
    src = save(tmp_path / "a.png", smooth_image(np.random.default_rng(18), (16, 16)))
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "out")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "default_int8.tflite" in err and "default.tflite" in err and "mobile-enhance export" in err
    shutil.copy(models["id4_int8"], shelf / "default_int8.tflite")
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "out")
    assert rc == 0 and f"model: {shelf / 'default_int8.tflite'} (int8" in err
    shutil.copy(models["id4"], shelf / "default.tflite")  # float32 is preferred when both ship
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "out")
    assert rc == 0 and f"model: {shelf / 'default.tflite'} (float32" in err


def test_sidecar_read_and_checked(models, tmp_path):
    from mobile_enhance.runtime import SidecarError, sidecar_for, write_sidecar

    path = tmp_path / "m.tflite"
    shutil.copy(models["id4_int8"], path)
    model = TFLiteModel(path)  # no sidecar: the contract from the file, one warning line
    assert model.multiple_from == "probe" and model.contract.warning.startswith(f"{path}: no sidecar m.json;")
    side = sidecar_for(path, size_multiple=8)
    write_sidecar(path, side)
    model = TFLiteModel(path)
    assert model.multiple == (8, 8) and model.multiple_from == "sidecar" and model.quant == "int8"
    assert model.contract.warning is None and model.upscale == 1
    write_sidecar(path, {**side, "quantization": {"mode": "qat_int8"}})
    assert TFLiteModel(path).quant == "qat_int8"
    scale = side["input"]["quantization"]["scale"]
    bad = [
        ({"dynamic_size": False}, "dynamic_size is false but input.shape"),
        ({"input": {**side["input"], "dtype": "float32", "quantization": None}}, "input.dtype is \"float32\" but the file has \"uint8\""),
        ({"input": {**side["input"], "quantization": {"scale": scale * 2, "zero_point": 0}}}, "input.quantization is"),
        ({"file": {**side["file"], "sha256": "0" * 64}}, "file.sha256 differs from the file's"),
        ({"upscale": 0}, "upscale must be >= 1"),
        ({"format": "mobile_enhance.tflite_sidecar/1"}, "from an earlier mobile_enhance.*re-export the model: mobile-enhance export"),
        ({"format": "something/9"}, "format must be 'mobile_enhance.tflite_sidecar/2'"),
        ({"size_multiple": None}, "size_multiple must be an integer"),
    ]
    for change, words in bad:
        path.with_suffix(".json").write_text(json.dumps({**side, **change}))
        with pytest.raises(SidecarError, match=words) as info:
            TFLiteModel(path)
        assert str(info.value).startswith(f"{path.with_suffix('.json')}: "), info.value
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(ModelError, match="not readable JSON"):
        TFLiteModel(path)
    # a fixed-size file: the upscale must agree with its shapes
    shutil.copy(models["id4_fixed"], path)
    side = sidecar_for(path, size_multiple=4)
    path.with_suffix(".json").write_text(json.dumps({**side, "upscale": 2}))
    with pytest.raises(SidecarError, match=r"output.shape must be input.shape x upscale 2 = \[1, 64, 64, 3\]"):
        TFLiteModel(path)


def test_export_figures_below_the_input_are_warned_about(models, tmp_path, capsys):
    path = tmp_path / "m.tflite"
    shutil.copy(models["id4_fixed"], path)
    from mobile_enhance.runtime import sidecar_for, write_sidecar

    side = sidecar_for(path, size_multiple=4)
    fidelity = {"size": [720, 1280], "tflite_vs_target": {"psnr": 14.0}, "input_vs_target": {"psnr": 25.34}}
    write_sidecar(path, {**side, "fidelity": fidelity})
    assert TFLiteModel(path).quality_warning().startswith("warning: m.tflite's export measured its output 11.34 dB below")
    src = save(tmp_path / "a.png", np.zeros((40, 40, 3), np.uint8) + 100)
    rc, _, err = enhance(capsys, src, "--output", tmp_path / "out", "--model", path, "--quiet")
    assert rc == 0 and "11.34 dB below the unprocessed input against held-out targets at 720x1280 (m.json)" in err
    fidelity["tflite_vs_target"]["psnr"] = 26.0  # above its input: nothing to say
    write_sidecar(path, {**side, "fidelity": fidelity})
    assert TFLiteModel(path).quality_warning() is None
    write_sidecar(path, {**side, "fidelity": {"tflite_vs_float": {"psnr": 40.0}}})
    assert TFLiteModel(path).quality_warning() is None


def test_bad_model_and_tile_arguments(models, tmp_path, capsys):
    src = save(tmp_path / "a.png", smooth_image(np.random.default_rng(19), (16, 16)))
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer" * 10)
    cases = [
        (["--model", tmp_path / "junk.tflite"], "not a TFLite model LiteRT can load"),
        (["--model", tmp_path / "absent.tflite"], "no such model file"),
        (["--model", models["id4"], "--tile=30"], "use 28 or 32"),
        (["--model", models["id4"], "--tile=32", "--overlap=32"], "overlap 32 must be smaller than the tile"),
        (["--model", models["id4"], "--quality=0"], "--quality must be in 1..100"),
    ]
    for extra, words in cases:
        rc, _, err = enhance(capsys, src, "--output", tmp_path / "out", *extra)
        assert rc == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out" / "a.jpg").exists()


def test_read_photo_errors_name_the_file(tmp_path):
    with pytest.raises(PhotoError, match=f"{tmp_path}: is a folder"):
        read_photo(tmp_path)


# ----------------------------------------------------------------------------- memory

PEAK_SCRIPT = """
import sys
from mobile_enhance.cli import main
rc = main(["mobile-enhance", "enhance", *sys.argv[1:]])
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print("PEAK_KB", peak, "TF", "tensorflow" in sys.modules)
sys.exit(rc)
"""


def peak_rss_mb(photo, output, model, *extra):
    result = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(photo), "--output", str(output), "--model", str(model), "--quiet", *extra],
        capture_output=True, text=True, timeout=600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("PEAK_KB"))
    _, kb, _, tf_loaded = line.split()
    return int(kb) / 1024, tf_loaded == "True"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc/self/status (VmHWM)")
def test_twelve_megapixel_photo_in_bounded_memory(models, tmp_path):
    photo = save(tmp_path / "12mp.jpg", smooth_image(np.random.default_rng(20), (3000, 4000)), quality=90)
    peak, tf_loaded = peak_rss_mb(photo, tmp_path / "out", models["id4_int8"])
    assert not tf_loaded  # TensorFlow alone would cost ~550 MB
    assert peak < 600, f"peak RSS {peak:.0f} MB"
    with Image.open(tmp_path / "out" / "12mp.jpg") as out:
        assert out.size == (4000, 3000)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc/self/status (VmHWM)")
def test_twelve_megapixel_photo_with_int8_fast_dped(tmp_path):
    from mobile_enhance.models import build_model

    rng = np.random.default_rng(21)
    model = tmp_path / "fast_dped_int8.tflite"
    model.write_bytes(convert(build_model("fast_dped"), "int8", representative=lambda: [rng.random((1, 128, 128, 3), np.float32) for _ in range(4)]))
    photo = save(tmp_path / "12mp.jpg", smooth_image(rng, (3000, 4000)), quality=90)
    peak, _ = peak_rss_mb(photo, tmp_path / "out", model)
    assert peak < 600, f"peak RSS {peak:.0f} MB"


def test_an_upscaling_model_writes_photos_upscale_times_larger(tmp_path, capsys):
    from mobile_enhance.runtime import sidecar_for, write_sidecar

    inp = keras.Input((None, None, 3))
    path = tmp_path / "x4.tflite"
    path.write_bytes(convert(keras.Model(inp, keras.layers.UpSampling2D(4)(inp)), "float32"))  # nearest x4
    model = TFLiteModel(path, tile=16)  # no sidecar: size multiple and upscale probed
    assert (model.upscale, model.multiple, model.multiple_from) == (4, (1, 1), "probe")
    image = np.random.default_rng(3).random((37, 53, 3), dtype=np.float32)
    nearest = np.repeat(np.repeat(image, 4, axis=0), 4, axis=1)
    np.testing.assert_allclose(model.enhance(image), nearest, atol=1e-6)  # 12 overlapping windows, in input pixels
    # through the command, with a sidecar: 4x the pixels, alpha resized, EXIF size fields updated
    write_sidecar(path, sidecar_for(path, upscale=4))
    exif = Image.Exif()
    exif[0x0110] = "test camera"
    exif.get_ifd(0x8769)[0xA002] = 53
    exif.get_ifd(0x8769)[0xA003] = 37
    rgb = np.round(image * 255).astype(np.uint8)
    src = save(tmp_path / "a.jpg", rgb, exif=exif.tobytes(), quality=95)
    alpha = np.zeros((37, 53), np.uint8)
    alpha[:, 20:] = 255
    png = save(tmp_path / "b.png", np.dstack([rgb, alpha]))
    rc, _, err = enhance(capsys, src, png, "--output", tmp_path / "out", "--model", path, "--format=png", "--quiet")
    assert rc == 0, err
    with Image.open(tmp_path / "out" / "a.png") as out:
        assert out.size == (212, 148)
        sizes = out.getexif().get_ifd(0x8769)
        assert (sizes[0xA002], sizes[0xA003]) == (212, 148) and out.getexif()[0x0110] == "test camera"
    with Image.open(tmp_path / "out" / "b.png") as out:
        assert out.size == (212, 148) and out.mode == "RGBA"
        a = np.asarray(out)[..., 3]
        assert a[:, :78].max() == 0 and a[:, 82:].min() == 255  # the edge at 4 x 20 = 80
