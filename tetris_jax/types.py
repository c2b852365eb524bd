"""Records exchanged with users of the environment: observations, time steps, specs."""

from __future__ import annotations

from typing import NamedTuple

import jax

EMPTY_HOLD = 7  # `Observation.hold` when nothing is held.


class Observation(NamedTuple):
    """What the agent sees after a step.

    Rows are counted from the top (row 0 is the highest row of the grid). The grid has
    `hidden_rows` rows above the `height` visible rows; placement mode has none.
    """

    board: jax.Array  # (rows, width) bool: locked cells.
    active: jax.Array  # (rows, width) bool: cells of the falling piece (its spawn cells in
    # placement mode, where it is not on the board yet).
    piece: jax.Array  # () int32 in [0, 7): the current piece, order I O T S Z J L.
    rotation: jax.Array  # () int32 in [0, 4): SRS state 0, R, 2, L of the current piece.
    queue: jax.Array  # (queue_size,) int32 in [0, 7): the next pieces, soonest first.
    hold: jax.Array  # () int32 in [0, 8): the held piece, 7 (EMPTY_HOLD) when none.
    can_hold: jax.Array  # () bool: whether hold is allowed now (once per piece, direct mode).
    action_mask: jax.Array  # (num_actions,) bool: actions worth taking (see Tetris docs).
    # (num_actions, len(afterstates.FEATURES)) float16: features of the board each placement
    # would leave; only with Tetris(placement_features=True), else None.
    placements: jax.Array | None = None


class TimeStep(NamedTuple):
    """One transition, with DreamerV3's episode flags.

    `is_last` ends an episode; `is_terminal` only when the game itself ended (top-out), not on a
    time-limit cut-off, so value bootstrapping stays correct.
    """

    observation: Observation
    reward: jax.Array  # () float32.
    is_first: jax.Array  # () bool: first step of an episode (from reset).
    is_last: jax.Array  # () bool: last step of an episode (game over or time limit).
    is_terminal: jax.Array  # () bool: game over (block-out / lock-out / top-out).
    metrics: dict[str, jax.Array]  # Per-step metrics; see `Tetris.step`.


class FieldSpec(NamedTuple):
    """Shape and meaning of one observation field, for building encoders and decoders.

    kind: "binary" (0/1 cells), "categorical" (ints in [0, num_classes)), "mask" (a
    bool action mask: an input to action selection, not something to reconstruct), or
    "action_features" ((num_actions, F) real features of each action's outcome, here the
    afterstate of each placement: an input to action selection and to the world model).
    """

    shape: tuple[int, ...]
    dtype: str
    kind: str
    num_classes: int = 2


def flatten_observation(obs: Observation, spec: dict[str, FieldSpec]) -> jax.Array:
    """Flattens one observation into a float32 vector for MLP encoders.

    Binary fields become 0/1, categorical fields one-hot vectors, action features floats; the
    action mask is left out (it is for action selection). Works on batched observations too
    (leading axes are kept): pass `env.observation_spec()`.
    """
    import jax.numpy as jnp

    parts = []
    for name, field in spec.items():
        if field.kind == "mask":
            continue
        value = getattr(obs, name)
        lead = value.shape[: value.ndim - len(field.shape)]
        if field.kind == "categorical":
            value = jax.nn.one_hot(value, field.num_classes, dtype=jnp.float32)
        parts.append(value.astype(jnp.float32).reshape(*lead, -1))
    return jnp.concatenate(parts, axis=-1)
