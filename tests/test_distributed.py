"""Training beyond one device: MirroredStrategy over logical CPU devices and
MultiWorkerMirroredStrategy with two local worker processes on loopback. Each gives the
same weights as a single-device run with the same global batch."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dped_tree import make_dped_tree

WORKER = str(Path(__file__).with_name("dist_worker.py"))


def run(args, env=None, timeout=600):
    return subprocess.Popen([sys.executable, WORKER, *map(str, args)], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=600):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    root = make_dped_tree(tmp, train=8, test=2, size=48)
    finish(run(["default", root, tmp / "single", tmp / "single.npz"]))
    return tmp, root, np.load(tmp / "single.npz")


def weights(npz):
    return [npz[k] for k in sorted((k for k in npz.files if k.startswith("arr_")), key=lambda k: int(k[4:]))]


def assert_same(a, b):
    # The reduced losses of the last step (which a wrong per-replica scaling would
    # change) agree closely. Weights agree except where a gradient is near zero: there
    # Adam turns the rounding differences of another summation order into steps of
    # +-lr (5e-4) in either direction, so a few weights may differ by up to 2 lr a step.
    np.testing.assert_allclose(a["losses"], b["losses"], rtol=1e-3, atol=1e-6)
    diff = np.concatenate([np.abs(x - y).ravel() for x, y in zip(weights(a), weights(b))])
    assert (diff > 1e-4).mean() < 1e-3, f"{(diff > 1e-4).mean():.2%} of the weights differ"
    assert diff.max() <= 2 * 2 * 5e-4 + 1e-6  # at most two opposite Adam steps per step


def test_mirrored_on_two_logical_cpus_matches_single_device(setup):
    tmp, root, single = setup
    finish(run(["mirrored", root, tmp / "mirrored", tmp / "mirrored.npz", 2]))
    mirrored = np.load(tmp / "mirrored.npz")
    assert int(mirrored["replicas"]) == 2 and int(mirrored["step"]) == 2
    assert_same(single, mirrored)


def test_two_local_workers_match_single_device(setup):
    tmp, root, single = setup
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(run(["multiworker", root, tmp / "mw", tmp / f"mw{i}.npz"], env=env))
    for p in procs:
        finish(p)
    chief = np.load(tmp / "mw0.npz")
    assert int(chief["replicas"]) == 2
    assert_same(single, chief)
    assert_same(chief, np.load(tmp / "mw1.npz"))
    # only the chief's checkpoint is kept
    assert (tmp / "mw" / "checkpoints" / "ckpt-00000002").is_dir()
    assert not list((tmp / "mw").glob(".worker-tmp-*"))


def test_mirrored_task_with_two_critics_adaptive_weight_and_ema(tmp_path):
    # the DPE-like card: two generators, two WGAN-GP critics (one adaptive), cycle and
    # identity terms, an EMA generator; the penalty's random interpolates are drawn per
    # example of the global batch, so two replicas compute what one device does
    from dped_tree import make_photo_folder

    a = make_photo_folder(tmp_path / "a", count=3, size=(40, 48), seed=1)
    b = make_photo_folder(tmp_path / "b", count=3, size=(40, 48), seed=2)
    spec = f"unpaired:{a},{b}"
    finish(run(["default", spec, tmp_path / "one", tmp_path / "one.npz", 1, "dpe_like"]))
    finish(run(["mirrored", spec, tmp_path / "two", tmp_path / "two.npz", 2, "dpe_like"]))
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert int(two["replicas"]) == 2 and int(two["step"]) == 4
    assert_same(one, two)
    assert float(one["gp_average"]) > 0 and int(one["gp_cooldown"]) == int(two["gp_cooldown"])
    np.testing.assert_allclose(two["gp_average"], one["gp_average"], rtol=1e-4)
    np.testing.assert_allclose(two["gp_weight"], one["gp_weight"], rtol=1e-6)
    np.testing.assert_allclose(two["ema"], one["ema"], atol=2 * 5e-4)
