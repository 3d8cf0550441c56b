"""The training task: the nets a card's stage names and one replica step over them.

Kept apart from the loop (:mod:`.trainer`, which owns checkpoints, resume, the NaN
guard, summaries, validation, progress and tf.distribute), as tensorflow/models keeps its
Task apart from its trainer. One task covers every kind of paper the cards describe:

* a generator alone (pixel, VGG terms against the target);
* a generator with zero, one or two discriminators, each with its own input view
  (RGB, grayscale, blurred RGB) and GAN loss (DPED's softmax, BCE, least squares,
  WGAN-GP with DPE's adaptive weight);
* a generator with an inverse generator F: content consistency between x and F(G(x))
  (WESPE), or two generators with cycle and identity terms and a second critic on F(y)
  (DPE's 2-way GAN);
* discriminator warm-up, N discriminator steps per generator step (each on its own
  batch), an EMA copy of the generator;
* a later stage of a two-stage paper, training only the layers the stage names.

Tensor contract: batches are ``(x, y)``: ``(B, P/s, P/s, 3)`` and ``(B, P, P, 3)``
float32 in [0, 1] (``s`` the card's upscale); on unpaired data ``y`` is an unrelated
target-domain crop.
"""

from __future__ import annotations

from mobile_enhance.compat import keras, tf
from mobile_enhance.losses import LOSS_TYPES, recipe_from_json
from mobile_enhance.losses.gan import GAN_LOSSES, VIEWS

ADAPTIVE_DEFAULTS = {"bound": 0.05, "grow": 2.0, "decay": 0.99, "cooldown": 50}


def _labels(terms) -> list[str]:
    """One summary name per term: its label, numbered where two terms share one."""
    labels, seen = [], {}
    for term in terms:
        seen[term.label] = seen.get(term.label, 0) + 1
        labels.append(term.label if seen[term.label] == 1 else f"{term.label}_{seen[term.label]}")
    return labels


class Task:
    """Builds the nets of ``card``'s stage for ``config`` and computes one replica step.

    Call :meth:`build` inside the strategy's scope. The loop checkpoints
    :meth:`checkpoint_parts` and calls :meth:`replica_step` inside ``strategy.run``, then
    :meth:`after_step` with the reduced extras in cross-replica context.
    """

    def __init__(self, card, config, global_batch: int):
        self.card, self.config = card, config
        self.stage = card.stage(config.stage)
        self.terms = recipe_from_json(config.losses)
        self.labels = _labels(self.terms)
        self.global_batch = int(global_batch)
        used = {t.disc for t in self.terms if t.needs == "adversarial"}
        self.disc_specs = [d for d in self.stage.discriminators if d.name in used]
        self.uses_inverse = card.inverse is not None and (
            any(t.needs_inverse or t.needs == "identity" for t in self.terms) or any(d.judges == "inverse" for d in self.disc_specs)
        )
        #: batches one training step reads: one per discriminator step
        self.batches_per_step = config.gan.disc_steps if self.disc_specs else 1
        self.vgg_layers = sorted({layer for t in self.terms if LOSS_TYPES[t.type].uses_vgg for layer in t.vgg_layers()})

    # -- the nets --------------------------------------------------------------------

    def build(self):
        """Create the nets, optimizers and state variables (inside the strategy's scope)."""
        c, o = self.config, self.config.optim
        self.vgg = None
        if self.vgg_layers:
            from mobile_enhance.losses.vgg import VGGFeatures

            self.vgg = VGGFeatures(self.vgg_layers, weights=c.vgg_weights or None)
        self.generator = self.card.builder(input_shape=(None, None, 3), **c.model_kwargs)
        self.inverse = self.card.inverse(input_shape=(None, None, 3)) if self.uses_inverse else None
        if self.stage.trainable:
            for net in filter(None, (self.generator, self.inverse)):
                for layer in net.layers:
                    layer.trainable = any(layer.name.startswith(p) for p in self.stage.trainable)
        p = c.data.patch_size
        self.discriminators = {d.name: d.builder(input_shape=(p, p, VIEWS[d.sees].channels)) for d in self.disc_specs}
        self.g_vars = self.generator.trainable_variables + (self.inverse.trainable_variables if self.inverse else [])
        # a schedule counts its optimizer's updates: the generator's start after the warm-up,
        # each discriminator makes batches_per_step of them a step
        warmup = c.gan.disc_warmup if self.disc_specs else 0
        self.g_opt = keras.optimizers.Adam(self._rate(o.learning_rate, c.steps - warmup), o.beta_1, o.beta_2, o.epsilon)
        self.g_opt.build(self.g_vars)
        self.d_opts = {}
        for name, disc in self.discriminators.items():
            rate = self._rate(o.disc_learning_rate or o.learning_rate, c.steps * self.batches_per_step)
            self.d_opts[name] = keras.optimizers.Adam(rate, o.beta_1, o.beta_2, o.epsilon)
            self.d_opts[name].build(disc.trainable_variables)
        self.ema = None
        if c.ema_decay > 0:
            self.ema = self.card.builder(input_shape=(None, None, 3), **c.model_kwargs)
            self.copy_to_ema()
        self.adaptive = {}
        for d in self.disc_specs:
            if d.adaptive is not None:
                settings = {**ADAPTIVE_DEFAULTS, **d.adaptive}
                self.adaptive[d.name] = (
                    settings,
                    tf.Variable(float(d.loss_kwargs.get("gp_weight", 10.0)), trainable=False, name=f"gp_weight_{d.name}"),
                    tf.Variable(0.0, trainable=False, name=f"gp_average_{d.name}"),
                    tf.Variable(0, dtype=tf.int64, trainable=False, name=f"gp_cooldown_{d.name}"),
                )

    def _rate(self, rate, updates: int):
        if self.config.optim.schedule == "cosine":
            return keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, int(updates)), alpha=0.05)
        return rate

    def copy_to_ema(self):
        """Start the EMA copy at the generator's weights (after an init or a restore)."""
        if self.ema is not None:
            self.ema.set_weights(self.generator.get_weights())

    @property
    def eval_generator(self):
        """The generator validation and export use: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.generator

    def networks(self) -> list:
        return [n for n in (self.generator, self.inverse, self.ema, *self.discriminators.values()) if n is not None]

    def checkpoint_parts(self, legacy: bool = False) -> dict:
        """Everything a resume must restore, by checkpoint name.

        ``legacy``: the names of run folders from before model cards (one discriminator,
        saved as ``discriminator`` / ``d_opt``), for reading those runs.
        """
        parts = {"generator": self.generator, "g_opt": self.g_opt}
        if self.inverse is not None:
            parts["inverse"] = self.inverse
        if self.ema is not None:
            parts["generator_ema"] = self.ema
        for name, disc in self.discriminators.items():
            if legacy:
                parts.update(discriminator=disc, d_opt=self.d_opts[name])
            else:
                parts[f"discriminator_{name}"] = disc
                parts[f"d_opt_{name}"] = self.d_opts[name]
        for name, (_, weight, average, cooldown) in self.adaptive.items():
            parts.update({f"gp_weight_{name}": weight, f"gp_average_{name}": average, f"gp_cooldown_{name}": cooldown})
        return parts

    # -- the generator side ----------------------------------------------------------

    def _features(self, named: dict) -> dict:
        """VGG features of several ``(N, H, W, 3)`` batches in one pass, by name."""
        names = list(named)
        both = self.vgg(tf.concat([named[k] for k in names], axis=0))
        n = tf.shape(named[names[0]])[0]
        return {k: {layer: v[i * n : (i + 1) * n] for layer, v in both.items()} for i, k in enumerate(names)}

    def _fake(self, spec, outputs):
        return outputs["enhanced"] if spec.judges == "output" else outputs["inverted"]

    def generator_losses(self, x, y):
        """Total weighted loss, each term's batch average, and the outputs the discriminator
        steps reuse (``enhanced`` = G(x), ``inverted`` = F(y))."""
        g, f = self.generator, self.inverse
        enhanced = g(x, training=True)
        out = {"enhanced": enhanced}
        needs = {t.needs for t in self.terms}
        if f is not None:
            if needs & {"consistency", "consistency_vgg", "cycle"}:
                out["back"] = f(enhanced, training=True)
            if "cycle" in needs or "identity" in needs or any(d.judges == "inverse" for d in self.disc_specs):
                out["inverted"] = f(y, training=True)
            if "cycle" in needs:
                out["forward"] = g(out["inverted"], training=True)
        features = {}
        wanted = {}
        if "vgg" in needs:
            wanted.update(enhanced=enhanced, target=y)
        if "consistency_vgg" in needs:
            wanted.update(back=out["back"], input=x)
        if wanted:
            features = self._features(wanted)
        values = {}
        for term, label in zip(self.terms, self.labels):
            kind, kwargs = LOSS_TYPES[term.type], term.fn_kwargs
            if kind.needs == "pixels":
                value = kind.fn(enhanced, y, **kwargs)
            elif kind.needs == "vgg":
                kwargs.setdefault("layers", term.vgg_layers())
                value = kind.fn(features["enhanced"], features["target"], **kwargs)
            elif kind.needs == "adversarial":
                spec = next(d for d in self.disc_specs if d.name == term.disc)
                d_fake = self.discriminators[spec.name](VIEWS[spec.sees].fn(self._fake(spec, out)), training=True)
                value = GAN_LOSSES[spec.gan_loss].generator(d_fake, global_batch=self.global_batch, **kwargs)
            elif kind.needs == "consistency":
                value = kind.fn(out["back"], x, **kwargs)
            elif kind.needs == "consistency_vgg":
                kwargs.setdefault("layers", term.vgg_layers())
                value = kind.fn(features["back"], features["input"], **kwargs)
            elif kind.needs == "cycle":
                value = kind.fn(x, out["back"], y, out["forward"], **kwargs)
            else:  # identity
                value = kind.fn(x, enhanced, y, out.get("inverted"), **kwargs)
            values[label] = (term.weight, tf.nn.compute_average_loss(value, global_batch_size=self.global_batch))
        total = tf.add_n([w * v for w, v in values.values()])
        return total, {k: v for k, (_, v) in values.items()}, out

    # -- the discriminator side ------------------------------------------------------

    def _draw(self, step, k: int, d: int):
        """``draw(shape, salt)``: uniform [0, 1) noise for discriminator step ``k`` of disc
        ``d`` at ``step``, stateless, drawn for the whole global batch and sliced to this
        replica's rows, so one device and several draw the same numbers per example."""
        seed = tf.constant([self.config.seed, 0], tf.int64)
        for value in (tf.cast(step, tf.int64), k, d):
            seed = tf.random.experimental.stateless_fold_in(seed, value)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group

        def draw(shape, salt: int):
            shape = tf.cast(shape, tf.int32)
            rows = shape[0]
            full = tf.random.stateless_uniform(tf.concat([[self.global_batch], shape[1:]], 0), tf.random.experimental.stateless_fold_in(seed, salt))
            return full[replica * rows : (replica + 1) * rows]

        return draw

    def discriminator_step(self, spec, x, y, fake, draw):
        """One update of discriminator ``spec`` on real and (stopped) fake images."""
        disc, view = self.discriminators[spec.name], VIEWS[spec.sees].fn
        real = y if spec.judges == "output" else x
        weight = self.adaptive[spec.name][1] if spec.name in self.adaptive else None
        with tf.GradientTape() as tape:
            value, extras = GAN_LOSSES[spec.gan_loss].discriminator(
                disc, view(real), view(tf.stop_gradient(fake)), global_batch=self.global_batch, draw=draw, weight=weight,
                **spec.loss_kwargs,
            )
            loss = tf.nn.compute_average_loss(value, global_batch_size=self.global_batch)
        grads = tape.gradient(loss, disc.trainable_variables)
        self.d_opts[spec.name].apply_gradients(zip(grads, disc.trainable_variables))
        return loss, {k: tf.nn.compute_average_loss(v, global_batch_size=self.global_batch) for k, v in extras.items()}

    # -- one step --------------------------------------------------------------------

    def replica_step(self, batches, step, train_generator: bool = True):
        """One training step on this replica: the generator on the first batch (unless in
        warm-up), then every discriminator once per batch.

        Returns ``(losses, penalties)``: batch averages by name, and the gradient penalty
        of each adaptive critic at each of its steps (for :meth:`after_step`).
        """
        x, y = batches[0]
        losses, outputs = {}, None
        if train_generator:
            with tf.GradientTape() as tape:
                total, parts, outputs = self.generator_losses(x, y)
            grads = tape.gradient(total, self.g_vars)
            self.g_opt.apply_gradients([(gr, v) for gr, v in zip(grads, self.g_vars) if gr is not None])
            losses = {"loss": total, **parts}
        penalties = {}
        n = len(batches)
        for k, (xb, yb) in enumerate(batches):
            for d, spec in enumerate(self.disc_specs):
                if k == 0 and outputs is not None and (spec.judges == "output" or "inverted" in outputs):
                    fake = self._fake(spec, outputs)
                else:  # inference mode: a discriminator step must not move the generators' BN statistics
                    fake = self.generator(xb, training=False) if spec.judges == "output" else self.inverse(yb, training=False)
                loss, extras = self.discriminator_step(spec, xb, yb, fake, self._draw(step, k, d))
                key = f"disc_{spec.name}"
                losses[key] = losses.get(key, 0.0) + loss / n
                if "gp" in extras:
                    losses[f"gp_{spec.name}"] = losses.get(f"gp_{spec.name}", 0.0) + extras["gp"] / n
                    if spec.name in self.adaptive:
                        penalties[f"{spec.name}/{k}"] = extras["gp"]
        return losses, penalties

    def after_step(self, penalties: dict, train_generator: bool = True):
        """Cross-replica updates after a step: the EMA copy, DPE's adaptive weights (the
        weight grows while the moving average of the penalty exceeds the bound, at most once
        per cooldown of critic steps, and the average restarts from 0 when it does).

        ``penalties``: :meth:`replica_step`'s, summed over replicas (global batch means).
        """
        if self.ema is not None and train_generator:
            decay = float(self.config.ema_decay)
            for e, g in zip(self.ema.variables, self.generator.variables):
                e.assign(decay * e + (1.0 - decay) * g)
        for name, (settings, weight, average, cooldown) in self.adaptive.items():
            for k in range(self.batches_per_step):
                gp = penalties[f"{name}/{k}"]
                average.assign(settings["decay"] * average + (1.0 - settings["decay"]) * gp)
                cooldown.assign(tf.maximum(cooldown - 1, 0))
                grow = tf.logical_and(average > settings["bound"], cooldown <= 0)
                weight.assign(tf.where(grow, weight * settings["grow"], weight))
                # as DPE's code: the average starts again from 0 after each growth
                average.assign(tf.where(grow, 0.0, average))
                cooldown.assign(tf.where(grow, tf.constant(int(settings["cooldown"]), tf.int64), cooldown))
