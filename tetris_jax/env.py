"""The Tetris environment: pure `reset` and `step` on one board; jit and vmap at the call site."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tetris_jax import afterstates, direct, pieces
from tetris_jax import board as bb
from tetris_jax import randomizer as rng
from tetris_jax.types import EMPTY_HOLD, FieldSpec, Observation, TimeStep

ACTION_MODES = ("placement", "direct")
REWARD_MODES = ("lines_only", "standard")
RANDOMIZERS = ("7bag", "uniform")
# Direct-mode actions, in this order.
DIRECT_ACTIONS = (
    "noop",
    "left",
    "right",
    "rotate_cw",
    "rotate_ccw",
    "soft_drop",
    "hard_drop",
    "hold",
)
NOOP, LEFT, RIGHT, CW, CCW, SOFT_DROP, HARD_DROP, HOLD = range(8)
# Guideline points for 0..4 lines at level 1; multiplied by the level.
LINE_POINTS = (0, 100, 300, 500, 800)
MAX_LEVEL = 15
# Potential for reward_mode="standard": phi(board) = sum_i w_i feature_i (a tenth of the
# weights of Yiyuan Lee's tuned heuristic, so one cleared line is worth about as much as the
# shaping of a few pieces).
DEFAULT_SHAPING = {"aggregate_height": -0.051, "holes": -0.036, "bumpiness": -0.018}


class _Flags(NamedTuple):
    """A step's outcome besides the new state."""

    reward: jax.Array
    is_first: jax.Array
    is_last: jax.Array
    is_terminal: jax.Array
    lines: jax.Array

    @staticmethod
    def first() -> _Flags:
        f = jnp.bool_(False)
        return _Flags(jnp.float32(0), jnp.bool_(True), f, f, jnp.int32(0))


@struct.dataclass
class State:
    """Everything that evolves in one game. Static sizes are not pytree leaves."""

    cols: jax.Array  # (width,) uint32: locked cells, bit k = row k from the floor.
    piece: jax.Array  # () int32: the current piece.
    rotation: jax.Array  # () int32: its SRS state (direct mode; 0 in placement mode).
    x: jax.Array  # () int32: column of its bounding box's left edge.
    y: jax.Array  # () int32: row of its bounding box's bottom edge, from the floor.
    queue: jax.Array  # (queue_size,) int32: next pieces.
    hold: jax.Array  # () int32: held piece or EMPTY_HOLD.
    can_hold: jax.Array  # () bool
    bag: jax.Array  # () int32: 7-bit mask of the pieces left in the current bag.
    # (2,) uint32: this episode's seed for the piece stream (see `randomizer.words`).
    seed: jax.Array
    steps: jax.Array  # () int32: steps in this episode.
    pieces_placed: jax.Array  # () int32
    total_lines: jax.Array  # () int32
    score: jax.Array  # () int32: Guideline score (saturates at int32 max).
    done: jax.Array  # () bool: the last step ended the episode (is_last).
    game_over: jax.Array  # () bool: ... and it ended by a top-out (is_terminal).
    height: int = struct.field(pytree_node=False, default=20)
    hidden_rows: int = struct.field(pytree_node=False, default=0)

    @property
    def grid(self) -> jax.Array:
        """(..., hidden_rows + height, width) bool locked cells, row 0 at the top; a batched
        state (e.g. from `jax.vmap(env.reset)`) keeps its leading axes."""
        return bb.to_board(self.cols, self.hidden_rows + self.height)

    @property
    def board(self) -> jax.Array:
        """(..., height, width) bool locked cells of the visible rows, row 0 at the top."""
        return bb.to_board(self.cols, self.height)


def _describe(value: Any) -> str:
    """repr for plain values; dtype and shape for arrays (tracers have no values to show)."""
    if isinstance(value, (jax.Array, np.ndarray)):
        return f"<{value.dtype} array of shape {tuple(value.shape)}>"
    return repr(value)


def _check(name: str, value: Any, ok: bool, allowed: str, error: type = ValueError) -> None:
    if not ok:
        raise error(f"Tetris: {name}={_describe(value)} is not allowed; {name} must be {allowed}.")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    """A finite int or float (numpy scalars too); bools are flags, not weights."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # An int too large for a float.
        return False


@functools.cache
def _legacy_key_shape(impl: str) -> tuple[int, ...]:
    """Shape of a raw uint32 key (`jax.random.PRNGKey`) under the default PRNG `impl`."""
    del impl  # The cache key: the shape depends on the configured implementation.
    return tuple(jax.eval_shape(lambda: jax.random.PRNGKey(0)).shape)


_KEY_ALLOWED = (
    "a single JAX PRNG key, jax.random.key(seed) (or a legacy uint32 key of shape "
    "{shape} from jax.random.PRNGKey(seed)); for a batch of keys, "
    "jax.vmap(env.reset)(jax.random.split(key, n))"
)


def _check_key(key: Any) -> None:
    """Refuses anything but one key; dtype and shape are static, so this is trace-time only."""
    dtype = getattr(key, "dtype", None)
    legacy = _legacy_key_shape(str(jax.config.jax_default_prng_impl))
    allowed = _KEY_ALLOWED.format(shape=legacy)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        _check("key", key, np.shape(key) == (), allowed)  # A batch of keys: vmap.
        return
    ok = dtype == np.uint32 and tuple(np.shape(key)) == legacy
    _check("key", key, ok, allowed, TypeError)


class Tetris:
    """Tetris as a pure JAX environment (see README for the rules and the action spaces).

    Observation: `Observation` (board, active piece plane, piece, rotation, queue, hold,
    can_hold, action_mask; with `placement_features=True` also `placements`, the afterstate
    features of every placement). Reward: lines cleared by the step ("lines_only"), or lines
    plus the potential-based shaping gamma*phi(s') - phi(s) and a game-over penalty
    ("standard").
    Termination: top-out. Truncation: `max_steps`.

    Action modes:
      "placement": one decision per piece, `action = rotation * width + column` with rotation in
        SRS order (0, R, 2, L) and column the leftmost occupied column of the piece, clamped so
        the piece fits. The piece drops straight down from above (classic rules, no sliding);
        the game ends when it would rest with a cell above the visible rows (the board is then
        left as it was). Every integer is accepted: values outside [0, num_actions) are clipped
        (floats and bools raise a TypeError; see `step`).
        `action_mask` marks the placements that do not top out, dropping clamped duplicates and
        rotations whose cells repeat an earlier rotation's (O: 1 rotation; I, S, Z: 2); if
        every placement tops out it marks all of those, so it is never empty.
      "direct": indices 0-7 = no-op, left, right, rotate cw, rotate ccw, soft drop, hard drop,
        hold (see DIRECT_ACTIONS). SRS rotation with wall kicks. After the action, gravity pulls
        the piece one row; a piece that cannot fall locks (so it can still slide or rotate for
        one step after landing). Hard drop locks at once. Hold swaps with the held piece (or
        takes the next piece) once per piece. Game over: block out (a new piece overlaps the
        stack at spawn) or lock out (a piece locks wholly inside the hidden rows).
    """

    # Per-episode metrics (dreamer_jax.envs.Environment): name -> the `metrics` key whose value
    # at `is_last` is the episode's.
    episode_metrics = {
        "length": "steps",
        "lines": "total_lines",
        "pieces": "pieces_placed",
        "score": "score",
    }

    def __init__(
        self,
        height: int = 20,
        width: int = 10,
        action_mode: str = "placement",
        reward_mode: str = "lines_only",
        randomizer: str = "7bag",
        queue_size: int = 5,
        max_steps: int | None = None,
        hidden_rows: int | None = None,
        shaping: dict[str, float] | None = None,
        shaping_gamma: float = 1.0,
        game_over_penalty: float = 1.0,
        piece_reward: float = 0.0,
        placement_features: bool = False,
    ):
        _check("action_mode", action_mode, action_mode in ACTION_MODES, f"one of {ACTION_MODES}")
        _check("reward_mode", reward_mode, reward_mode in REWARD_MODES, f"one of {REWARD_MODES}")
        _check("randomizer", randomizer, randomizer in RANDOMIZERS, f"one of {RANDOMIZERS}")
        _check("width", width, _is_int(width) and 4 <= width <= 64, "an int in [4, 64]")
        if hidden_rows is None:
            hidden_rows = 0 if action_mode == "placement" else 2
        # Direct mode spawns pieces in the two rows above the visible ones.
        low = 2 if action_mode == "direct" else 0
        _check(
            "hidden_rows",
            hidden_rows,
            _is_int(hidden_rows) and low <= hidden_rows <= 8,
            f"an int in [{low}, 8] for action_mode={action_mode!r}",
        )
        _check(
            "height",
            height,
            _is_int(height) and 4 <= height <= 28 - hidden_rows,
            f"an int in [4, {28 - hidden_rows}] (height + hidden_rows <= 28 bits)",
        )
        _check(
            "queue_size",
            queue_size,
            _is_int(queue_size) and 0 <= queue_size <= 16,
            "an int in [0, 16]",
        )
        _check(
            "max_steps",
            max_steps,
            max_steps is None or (_is_int(max_steps) and max_steps > 0),
            "None or a positive int",
        )
        _check(
            "placement_features",
            placement_features,
            isinstance(placement_features, bool)
            and not (placement_features and action_mode != "placement"),
            "a bool, and True only with action_mode='placement'",
        )
        _check(
            "shaping",
            shaping,
            shaping is None or isinstance(shaping, Mapping),
            f"None or a dict with keys in {sorted(DEFAULT_SHAPING)}",
        )
        shaping = dict(DEFAULT_SHAPING if shaping is None else shaping)
        unknown = set(shaping) - set(DEFAULT_SHAPING)
        _check("shaping", shaping, not unknown, f"a dict with keys in {sorted(DEFAULT_SHAPING)}")
        real = "a finite real number (int or float, not bool)"
        for k, v in shaping.items():
            _check(f"shaping[{k!r}]", v, _is_real(v), real)
        _check("shaping_gamma", shaping_gamma, _is_real(shaping_gamma), real)
        _check("game_over_penalty", game_over_penalty, _is_real(game_over_penalty), real)
        _check("piece_reward", piece_reward, _is_real(piece_reward), real)
        self.height, self.width, self.hidden_rows = int(height), int(width), int(hidden_rows)
        self.rows = self.height + self.hidden_rows
        self.action_mode, self.reward_mode, self.randomizer = action_mode, reward_mode, randomizer
        self.queue_size, self.max_steps = int(queue_size), max_steps
        self.shaping = {k: float(shaping.get(k, 0.0)) for k in DEFAULT_SHAPING}
        self.shaping_gamma, self.game_over_penalty = float(shaping_gamma), float(game_over_penalty)
        self.piece_reward = float(piece_reward)
        self.placement_features = placement_features
        self.num_actions = 4 * self.width if action_mode == "placement" else len(DIRECT_ACTIONS)
        self._spawn_x = pieces.spawn_x(self.width)
        # Box row at spawn: the lowest cell of the spawn state in the first hidden row (direct),
        # or the highest cell in the top row (placement, where it is shown but not played).
        if action_mode == "direct":
            self._spawn_y = (self.height - pieces.MIN_DY[:, 0]).astype(np.int32)
        else:
            self._spawn_y = (self.rows - 1 - pieces.MAX_DY[:, 0]).astype(np.int32)

    def __repr__(self) -> str:
        return (
            f"Tetris(height={self.height}, width={self.width}, action_mode="
            f"{self.action_mode!r}, reward_mode={self.reward_mode!r}, randomizer="
            f"{self.randomizer!r}, queue_size={self.queue_size}, max_steps={self.max_steps},"
            f" hidden_rows={self.hidden_rows}, placement_features="
            f"{self.placement_features})"
        )

    # ----- specs -----

    def observation_spec(self) -> dict[str, FieldSpec]:
        """Shape, dtype and kind of each observation field."""
        plane = (self.rows, self.width)
        return {
            "board": FieldSpec(plane, "bool", "binary"),
            "active": FieldSpec(plane, "bool", "binary"),
            "piece": FieldSpec((), "int32", "categorical", 7),
            "rotation": FieldSpec((), "int32", "categorical", 4),
            "queue": FieldSpec((self.queue_size,), "int32", "categorical", 7),
            "hold": FieldSpec((), "int32", "categorical", 8),
            "can_hold": FieldSpec((), "bool", "binary"),
            "action_mask": FieldSpec((self.num_actions,), "bool", "mask"),
            **(
                {
                    "placements": FieldSpec(
                        (self.num_actions, len(afterstates.FEATURES)), "float16", "action_features"
                    )
                }
                if self.placement_features
                else {}
            ),
        }

    def action_planes(self) -> np.ndarray:
        """(7, num_actions, 4, width) bool: each placement `rotation * width + column` of each
        piece drawn in board coordinates, in a 4-row strip (top row first) above the board: the
        piece's cells at the columns the placement puts them in, before it falls. It is how the
        action looks on the board, not where the piece lands (placement mode only)."""
        if self.action_mode != "placement":
            raise ValueError("action_planes: placement mode only (action_mode='placement')")
        return pieces.placement_planes(self.width)

    def board_features(self, board: jax.Array) -> jax.Array:
        """(..., len(afterstates.BOARD_FEATURES)) float32 heuristic features of boards shaped
        like the observation's `board` (..., rows, width): holes, transitions, wells, heights.
        Any board, including a predicted one; `afterstates.board_features`."""
        if board.shape[-2:] != (self.rows, self.width):
            raise ValueError(
                f"board_features: got a board of shape {board.shape}; need (..., {self.rows}, "
                f"{self.width})"
            )
        return afterstates.board_features(board, self.height)

    # ----- pieces -----

    def _next_piece(self, queue, bag, word):
        return rng.next_piece(queue, bag, word, self.randomizer)

    def _spawn(self, piece):
        return jnp.asarray(self._spawn_x)[piece], jnp.asarray(self._spawn_y)[piece]

    # ----- reset -----

    def reset(self, key: jax.Array, board: jax.Array | None = None) -> tuple[State, TimeStep]:
        """Starts a game: an empty board, or `board` ((height, width), nonzero = filled).

        `key`: one `jax.random.key(seed)` (a legacy uint32 `jax.random.PRNGKey` also works);
        vmap for a batch."""
        _check_key(key)
        cols = jnp.zeros((self.width,), jnp.uint32)
        if board is not None:
            self._check_board(board)
            cols = bb.to_cols(jnp.asarray(board))
        state = self._initial_state(cols, jax.random.bits(key, (2,), jnp.uint32))
        return state, self._timestep(state, _Flags.first())

    def _initial_state(self, cols: jax.Array, seed: jax.Array) -> State:
        words = rng.words(seed, jnp.uint32(rng.RESET_COUNTER), self.queue_size + 1)
        bag = jnp.int32(rng.FULL_BAG)
        drawn = []
        for i in range(self.queue_size + 1):
            p, bag = rng.draw(bag, words[i], self.randomizer)
            drawn.append(p)
        piece = drawn[0]
        x, y = self._spawn(piece)
        zero = jnp.int32(0)
        state = State(
            cols=cols,
            piece=piece,
            rotation=zero,
            x=x,
            y=y,
            queue=jnp.stack(drawn[1:]) if self.queue_size else jnp.zeros((0,), jnp.int32),
            hold=jnp.int32(EMPTY_HOLD),
            can_hold=jnp.bool_(self.action_mode == "direct"),
            bag=bag,
            seed=seed,
            steps=zero,
            pieces_placed=zero,
            total_lines=zero,
            score=zero,
            done=jnp.bool_(False),
            game_over=jnp.bool_(False),
            height=self.height,
            hidden_rows=self.hidden_rows,
        )
        return state

    def _check_board(self, board) -> None:
        shape = tuple(np.shape(board))
        shown = board if isinstance(board, (jax.Array, np.ndarray)) else np.asarray(board)
        _check(
            "board",
            shown,
            shape == (self.height, self.width),
            f"an array of shape (height, width) = {(self.height, self.width)}",
        )

    # ----- step -----

    def step(self, state: State, action: jax.Array) -> tuple[State, TimeStep]:
        """Advances one step. A state whose episode has ended is returned unchanged.

        `action`: an integer of any integer dtype (floats and bools are refused with a
        TypeError, not truncated); values outside [0, num_actions) are clipped. Concrete Python
        and numpy ints of any size are clipped on the host, before the cast to int32. Under
        `jit` or `vmap` the env only sees what JAX made of the argument: with x64 disabled JAX
        refuses a Python int outside int32 and wraps int64 numpy values to int32, so clip
        those before passing them in."""
        state, flags = self._transition(state, action)
        return state, self._timestep(state, flags)

    def auto_reset_step(
        self, state: State, action: jax.Array, board: jax.Array | None = None
    ) -> tuple[State, TimeStep]:
        """`step`, except that a finished episode is replaced by a fresh one (optionally from
        `board`), whose first time step (`is_first`, reward 0) is returned. The terminal frame is
        never overwritten: it was returned by the previous call. For batched collection."""
        if board is not None:
            self._check_board(board)  # Before any tracing work.
        stepped, flags = self._transition(state, action)
        cols = jnp.zeros((self.width,), jnp.uint32)
        if board is not None:
            cols = bb.to_cols(jnp.asarray(board))
        fresh = self._initial_state(
            cols, jnp.stack(rng.words(state.seed, jnp.uint32(rng.NEXT_COUNTER), 2))
        )
        # The fresh game's pieces take ~queue_size draws: computed once (see bb.keep), not
        # once per output that reads them.
        anchor = (state.steps < 0).astype(jnp.int32)
        queue = [fresh.queue[..., i] for i in range(self.queue_size)]
        piece, bag, *queue = bb.keep_fields(
            anchor, [(fresh.piece, 4), (fresh.bag, 8)] + [(q, 4) for q in queue]
        )
        x, y = self._spawn(piece)
        fresh = fresh.replace(
            piece=piece, bag=bag, x=x, y=y, queue=jnp.stack(queue) if queue else fresh.queue
        )
        pick = lambda a, b: jax.tree.map(lambda u, v: jnp.where(state.done, u, v), a, b)
        # The observation is built once, for whichever state is returned.
        new = pick(fresh, stepped)
        return new, self._timestep(new, pick(_Flags.first(), flags))

    def _action(self, action: Any) -> jax.Array:
        """`action` clipped to [0, num_actions) as int32 (see `step`). The checks read only the
        dtype, static under jit; a traced int32 action gets the same clip as before."""
        last = self.num_actions - 1
        if isinstance(action, int) and not isinstance(action, bool):
            return jnp.int32(min(max(action, 0), last))  # Any size: no int64 wrap on the way.
        array = action if isinstance(action, jax.Array) else np.asarray(action)
        if not jnp.issubdtype(array.dtype, jnp.integer):
            shown = array if isinstance(action, (jax.Array, np.ndarray)) else action
            _check(
                "action",
                shown,
                False,
                f"an integer or an integer array (got dtype "
                f"{array.dtype}): floats are not rounded and bools are not actions",
                TypeError,
            )
        if isinstance(array, np.ndarray):  # Concrete: clip on the host, where int64 is exact.
            return jnp.asarray(np.clip(array, 0, last).astype(np.int32))
        info = jnp.iinfo(array.dtype)
        if np.iinfo(np.int32).min <= info.min and info.max <= np.iinfo(np.int32).max:
            return jnp.clip(array.astype(jnp.int32), 0, last)
        # uint32 (or int64 / uint64 with x64): clip in the wide type, so the cast cannot wrap.
        return jnp.clip(array, 0, last).astype(jnp.int32)

    def _transition(self, state: State, action: jax.Array) -> tuple[State, _Flags]:
        action = self._action(action)
        words = rng.words(state.seed, 2 * state.steps.astype(jnp.uint32), 2)
        if self.action_mode == "placement":
            new, lines, game_over, points = self._step_placement(state, action, words)
        else:
            new, lines, game_over, points = self._step_direct(state, action, words)
        steps = state.steps + 1
        truncated = (steps >= self.max_steps) if self.max_steps else jnp.bool_(False)
        level = jnp.minimum(1 + state.total_lines // 10, MAX_LEVEL)
        points = points + jnp.asarray(LINE_POINTS, jnp.int32)[lines] * level
        new = new.replace(
            steps=steps,
            total_lines=state.total_lines + lines,
            score=jnp.where(
                state.score > jnp.iinfo(jnp.int32).max - points,
                jnp.iinfo(jnp.int32).max,
                state.score + points,
            ),
            done=game_over | truncated,
            game_over=game_over,
        )
        placed = (new.pieces_placed - state.pieces_placed).astype(jnp.float32)
        reward = self._reward(state.cols, new.cols, lines, game_over, placed)
        flags = _Flags(reward, jnp.bool_(False), new.done, game_over, lines)
        # A finished episode stays finished, with the flags of its last step (use
        # `auto_reset_step` to start the next one).
        frozen = _Flags(
            jnp.float32(0), jnp.bool_(False), jnp.bool_(True), state.game_over, jnp.int32(0)
        )
        pick = lambda a, b: jax.tree.map(lambda u, v: jnp.where(state.done, u, v), a, b)
        return pick(state, new), pick(frozen, flags)

    def _place(self, cols: jax.Array, piece: jax.Array, action: jax.Array, anchor: jax.Array):
        """Drop, lock and clear: (split columns after, lines, top_out) of `action` on `cols`
        ((width,) uint32) with `piece`; a top-out leaves the columns as they were."""
        cols = bb.split(cols)
        rotation, column = action // self.width, action % self.width
        piece = bb.Piece(piece, rotation)
        x = jnp.minimum(column, self.width - 1 - (piece.max_dx - piece.min_dx)) - piece.min_dx
        y = bb.landing_row(cols, piece, x)
        top_out = y + piece.max_dy >= self.height
        # Computed once, not once per column that reads them (see bb.keep).
        x, y, top_out = bb.keep_fields(anchor, [(x, 8), (y, 8), (top_out, 1)])
        locked = bb.lock(cols, piece.cols(x, y, self.width))
        full = bb.keep(bb.full_rows(locked, self.rows), anchor)
        cleared, lines = bb.clear_rows(locked, full), bb.popcount(full)
        cols = [jnp.where(top_out, old, new) for old, new in zip(cols, cleared, strict=True)]
        return cols, jnp.where(top_out, 0, lines), top_out

    def board_step(
        self, board: jax.Array, piece: jax.Array, action: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The real placement rules on boards alone: (next board (..., rows, width) bool,
        reward (...) float32, game over (...) bool) of placing `piece` (...) by `action` (...)
        on `board` (..., rows, width), as `step` would from a state with that board and piece
        (the next piece and the time limit aside). Placement mode only. For diagnostics that
        put the real rules where a learned board model would be (`dreamer_jax` option
        `board_oracle`); elementwise over the leading axes."""
        if self.action_mode != "placement":
            raise ValueError("board_step: placement mode only (action_mode='placement')")
        if board.shape[-2:] != (self.rows, self.width):
            raise ValueError(
                f"board_step: got a board of shape {board.shape}; need (..., {self.rows}, "
                f"{self.width})"
            )
        lead = board.shape[:-2]
        piece = jnp.broadcast_to(jnp.asarray(piece, jnp.int32), lead).reshape(-1)
        action = jnp.broadcast_to(self._action(action), lead).reshape(-1)

        def one(b, p, a):
            old = bb.to_cols(b)
            cols, lines, top_out = self._place(old, p, a, jnp.int32(0))
            new = bb.stack(cols)
            placed = 1.0 - top_out.astype(jnp.float32)  # A top-out places nothing.
            return (
                bb.to_board(new, self.rows),
                self._reward(old, new, lines, top_out, placed),
                top_out,
            )

        nxt, reward, over = jax.vmap(one)(board.reshape((-1, self.rows, self.width)), piece, action)
        return nxt.reshape(board.shape), reward.reshape(lead), over.reshape(lead)

    def _reward(self, old: jax.Array, new: jax.Array, lines, game_over, placed) -> jax.Array:
        """A step's reward from the columns before and after, its lines, whether it ended the
        game and the pieces it placed (see the class docstring)."""
        reward = lines.astype(jnp.float32)
        if self.reward_mode == "standard":
            shaping = self.shaping_gamma * self.potential(new) - self.potential(old)
            reward = reward + shaping - self.game_over_penalty * game_over
            reward = reward + self.piece_reward * placed
        return reward

    def _step_placement(self, state: State, action, words):
        # Computed once, not once per column that reads them (see bb.keep).
        anchor = (state.steps < 0).astype(jnp.int32)
        cols, lines, top_out = self._place(state.cols, state.piece, action, anchor)
        nxt, queue, bag = self._next_piece(state.queue, state.bag, words[0])
        sx, sy = self._spawn(nxt)
        placed = state.pieces_placed + jnp.where(top_out, 0, 1)  # A top-out places nothing.
        new = state.replace(
            cols=bb.stack(cols), piece=nxt, x=sx, y=sy, queue=queue, bag=bag, pieces_placed=placed
        )
        return new, lines, top_out, jnp.int32(0)

    def _step_direct(self, state: State, action, words):
        return direct.step(self, state, action, words)

    # ----- observation -----

    def potential(self, cols: jax.Array) -> jax.Array:
        """phi(board) of the standard reward: weighted height, holes and bumpiness."""
        cl = bb.split(cols)
        h = bb.heights(cl)
        w = self.shaping
        return (
            w["aggregate_height"] * sum(h)
            + w["holes"] * bb.holes(cl)
            + w["bumpiness"] * bb.bumpiness(h)
        ).astype(jnp.float32)

    def action_mask(self, state: State) -> jax.Array:
        """(num_actions,) bool; see the class docstring."""
        if self.action_mode == "direct":
            return jnp.ones((self.num_actions,), bool).at[HOLD].set(state.can_hold)
        table = bb.placement_landing(bb.split(state.cols), state.piece)
        mask, distinct = [], []
        for r in range(4):
            p = bb.Piece(state.piece, r)
            max_dy, last = p.max_dy, self.width - 1 - (p.max_dx - p.min_dx)
            canonical = bb.lookup(pieces.CANONICAL_ROTATION[:, r], state.piece)
            for c in range(self.width):
                ok = canonical & (c <= last)
                distinct.append(ok)
                mask.append(ok & (table[r][c] + max_dy < self.height))
        mask, distinct = jnp.stack(mask), jnp.stack(distinct)
        return jnp.where(jnp.any(mask), mask, distinct)

    def placements(self, state: State) -> jax.Array:
        """(num_actions, len(afterstates.FEATURES)) float16 features of the board each placement
        would leave (`afterstates.FEATURES`; zero where the placement tops out or duplicates
        another). Small integers and halves: exact in float16."""
        x = afterstates.feature_matrix(state.cols, state.piece, self.width, self.height, self.rows)
        return x.astype(jnp.float16)

    def observation(self, state: State) -> Observation:
        piece = bb.Piece(state.piece, state.rotation)
        active = bb.stack(piece.cols(state.x, state.y, self.width))
        return Observation(
            board=bb.to_board(state.cols, self.rows),
            active=bb.to_board(active, self.rows),
            piece=state.piece,
            rotation=state.rotation,
            queue=state.queue,
            hold=state.hold,
            can_hold=state.can_hold,
            action_mask=self.action_mask(state),
            placements=self.placements(state) if self.placement_features else None,
        )

    def _timestep(self, state: State, flags: _Flags) -> TimeStep:
        metrics = {
            "lines_cleared": flags.lines,
            "total_lines": state.total_lines,
            "pieces_placed": state.pieces_placed,
            "score": state.score,
            "steps": state.steps,
        }
        return TimeStep(
            self.observation(state),
            flags.reward,
            flags.is_first,
            flags.is_last,
            flags.is_terminal,
            metrics,
        )
