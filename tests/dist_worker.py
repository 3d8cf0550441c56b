"""Run a short training in a fresh process (for the tf.distribute tests).

usage: dist_worker.py MODE DATA_ROOT RUN_DIR OUT.npz [LOGICAL_CPUS]
MODE: default | mirrored | multiworker (TF_CONFIG set by the caller).
"""

import sys

from mobile_enhance.compat import tf

mode, root, run_dir, out = sys.argv[1:5]
cpus = int(sys.argv[5]) if len(sys.argv) > 5 else 1
if cpus > 1:
    physical = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(physical, [tf.config.LogicalDeviceConfiguration()] * cpus)

import numpy as np  # noqa: E402

from mobile_enhance.training import Trainer, resolve  # noqa: E402

config = resolve(
    "srcnn",  # no norm layers: every weight has a well-defined gradient (a bias before
    # instance norm gets only rounding noise, which Adam turns into +-lr steps)
    {
        "data.spec": f"dped:{root}",
        "data.patch_size": 32,
        "data.batch_size": 4,
        "data.augment": False,
        "losses": "dped_novgg",
        "steps": 2,
        "eval_every": 2,
        "checkpoint_every": 2,
        "distribute": mode,
    },
)
trainer = Trainer(config, run_dir, progress=False)
result = trainer.train()
losses = np.array([result["losses"][k] for k in sorted(result["losses"])])
np.savez(out, *trainer.generator.get_weights(), replicas=trainer.strategy.num_replicas_in_sync, step=result["step"], losses=losses)
