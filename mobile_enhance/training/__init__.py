"""Training: typed configs and presets (:mod:`.config`), the loop (:mod:`.trainer`)."""

from mobile_enhance.training.config import PRESETS, DataConfig, OptimConfig, TrainConfig, resolve
from mobile_enhance.training.trainer import Trainer, load_generator, train

__all__ = ["PRESETS", "DataConfig", "OptimConfig", "TrainConfig", "Trainer", "load_generator", "resolve", "train"]
