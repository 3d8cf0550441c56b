"""The training loop: checkpoints, resume, the NaN guard, validation, summaries, progress.

The nets and the step are the task's (:mod:`mobile_enhance.training.task`).

A run folder holds everything needed to reproduce or continue a run::

    RUN_DIR/config.json          resolved configuration
    RUN_DIR/checkpoints/ckpt-00001000/   one tf.train.Checkpoint per folder
    RUN_DIR/checkpoints/latest   name of the newest complete checkpoint
    RUN_DIR/logs/                TensorBoard scalars and sample images
    RUN_DIR/metrics.jsonl        validation PSNR / SSIM / MS-SSIM, one line per pass
    RUN_DIR/generator.weights.h5 final generator weights, the EMA copy where kept (at exit)

Checkpoints are written into a temporary folder and renamed into place, and ``latest``
is replaced atomically afterwards, so an interrupted write never replaces a good
checkpoint. ``resume`` restores models, optimizer state and the step; the data stream is
a pure function of the example index (see :mod:`mobile_enhance.data.sources`), so a
resumed run sees the same batches as an uninterrupted one and ends with the same weights.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from mobile_enhance.compat import keras, tf
from mobile_enhance.errors import UserError
from mobile_enhance.fileio import atomic_path, atomic_write_text, read_json
from mobile_enhance.metrics import image_metrics  # noqa: F401 - also the name evaluate code imports
from mobile_enhance.training.config import TrainConfig, validate

log = logging.getLogger("mobile_enhance.training")


class CheckpointError(UserError):
    pass


class DivergedError(UserError):
    pass


def atomic_save_weights(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save_weights(str(tmp.with_suffix(".weights.h5")))
        os.replace(tmp.with_suffix(".weights.h5"), tmp)


# -- distribution ----------------------------------------------------------------------


def make_strategy(kind: str):
    """The tf.distribute strategy for ``kind``.

    ``mirrored`` uses every local GPU, or, on a machine without one, every logical CPU
    device (so it can be tested on CPU by splitting the CPU into logical devices).
    """
    if kind == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    if kind == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise UserError("distribute=multiworker needs the TF_CONFIG environment variable describing the cluster")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in ("chief", None) or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


# -- progress --------------------------------------------------------------------------


class Progress:
    """A one-line progress bar with rate and ETA on stderr (plain lines when not a tty)."""

    def __init__(self, total: int, start: int, enabled: bool = True):
        self.total, self.start, self.enabled = total, start, enabled
        self.t0 = time.monotonic()
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def update(self, step: int, loss: float, force: bool = False):
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < (0.5 if self.tty else 10.0):
            return
        self.last = now
        done = step - self.start
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        width = 24
        filled = int(width * step / self.total)
        bar = "#" * filled + "." * (width - filled)
        eta_text = "--" if not math.isfinite(eta) else time.strftime("%H:%M:%S", time.gmtime(eta))
        line = f"step {step}/{self.total} [{bar}] loss {loss:.4g}  {rate:.2f} steps/s  ETA {eta_text}"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self):
        if self.enabled and self.tty:
            print(file=sys.stderr)


# -- the trainer -----------------------------------------------------------------------


class Trainer:
    """The loop: runs a :class:`mobile_enhance.training.task.Task` in ``run_dir``.

    It owns the run folder, checkpoints and resume, the NaN guard, summaries, validation,
    progress and the tf.distribute strategy; the task owns the nets and the step.
    Everything the config names is checked and built before the run folder is made, so
    bad input leaves nothing behind.
    """

    def __init__(self, config: TrainConfig, run_dir, resume: bool = False, progress: bool = True, source=None, card=None):
        from mobile_enhance.data import make_source
        from mobile_enhance.models import get_card
        from mobile_enhance.training.task import Task

        self.card = card or get_card(config.model)
        validate(config, self.card)
        self.config = config
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.progress_enabled = progress
        legacy = self._check_run_dir(resume)
        self.strategy = make_strategy(config.distribute)
        self.chief = _is_chief(self.strategy)
        self.global_batch = config.data.batch_size
        if self.global_batch % self.strategy.num_replicas_in_sync:
            raise UserError(f"batch size {self.global_batch} does not split over {self.strategy.num_replicas_in_sync} replicas")

        self.source = source or make_source(
            config.data.spec, config.data.patch_size, config.data.seed, config.data.phone, config.data.augment,
            config.data.val_fraction, upscale=self.card.upscale,
        )
        self.source.example(0)  # a source that gives no example fails now, before the run folder exists
        self.validation = self.source.validation()[: config.val_max]
        self.task = Task(self.card, config, self.global_batch)

        keras.utils.set_random_seed(config.seed)
        with self.strategy.scope():
            self.task.build()
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(step=self.step, **self.task.checkpoint_parts())
        if resume:
            self.restore_latest(legacy)
        elif config.init_from:
            self.init_generator(config.init_from)
            self.task.copy_to_ema()
        self.run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def generator(self):
        return self.task.generator

    @property
    def g_opt(self):
        return self.task.g_opt

    # -- run folder --------------------------------------------------------------------

    def _check_run_dir(self, resume: bool) -> bool:
        """Refuse a run folder that does not fit ``resume``; True when its latest checkpoint is
        from before model cards (its one discriminator saved under the old names)."""
        config_path = self.run_dir / "config.json"
        has_ckpt = (self.ckpt_dir / "latest").exists()
        legacy = False
        if resume:
            if not has_ckpt:
                raise CheckpointError(f"{self.run_dir}: no checkpoint to resume from (no {self.ckpt_dir / 'latest'})")
            legacy = _legacy_checkpoint(latest_checkpoint(self.ckpt_dir))
            if config_path.exists():
                data = read_json(config_path, f"run config {config_path}")
                saved = TrainConfig.from_json(data)
                saved.steps = self.config.steps
                if saved.to_json() != self.config.to_json():
                    raise UserError(
                        f"{config_path}: --resume with a different configuration; resume with the run's own config "
                        "(only steps may change) or start a new run_dir"
                    )
        elif has_ckpt:
            raise UserError(f"{self.run_dir} already holds a run; pass --resume to continue it or choose another --run_dir")
        return legacy

    def write_config(self):
        if self.chief:
            atomic_write_text(self.run_dir / "config.json", json.dumps(self.config.to_json(), indent=2) + "\n")

    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint(self.ckpt_dir)

    def restore_latest(self, legacy: bool = False):
        """Restore every net, optimizer and state variable from the latest checkpoint.

        ``legacy`` reads a run from before model cards (its one discriminator saved as
        ``discriminator``); the checkpoints written from then on use today's names.
        """
        path = self.latest_checkpoint()
        prefix = path / "ckpt"
        reader = tf.train.Checkpoint(step=self.step, **self.task.checkpoint_parts(legacy=True)) if legacy else self.checkpoint
        try:
            reader.read(str(prefix)).assert_existing_objects_matched()
        except Exception as error:  # noqa: BLE001 - any failure to read means a bad checkpoint
            raise CheckpointError(
                f"{path}: checkpoint cannot be restored ({_first_line(error)}); it is corrupt or from another model or layout "
                f"(to keep its generator, start a new run from it: --init_from={self.run_dir})"
            ) from None
        log.info("resumed from %s at step %d", path, int(self.step.numpy()))

    def init_generator(self, init_from):
        """Fine-tuning start: the generator's weights from a run folder or a weights file."""
        path = Path(init_from)
        if path.is_dir():
            other = _run_config(path)
            if (other.model, _architecture(other.model_kwargs)) != (self.config.model, _architecture(self.config.model_kwargs)):
                raise UserError(
                    f"{path}: --init_from holds a {other.model} {other.model_kwargs or ''}, "
                    f"not the {self.config.model} {self.config.model_kwargs or ''} being trained"
                )
            _read_generator(path, self.generator, "generator_ema" if other.ema_decay > 0 else "generator")
            if self.task.inverse is not None and _has_inverse(path):
                _read_generator(path, self.task.inverse, "inverse")
        elif path.is_file():
            try:
                self.generator.load_weights(str(path))
            except Exception as error:  # noqa: BLE001 - any failure to read means a bad file
                raise CheckpointError(f"{path}: cannot initialise {self.config.model} from it ({_first_line(error)})") from None
        else:
            raise UserError(f"{path}: --init_from is neither a run folder nor a weights file")
        log.info("generator initialised from %s", path)

    def save_checkpoint(self) -> Path:
        """Write a checkpoint into a temporary folder, rename it into place, then point ``latest`` at it."""
        step = int(self.step.numpy())
        name = f"ckpt-{step:08d}"
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        if not self.chief:  # every worker must write; only the chief's copy is kept
            tmp = self.run_dir / f".worker-tmp-{os.getpid()}"
            self.checkpoint.write(str(tmp / "ckpt"))
            shutil.rmtree(tmp, ignore_errors=True)
            return self.ckpt_dir / name
        with atomic_path(self.ckpt_dir / name, is_dir=True) as tmp:
            self.checkpoint.write(str(tmp / "ckpt"))
        atomic_write_text(self.ckpt_dir / "latest", name + "\n")
        final = self.ckpt_dir / name
        kept = sorted(p for p in self.ckpt_dir.glob("ckpt-*") if p.is_dir())
        for old in kept[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    # -- the step ----------------------------------------------------------------------

    def _build_step(self, train_generator: bool = True):
        """One training step as a tf.function: ``batches_per_step`` batches, the task's
        replica step on every replica, the reduced losses, the task's cross-replica update."""
        task = self.task
        strategy = self.strategy

        @tf.function
        def step_fn(iterator):
            batches = tuple(next(iterator) for _ in range(task.batches_per_step))
            losses, penalties = strategy.run(task.replica_step, args=(batches, self.step), kwargs={"train_generator": train_generator})
            # per-replica values are shares of the global batch average: their sum is it
            sums = lambda d: {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in d.items()}  # noqa: E731
            task.after_step(sums(penalties), train_generator)
            self.step.assign_add(1)
            return sums(losses)

        return step_fn

    def weights_finite(self) -> bool:
        return all(bool(tf.reduce_all(tf.math.is_finite(v))) for m in self.task.networks() for v in m.variables)

    def _guard_weights(self, step):
        """The NaN guard's second half: a finite loss can still come with an update to inf."""
        if not self.weights_finite():
            raise DivergedError(
                f"training diverged at step {step}: weights are no longer finite; no checkpoint written for it; "
                f"last good checkpoint: {self.latest_checkpoint() or 'none'} (lower the learning rate and --resume)"
            )

    # -- validation --------------------------------------------------------------------

    def evaluate(self) -> dict:
        if not self.validation:
            return {}
        x = np.stack([a for a, _ in self.validation])
        y = np.stack([b for _, b in self.validation])
        generator = self.task.eval_generator
        enhanced = np.concatenate([generator(x[i : i + 16], training=False).numpy() for i in range(0, len(x), 16)])
        metrics = image_metrics(enhanced, y)
        identity = image_metrics(_to_size(x, y.shape[1:3]), y)
        return {**metrics, **{f"identity_{k}": v for k, v in identity.items()}, "val_pairs": len(x)}

    # -- the loop ----------------------------------------------------------------------

    def train(self) -> dict:
        """Run until ``config.steps``; returns the last metrics and timings."""
        c = self.config
        self.write_config()
        start = int(self.step.numpy())
        per_step = self.global_batch * self.task.batches_per_step
        dataset = self.source.dataset(self.global_batch, start_example=start * per_step)
        iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        step_fn = self._build_step()
        warmup = c.gan.disc_warmup if self.task.disc_specs else 0
        warm_fn = self._build_step(train_generator=False) if start < warmup else None
        writer = tf.summary.create_file_writer(str(self.run_dir / "logs")) if self.chief else tf.summary.create_noop_writer()
        progress = Progress(c.steps, start, self.progress_enabled and self.chief)
        metrics, last_losses = {}, {}
        t0 = time.monotonic()
        step_times = []
        step = start
        try:
            while step < c.steps:
                losses = {k: float(v) for k, v in (warm_fn if step < warmup else step_fn)(iterator).items()}
                step = int(self.step.numpy())
                step_times.append(time.monotonic())
                if not all(math.isfinite(v) for v in losses.values()):
                    last = self.latest_checkpoint()
                    raise DivergedError(
                        f"training diverged at step {step}: non-finite loss {losses}; no checkpoint written for it; "
                        f"last good checkpoint: {last or 'none'} (lower the learning rate and --resume)"
                    )
                last_losses = losses
                progress.update(step, losses.get("loss", sum(losses.values())))
                if step % c.summary_every == 0:
                    with writer.as_default(step=step):
                        for k, v in losses.items():
                            tf.summary.scalar(f"train/{k}", v)
                if step % c.eval_every == 0 or step == c.steps:
                    metrics = self._log_eval(step, writer)
                if step % c.checkpoint_every == 0:
                    self._guard_weights(step)
                    self.save_checkpoint()
        except KeyboardInterrupt:
            log.warning("interrupted at step %d; writing a checkpoint", step)
            raise
        finally:
            progress.close()
            if step > start and last_losses and self.weights_finite():
                if self.latest_checkpoint() is None or self.latest_checkpoint().name != f"ckpt-{step:08d}":
                    self.save_checkpoint()
                if self.chief:
                    atomic_save_weights(self.task.eval_generator, self.run_dir / "generator.weights.h5")
            writer.flush()
        seconds = time.monotonic() - t0
        # steady rate: from the end of the first step (graph tracing) to the last
        per_step = self.global_batch * self.task.batches_per_step
        steady = (len(step_times) - 1) * per_step / (step_times[-1] - step_times[0]) if len(step_times) > 1 else None
        return {
            "step": step,
            "seconds": seconds,
            "patches_per_s": (step - start) * self.global_batch * self.task.batches_per_step / max(seconds, 1e-9),
            "steady_patches_per_s": steady,
            "step_times": step_times,
            "losses": last_losses,
            "metrics": metrics,
        }

    def _log_eval(self, step, writer) -> dict:
        metrics = self.evaluate()
        if not metrics or not self.chief:
            return metrics
        with writer.as_default(step=step):
            for k, v in metrics.items():
                tf.summary.scalar(f"val/{k}", v)
            x = np.stack([a for a, _ in self.validation[:3]])
            y = np.stack([b for _, b in self.validation[:3]])
            out = np.clip(self.task.eval_generator(x, training=False).numpy(), 0, 1)
            panels = [_to_size(x, y.shape[1:3]), out, y]
            tf.summary.image("val/input_enhanced_target", np.concatenate(panels, axis=2), step=step, max_outputs=3)
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        return metrics


def train(config: TrainConfig, run_dir, resume: bool = False, progress: bool = True, card=None) -> dict:
    """Train ``config`` in ``run_dir`` (see :func:`mobile_enhance.api.train` for the API call)."""
    return Trainer(config, run_dir, resume=resume, progress=progress, card=card).train()


def _to_size(images: np.ndarray, size) -> np.ndarray:
    """``images`` bicubic-resized to ``size`` (H, W) where they differ (an SR model's input
    beside its target); unchanged otherwise."""
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    return np.clip(tf.image.resize(images, size, method="bicubic").numpy(), 0.0, 1.0)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint folder ``ckpt_dir/latest`` names, or ``None`` before the first one."""
    pointer = Path(ckpt_dir) / "latest"
    if not pointer.exists():
        return None
    return Path(ckpt_dir) / pointer.read_text().strip()


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _architecture(model_kwargs: dict) -> dict:
    """A builder's arguments less ``start``, which picks a new model's weights only (so a
    run started one way fine-tunes from a run started another)."""
    return {k: v for k, v in model_kwargs.items() if k != "start"}


def _run_config(run_dir: Path) -> TrainConfig:
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise UserError(f"{run_dir}: not a run folder (no config.json)")
    return TrainConfig.from_json(read_json(config_path, f"run config {config_path}"))


def _legacy_checkpoint(ckpt: Path | None) -> bool:
    """Whether checkpoint folder ``ckpt`` was written before model cards: its discriminator
    under ``discriminator/`` rather than ``discriminator_<name>/``."""
    if ckpt is None or not (ckpt / "ckpt.index").exists():
        return False
    try:
        return any(name.startswith("discriminator/") for name, _ in tf.train.list_variables(str(ckpt / "ckpt")))
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is reported by the restore
        return False


def _has_inverse(run_dir: Path) -> bool:
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    return ckpt is not None and any(name.startswith("inverse/") for name, _ in tf.train.list_variables(str(ckpt / "ckpt")))


def _read_generator(run_dir: Path, model, key: str = "generator") -> None:
    """Weights of the net checkpointed as ``key`` in ``run_dir``'s latest checkpoint into ``model``."""
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        raise CheckpointError(f"{run_dir}: no checkpoint (no {run_dir / 'checkpoints' / 'latest'})")
    try:
        tf.train.Checkpoint(**{key: model}).read(str(ckpt / "ckpt")).expect_partial().assert_existing_objects_matched()
    except Exception as error:  # noqa: BLE001 - any failure to read means a bad checkpoint
        raise CheckpointError(f"{ckpt}: checkpoint cannot be restored ({_first_line(error)})") from None


def load_generator(run_dir):
    """The generator of a run folder: rebuilt from ``config.json``, weights from the latest
    checkpoint (its EMA copy where the run kept one)."""
    from mobile_enhance.models import build_model

    run_dir = Path(run_dir)
    config = _run_config(run_dir)
    model = build_model(config.model, **config.model_kwargs)
    _read_generator(run_dir, model, "generator_ema" if config.ema_decay > 0 else "generator")
    return model, config
