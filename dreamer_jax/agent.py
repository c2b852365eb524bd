"""The agent: `TrainState`, `init`, `policy` and one jitted `train_step`.

    agent = Agent(config, obs_spec, num_actions)
    state = agent.init(jax.random.key(0))
    carry = agent.initial_carry(num_envs)
    action, carry = agent.policy(state.params, carry, obs, key, "sample")
    state, metrics = agent.train_step(state, batch, key)      # state is donated

`obs` for `policy` is a dict of the observation fields batched (N, ...) plus "is_first" (N,)
bool: where it is set the carry (RSSM state and previous action) is reset before the step.
`batch` for `train_step` is a dict of the observation fields (B, T, ...), "action" (B, T) int32
(taken after observing step t), "reward" (B, T) float32 (received on arriving at step t) and
"is_first", "is_last", "is_terminal" (B, T) bool. Each window starts from the zero (reset) RSSM
state and a zero previous action; no carry is kept between replayed windows.

Differences from DreamerV3 (danijar/dreamerv3; the reasons are in docs/DESIGN.md):
- The actor's categorical is masked by the action mask: the real one when acting and at the
  real start state of each imagined rollout, a mask head's prediction later.
- An "action_features" field (A, F) feeds a per-action scorer of the actor's logits and the
  RSSM's action input; an `afeat` head predicts it in imagination.
- Structured observations: an MLP encoder (optionally an unpooled 3x3 board conv) and per-cell
  Bernoulli / categorical decoders.
- Latents and imagined actions are sampled by inverting the CDF.
- `tiny` imagines from the last 4 steps of each sequence only; no replay context.
- `qhead`: a Q head on real replayed states and action features, with its own actor term
  (`qhead.py`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from dreamer_jax import codec, losses, model, outs, qhead, returns, rssm
from dreamer_jax.configs import Config, validate
from dreamer_jax.optim import make_optimizer


@flax.struct.dataclass
class TrainState:
    """Everything an update changes; checkpoint it whole to resume."""

    params: Any  # {network name: flax params}, float32.
    opt_state: Any
    slow_critic: Any  # EMA copy of params["critic"].
    retnorm: returns.NormState
    step: jax.Array  # () int32, updates done.


class PolicyCarry(NamedTuple):
    """Acting state per environment."""

    state: rssm.State  # (N, ...) RSSM state after the last observation.
    prev_action: jax.Array  # (N,) int32 action taken after it.
    prev_features: jax.Array  # (N, F) its action features (F = 0 without that field).


@dataclasses.dataclass(frozen=True)
class Agent:
    """Static definition (config, spec, networks); all arrays live in `TrainState`."""

    config: Config
    obs_spec: tuple  # Sorted (name, FieldSpec) pairs; a dict is accepted and converted.
    num_actions: int
    traces: dict = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self):
        validate(self.config)
        if isinstance(self.obs_spec, Mapping):
            object.__setattr__(self, "obs_spec", model.spec_tuple(self.obs_spec))

    @functools.cached_property
    def nets(self) -> model.Nets:
        return model.build_nets(self.config, dict(self.obs_spec), self.num_actions)

    @functools.cached_property
    def optimizer(self) -> optax.GradientTransformation:
        c = self.config
        return make_optimizer(
            lr=c.lr, agc=c.agc, eps=c.eps, beta1=c.beta1, beta2=c.beta2, warmup=c.warmup
        )

    def init(self, key: jax.Array) -> TrainState:
        """Fresh parameters, optimizer state, slow critic and return normaliser."""
        spec = dict(self.obs_spec)
        params = model.init_params(key, self.nets, self.config, spec, self.num_actions)
        return fresh_state(params, self.optimizer)

    def initial_carry(self, batch: int) -> PolicyCarry:
        c = self.config
        state = rssm.initial_state(batch, c.deter, c.stoch, c.classes)
        dim = model.action_features_dim(dict(self.obs_spec))
        return PolicyCarry(
            state, jnp.zeros((batch,), jnp.int32), jnp.zeros((batch, dim), jnp.float32)
        )

    @functools.cached_property
    def policy(self):
        """Jitted policy(params, carry, obs, key, mode) -> (action (N,) int32, carry)."""
        return jax.jit(self._policy, static_argnames="mode")

    @functools.cached_property
    def train_step(self):
        """Jitted train_step(state, batch, key) -> (state, metrics); `state` is donated."""
        return jax.jit(self._train_step, donate_argnums=0)

    def _policy(self, params, carry: PolicyCarry, obs, key, mode: str = "sample"):
        if mode not in ("sample", "greedy"):
            raise ValueError(f"mode: got {mode!r}; allowed: 'sample', 'greedy'")
        nets, spec = self.nets, self.obs_spec
        k_obs, k_act = jax.random.split(key)
        fields = {k: obs[k] for k, _ in spec}
        embed = nets.enc.apply(params["enc"], fields)
        action = jax.nn.one_hot(carry.prev_action, self.num_actions, dtype=jnp.float32)
        action = model.action_input(action, carry.prev_features)
        reset = jnp.asarray(obs["is_first"], bool)
        state, _ = nets.rssm.apply(
            params["rssm"], carry.state, action, embed, reset, k_obs, method=rssm.RSSM.obs_step
        )
        afeat_key = codec.action_features_field(dict(spec))
        afeat = None if afeat_key is None else obs[afeat_key].astype(jnp.float32)
        logits = model.actor_logits(nets, params, rssm.features(state), afeat)
        mask_key = codec.mask_field(dict(spec))
        mask = None if mask_key is None else obs[mask_key]
        logp = outs.mix_logits(logits, self.config.unimix, mask)
        if mode == "greedy":
            act = jnp.argmax(logp, -1).astype(jnp.int32)
        else:
            act = jax.random.categorical(k_act, logp, -1).astype(jnp.int32)
        chosen = carry.prev_features if afeat is None else model.chosen(afeat, act)
        return act, PolicyCarry(state, act, chosen)

    def _loss(self, params, state: TrainState, batch, key):
        c = self.config
        kw = dict(config=c, spec=self.obs_spec, num_actions=self.num_actions)
        k_wm, k_img = jax.random.split(key)
        wm_losses, metrics, world = losses.world_model_loss(self.nets, params, batch, k_wm, **kw)
        ac_losses, ac_metrics, retnorm, boot = losses.imagination_loss(
            self.nets, params, state.slow_critic, state.retnorm, world, batch, k_img, **kw
        )
        rv_losses = losses.replay_value_loss(
            self.nets, params, state.slow_critic, world, batch, boot, config=c
        )
        metrics.update(ac_metrics)
        terms = {**wm_losses, **ac_losses, **rv_losses}
        if c.qhead:
            ret_scale = returns.norm_scale(retnorm, limit=c.retnorm_limit)
            actor = functools.partial(model.actor_logits, self.nets, params)
            q_terms, q_metrics = qhead.q_losses(
                self.nets.qnet,
                params["qnet"],
                world.feat,
                actor,
                batch,
                ret_scale,
                config=c,
                spec=self.obs_spec,
            )
            terms.update(q_terms)
            metrics.update(q_metrics)
        means = {k: v.mean() for k, v in terms.items()}
        scales = {
            "dyn": c.scale_dyn,
            "rep": c.scale_rep,
            "rew": c.scale_rew,
            "con": c.scale_con,
            "policy": c.scale_policy,
            "value": c.scale_value,
            "repval": c.scale_repval,
            "qval": c.scale_qval,
            "qpolicy": c.scale_qpolicy,
        }
        scale = lambda k: c.scale_rec if k.startswith("rec/") else scales[k]  # noqa: E731
        world_loss = sum(scale(k) * means[k] for k in wm_losses)
        others = [k for k in terms if k not in wm_losses]
        total = world_loss + sum(scale(k) * means[k] for k in others)
        metrics.update({f"loss/{k}": v for k, v in means.items()})
        metrics["loss/world_model"] = world_loss
        metrics["loss/total"] = total
        return total, (metrics, retnorm)

    def _train_step(self, state: TrainState, batch, key):
        self.traces["train_step"] = self.traces.get("train_step", 0) + 1
        B, T = batch["is_first"].shape
        for k in ("action", "reward", "is_last", "is_terminal", *dict(self.obs_spec)):
            assert batch[k].shape[:2] == (B, T), (k, batch[k].shape, B, T)
        grad_fn = jax.grad(self._loss, has_aux=True)
        grads, (metrics, retnorm) = grad_fn(state.params, state, batch, key)
        return apply_gradients(state, grads, retnorm, metrics, self.optimizer, self.config)


def fresh_state(params: Any, optimizer: optax.GradientTransformation) -> TrainState:
    """The TrainState of fresh parameters: optimizer state, slow critic copy, return normaliser."""
    return TrainState(
        params=params,
        opt_state=optimizer.init(params),
        slow_critic=jax.tree.map(jnp.copy, params["critic"]),
        retnorm=returns.norm_init(),
        step=jnp.zeros((), jnp.int32),
    )


def apply_gradients(
    state: TrainState,
    grads: Any,
    retnorm: returns.NormState,
    metrics: dict,
    optimizer: optax.GradientTransformation,
    config: Config,
) -> tuple[TrainState, dict]:
    """One optimizer step, the slow critic's EMA and the update's norms: (new state, metrics)."""
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    rate = config.slow_rate
    slow = jax.tree.map(lambda s, p: (1 - rate) * s + rate * p, state.slow_critic, params["critic"])
    metrics["grad_norm"] = _norm(grads)
    metrics["update_norm"] = _norm(updates)
    metrics["param_norm"] = _norm(params)
    new = TrainState(params, opt_state, slow, retnorm, state.step + 1)
    metrics["step"] = new.step.astype(jnp.float32)
    return new, {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}


def _norm(tree: Any) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))


def init(
    key: jax.Array, obs_spec: Mapping[str, Any], num_actions: int, config: Config
) -> TrainState:
    """A fresh `TrainState` (same as `Agent(config, obs_spec, num_actions).init(key)`)."""
    return Agent(config, obs_spec, num_actions).init(key)


def make_train_step(config: Config, obs_spec: Mapping[str, Any], num_actions: int):
    """The jitted train_step(state, batch, key) -> (state, metrics) with the state donated."""
    return Agent(config, obs_spec, num_actions).train_step


def make_policy(config: Config, obs_spec: Mapping[str, Any], num_actions: int):
    """The jitted policy(params, carry, obs, key, mode) -> (action, carry)."""
    return Agent(config, obs_spec, num_actions).policy
