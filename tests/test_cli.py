import json
import subprocess
import sys

from mobile_enhance.cli import main
from mobile_enhance.models import MODELS


def test_models_json(capsys):
    assert main(["mobile-enhance", "models", "--format=json", "--size=64x64"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(MODELS)
    dped = next(r for r in rows if r["name"] == "dped")
    assert dped["parameters"] == 401_475
    kernel = 9 * 9 * 3 * 64 + 8 * 9 * 64 * 64 + 2 * 9 * 64 * 64 + 9 * 9 * 64 * 3
    assert abs(dped["gmacs"] - 64 * 64 * kernel / 1e9) < 1e-12 and dped["gmacs_at"] == "64x64"
    rsgunet = next(r for r in rows if r["name"] == "rsgunet")
    assert rsgunet["counted_at"] == "64x64"
    for row in rows:
        assert {"name", "paper", "parameters", "gmacs", "size_multiple", "upscale", "trains_on", "discriminators"} <= set(row)
        assert row["upscale"] == MODELS[row["name"]].upscale and row["trains_on"] == list(MODELS[row["name"]].trains_on)
    assert dped["discriminators"] == [
        {"name": "texture", "builder": "dped_discriminator", "sees": "gray", "gan_loss": "dped_softmax", "judges": "output"}
    ]
    assert next(r for r in rows if r["name"] == "srcnn")["trains_on"] == ["paired", "sr"]


def test_models_table_pads_sizes_the_model_cannot_take(capsys):
    assert main(["mobile-enhance", "models", "--size=720x1280"]) == 0
    out = capsys.readouterr().out
    assert "GMACs @ 1280x720" in out
    assert "736x1280" in out  # RSGUNet's stride 32 needs padding
    assert "upscale" in out and "trains on" in out and "texture (gray, dped_softmax)" in out
    for name in MODELS:
        assert name in out


def test_unknown_command_is_one_line_and_exit_2(capsys):
    assert main(["mobile-enhance", "modles"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'modles'" in err and "models" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_flag_and_bad_size(capsys):
    assert main(["mobile-enhance", "models", "--sise=1x1"]) == 2
    assert main(["mobile-enhance", "models", "--size=12"]) == 2
    err = capsys.readouterr().err
    assert "sise" in err and "'12' is not HxW" in err


def test_console_script_and_module_run():
    result = subprocess.run(
        [sys.executable, "-m", "mobile_enhance", "models", "--size=32x32", "--format=json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == len(MODELS)
    assert result.stderr == ""
