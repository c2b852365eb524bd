"""The environment protocol that the training loop, evaluation and checkpoints depend on.

An environment is an object holding only static configuration (as in Jumanji and Brax); the
key lives in the state, so stepping needs no key argument:

    state, ts = env.reset(key)                   # one episode; vmap for a batch
    state, ts = env.step(state, action)          # one step; callers freeze ended episodes
    state, ts = env.auto_reset_step(state, action)  # the step after `is_last` starts anew

`ts` is a time step with DreamerV3's flags: `observation` (a dict of arrays, or a NamedTuple
whose `None` fields are absent), `reward` (float32, received on arriving), `is_first` (the
first step of an episode, from a reset), `is_last` (the last: termination or time limit),
`is_terminal` (the episode really ended: no bootstrapping; a time-limit cut is `is_last`
without `is_terminal`) and `metrics` (a dict of per-step values). The frame with `is_last` is
a real observation (the terminal one); the reset frame follows it, with `is_first`, on the
next `auto_reset_step`, whose action is ignored.

`observation_spec()` gives each field's `FieldSpec` (shape, dtype, kind; see `dreamer_jax.
codec.KINDS`), `num_actions` the number of discrete actions (an optional field of kind "mask"
marks the allowed ones) and `episode_metrics` maps a name to the `metrics` key whose value at
`is_last` is the episode's (Tetris: length, lines, pieces, score). `tetris_jax.Tetris` and
`dreamer_jax.gymnax_env.GymnaxEnv` implement it. `check_env` refuses an env that does not,
naming the field, before anything is compiled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import numpy as np

from dreamer_jax import codec

FLAGS = ("is_first", "is_last", "is_terminal")


class FieldSpec(NamedTuple):
    """Shape, dtype and kind of one observation field (kinds: `dreamer_jax.codec.KINDS`)."""

    shape: tuple[int, ...]
    dtype: str
    kind: str
    num_classes: int = 2


class TimeStep(NamedTuple):
    """One step of an environment, with DreamerV3's episode flags (see the module docstring)."""

    observation: dict[str, jax.Array]
    reward: jax.Array  # () float32.
    is_first: jax.Array  # () bool.
    is_last: jax.Array  # () bool.
    is_terminal: jax.Array  # () bool.
    metrics: dict[str, jax.Array]


@runtime_checkable
class Environment(Protocol):
    """What dreamer_jax's training loop and evaluation need of an environment."""

    num_actions: int
    episode_metrics: Mapping[str, str]

    def observation_spec(self) -> Mapping[str, Any]: ...

    def reset(self, key: jax.Array) -> tuple[Any, Any]: ...

    def step(self, state: Any, action: jax.Array) -> tuple[Any, Any]: ...

    def auto_reset_step(self, state: Any, action: jax.Array) -> tuple[Any, Any]: ...


def observation_fields(obs: Any) -> dict[str, jax.Array]:
    """An observation's fields as a dict (a NamedTuple's `None` fields left out)."""
    if isinstance(obs, Mapping):
        return dict(obs)
    return {k: v for k, v in obs._asdict().items() if v is not None}


def check_env(env: Any) -> None:
    """Raise ValueError naming the first thing `env` gets wrong about the protocol: a missing
    method, a spec field of unknown kind, a time step without one of the three flags or the
    reward, an observation field missing from (or not shaped as in) the spec, an episode
    metric the time step lacks. Traces `reset` and `step` abstractly (`jax.eval_shape`):
    nothing is compiled."""
    name = type(env).__name__
    for attr in ("observation_spec", "reset", "step", "auto_reset_step"):
        if not callable(getattr(env, attr, None)):
            raise ValueError(f"{name}: no method {attr}(); see dreamer_jax.envs.Environment")
    n = getattr(env, "num_actions", None)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"{name}.num_actions: got {n!r}; need an int >= 1 (discrete actions)")
    spec = dict(env.observation_spec())
    codec.check_spec(spec)
    mask = codec.mask_field(spec)
    if mask is not None and tuple(spec[mask].shape) != (n,):
        raise ValueError(
            f"obs_spec[{mask!r}].shape: got {tuple(spec[mask].shape)}; a mask is (num_actions,)"
            f" = ({n},)"
        )
    state, ts = jax.eval_shape(env.reset, jax.random.key(0))
    _check_timestep(name, "reset", ts, spec, env)
    action = jax.ShapeDtypeStruct((), np.int32)
    for method in ("step", "auto_reset_step"):
        _, ts = jax.eval_shape(getattr(env, method), state, action)
        _check_timestep(name, method, ts, spec, env)


def _check_timestep(name: str, method: str, ts: Any, spec: dict[str, Any], env: Any) -> None:
    where = f"{name}.{method}"
    for flag in (*FLAGS, "reward", "observation", "metrics"):
        if not hasattr(ts, flag):
            raise ValueError(
                f"{where}: its time step has no {flag!r}; need observation, reward, is_first, "
                "is_last, is_terminal and metrics (DreamerV3's flags: dreamer_jax.envs.TimeStep)"
            )
    for flag in FLAGS:
        got = getattr(ts, flag)
        if tuple(got.shape) != () or got.dtype != np.bool_:
            raise ValueError(f"{where}: {flag} is {got.dtype}{list(got.shape)}; need a () bool")
    if tuple(ts.reward.shape) != ():
        raise ValueError(f"{where}: reward has shape {tuple(ts.reward.shape)}; need ()")
    fields = observation_fields(ts.observation)
    for key, s in spec.items():
        if key not in fields:
            raise ValueError(f"{where}: observation has no field {key!r} (in the spec)")
        if tuple(fields[key].shape) != tuple(s.shape):
            raise ValueError(
                f"{where}: observation[{key!r}] has shape {tuple(fields[key].shape)}; "
                f"the spec says {tuple(s.shape)}"
            )
    extra = sorted(set(fields) - set(spec))
    if extra:
        raise ValueError(f"{where}: observation field {extra[0]!r} is not in the spec")
    for metric, key in dict(getattr(env, "episode_metrics", {})).items():
        if key not in ts.metrics:
            raise ValueError(
                f"{name}.episode_metrics[{metric!r}]: {key!r} is not in the time step's metrics "
                f"({', '.join(sorted(ts.metrics))})"
            )
