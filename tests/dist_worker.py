"""Run a short training in a fresh process (for the tf.distribute tests).

usage: dist_worker.py MODE DATA_ROOT RUN_DIR OUT.npz [LOGICAL_CPUS [CARD]]
MODE: default | mirrored | multiworker (TF_CONFIG set by the caller).
With CARD (a test card of test_task.py), DATA_ROOT is a --data spec for it.
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

card = None
if ":" in root:  # a test card of test_task.py on that data: MODE DATA_SPEC ... CARD_NAME
    import test_task

    card = {"dpe_like": test_task.DPE_LIKE}[sys.argv[6]]
    config = resolve(card.name, {"data.spec": root, "data.batch_size": 4, "data.augment": False, "steps": 4, "eval_every": 4,
                                 "checkpoint_every": 4, "ema_decay": 0.5, "distribute": mode}, card=card)
else:
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
trainer = Trainer(config, run_dir, progress=False, card=card)
result = trainer.train()
losses = np.array([result["losses"][k] for k in sorted(result["losses"])])
state = {}
if card is not None:  # the adaptive weight's state and the EMA generator
    _, weight, average, cooldown = trainer.task.adaptive["forward"]
    state = {"gp_weight": weight.numpy(), "gp_average": average.numpy(), "gp_cooldown": cooldown.numpy(),
             "ema": np.concatenate([w.ravel() for w in trainer.task.ema.get_weights()])}
np.savez(out, *trainer.generator.get_weights(), replicas=trainer.strategy.num_replicas_in_sync, step=result["step"], losses=losses,
         **state)
