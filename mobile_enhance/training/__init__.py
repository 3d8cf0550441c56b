"""Training: typed configs checked against the model card (:mod:`.config`), the task that
builds the nets and computes one step (:mod:`.task`), the loop (:mod:`.trainer`)."""

from mobile_enhance.training.config import DataConfig, GanConfig, OptimConfig, TrainConfig, resolve
from mobile_enhance.training.trainer import Trainer, load_generator, train

__all__ = ["DataConfig", "GanConfig", "OptimConfig", "TrainConfig", "Trainer", "load_generator", "resolve", "train"]
