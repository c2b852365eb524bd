"""Shared helpers for the tetris_jax tests: compiled env functions cached per configuration,
cached random-play rollouts, and a step-by-step comparison with the numpy reference.

XLA compiles each (configuration, function) once per test process (5-20 s each on a 2-core
CPU), so every test asks for its functions here instead of calling `jax.jit` itself.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

import tetris_jax
from tests.tetris import reference as ref_lib

I, O, T, S, Z, J, L = range(7)  # noqa: E741 (the pieces are named I and O)
NOOP, LEFT, RIGHT, CW, CCW, SOFT_DROP, HARD_DROP, HOLD = range(8)


@dataclasses.dataclass(frozen=True)
class Config:
    """Hashable `Tetris` keyword arguments (shaping stays at its default)."""

    height: int = 20
    width: int = 10
    action_mode: str = "placement"
    reward_mode: str = "lines_only"
    randomizer: str = "7bag"
    queue_size: int = 5
    max_steps: int | None = None
    piece_reward: float = 0.0

    def kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PLACEMENT = Config(action_mode="placement")
DIRECT = Config(action_mode="direct")
# Small boards for random play: games are short, so thousands of them fit in 200 steps.
# Two configurations between them cover both action modes, both reward modes, both
# randomizers and truncation (each costs a compile; lines_only placement play and 7-bag
# placement play are covered by the full-size games in test_env_parity.py).
SMALL = {
    "placement-standard-uniform-cap": Config(
        8, 6, "placement", "standard", "uniform", 2, 9, piece_reward=0.25
    ),
    "direct-lines-7bag-cap": Config(8, 6, "direct", "lines_only", "7bag", 3, 25),
}


@functools.cache
def env_of(cfg: Config) -> tetris_jax.Tetris:
    return tetris_jax.Tetris(**cfg.kwargs())


def reference_of(cfg: Config) -> ref_lib.Reference:
    env = env_of(cfg)
    kwargs = cfg.kwargs()
    del kwargs["randomizer"]  # The reference is handed its pieces.
    return ref_lib.Reference(
        **kwargs,
        shaping=env.shaping,
        shaping_gamma=env.shaping_gamma,
        game_over_penalty=env.game_over_penalty,
    )


@functools.cache
def single(cfg: Config):
    """(reset, step) for one env, jitted."""
    env = env_of(cfg)
    return jax.jit(env.reset), jax.jit(env.step)


@dataclasses.dataclass
class Batched:
    reset: Any
    auto_step: Any
    traces: list  # One entry per trace of `auto_step` (the retrace guard's evidence).


@functools.cache
def batched(cfg: Config) -> Batched:
    """jit(vmap(reset)) and jit(vmap(auto_reset_step)); the latter fails on a second trace."""
    env = env_of(cfg)
    traces = []

    def auto_step(state, action):
        traces.append(1)
        return jax.vmap(env.auto_reset_step)(state, action)

    return Batched(jax.jit(jax.vmap(env.reset)), jax.jit(_guard(auto_step)), traces)


@functools.cache
def single_auto(cfg: Config):
    """(reset, auto_reset_step) for one env, jitted; the latter fails on a second trace."""
    env = env_of(cfg)
    traces = []

    def auto_step(state, action):
        traces.append(1)
        return env.auto_reset_step(state, action)

    return jax.jit(env.reset), jax.jit(_guard(auto_step)), traces


_GUARDED: list[str] = []


def _guard(fn):
    """chex.assert_max_traces(fn, n=1). chex tells functions apart by name and source, so
    each guarded function gets a name of its own."""
    fn.__name__ = f"{fn.__name__}_{len(_GUARDED)}"
    _GUARDED.append(fn.__name__)
    return chex.assert_max_traces(fn, n=1)


def to_frame(ts) -> dict[str, np.ndarray]:
    """A TimeStep as a flat dict of numpy arrays (any batch shape)."""
    ts = jax.device_get(ts)
    out = {k: np.asarray(v) for k, v in ts.observation._asdict().items() if v is not None}
    out.update({k: np.asarray(v) for k, v in ts.metrics.items()})
    for k in ("reward", "is_first", "is_last", "is_terminal"):
        out[k] = np.asarray(getattr(ts, k))
    return out


class RandomPlayer:
    """Random actions for a batch of envs.

    Envs b % 4 == 3 send any integer in a range wider than the action space (the env clips
    out-of-range values). The others play "legal-looking" games: placement picks uniformly
    among the masked placements; direct picks a random target (rotation, column) for each
    new piece, rotates and slides towards it and hard-drops, with a quarter of the actions
    uniformly random (so holds, soft drops and kicks against the stack all happen).
    """

    def __init__(self, cfg: Config, batch: int, seed: int):
        self.cfg, self.batch = cfg, batch
        self.rng = np.random.default_rng(seed)
        self.num = env_of(cfg).num_actions
        self.target = np.zeros((batch, 2), np.int64)
        self.seen = None

    def __call__(self, frame: dict) -> np.ndarray:
        rng, batch = self.rng, self.batch
        if self.cfg.action_mode == "placement":
            scores = np.where(frame["action_mask"], rng.random(frame["action_mask"].shape), -1)
            good = scores.argmax(-1)
        else:
            seen = np.stack([frame["pieces_placed"], frame["piece"], frame["hold"]], -1)
            new = np.ones(batch, bool) if self.seen is None else (seen != self.seen).any(-1)
            new |= frame["is_first"]
            self.seen = seen
            # Half of the targets aim at the lowest column, so that lines get cleared.
            filled = frame["board"].any(axis=-2)
            depth = np.where(filled, frame["board"].argmax(axis=-2), frame["board"].shape[-2])
            low = (depth + rng.random(depth.shape)).argmax(-1)
            col = np.where(rng.random(batch) < 0.5, low, rng.integers(0, self.cfg.width, batch))
            fresh = np.stack([rng.integers(0, 4, batch), col])
            self.target = np.where(new[:, None], fresh.T, self.target)
            left = frame["active"].any(axis=-2).argmax(-1)  # Leftmost column of the piece.
            rot, col = self.target[:, 0], self.target[:, 1]
            good = np.where(
                frame["rotation"] != rot,
                CW,
                np.where(left < col, RIGHT, np.where(left > col, LEFT, HARD_DROP)),
            )
            good = np.where(rng.random(batch) < 0.25, rng.integers(0, 8, batch), good)
        wild = rng.integers(-3, self.num + 3, size=batch)
        return np.where(np.arange(batch) % 4 == 3, wild, good).astype(np.int32)


@functools.cache
def rollout(cfg: Config, batch: int = 256, steps: int = 200, seed: int = 0) -> dict:
    """Random play with auto-reset: frames[t] stacked as (steps + 1, batch, ...) arrays, frame
    0 from reset; "action"[t] (t >= 1) is the action that produced frame t."""
    fns = batched(cfg)
    player = RandomPlayer(cfg, batch, seed)
    state, ts = fns.reset(jax.random.split(jax.random.key(seed), batch))
    frames = [to_frame(ts)]
    actions = [np.zeros(batch, np.int32)]
    for _ in range(steps):
        action = player(frames[-1])
        state, ts = fns.auto_step(state, jnp.asarray(action))
        frames.append(to_frame(ts))
        actions.append(action)
    out = {k: np.stack([f[k] for f in frames]) for k in frames[0]}
    out["action"] = np.stack(actions)
    return out


class GreedyPlayer:
    """A decent one-env player, so that full-size games last long and clear lines: scores
    every placement of the current piece on the reference (aggregate height, holes and
    bumpiness after clearing), then plays it directly (placement mode) or by rotating,
    sliding and hard-dropping (direct mode). A tenth of its moves are random."""

    def __init__(self, cfg: Config, seed: int):
        self.cfg, self.ref = cfg, reference_of(cfg)
        self.rng = np.random.default_rng(seed)
        self.target, self.seen = (0, 0), None

    def best(self, board: np.ndarray, piece: int) -> tuple[int, int]:
        rows, width = board.shape
        surface = np.where(board.any(0), board.argmax(0), rows)  # First filled row.
        best, choice = -np.inf, (0, 0)
        for rotation, column in itertools.product(range(4), range(width)):
            shape = ref_lib.shape(piece, rotation)
            column = min(column, width - 1 - max(c for _, c in shape))
            top = min(surface[column + c] - 1 - r for r, c in shape)  # Rests on the surface.
            if top < self.ref.hidden:
                continue
            cells = [(top + r, column + c) for r, c in shape]
            grid = board.copy()
            for r, c in cells:
                grid[r, c] = True
            grid, _ = ref_lib.clear_full_rows(grid)
            score = -ref_lib.potential(grid, {"aggregate_height": 1, "holes": 4, "bumpiness": 1})
            score += self.rng.random() * 0.5
            if score > best:
                best, choice = score, (rotation, column)
        return choice

    def __call__(self, frame: dict) -> int:
        if self.rng.random() < 0.1:
            return int(self.rng.integers(0, env_of(self.cfg).num_actions))
        seen = (int(frame["pieces_placed"]), int(frame["piece"]), int(frame["steps"]) == 0)
        if seen != self.seen:
            self.seen = seen
            self.target = self.best(frame["board"], int(frame["piece"]))
        rotation, column = self.target
        if self.cfg.action_mode == "placement":
            return rotation * self.cfg.width + column
        left = int(frame["active"].any(axis=0).argmax())
        if int(frame["rotation"]) != rotation:
            return CW
        return RIGHT if left < column else LEFT if left > column else HARD_DROP


def play_single(cfg: Config, player, steps: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    """One env stepped by jit(step) in a Python loop, reset (with the next key) after each
    episode: frames stacked as (steps + 1, 1, ...) arrays like a rollout, and the actions."""
    reset, step = single(cfg)
    empty = jnp.zeros((cfg.height, cfg.width), bool)
    episode = 0
    state, ts = reset(jax.random.key(seed), empty)
    frames, actions = [to_frame(ts)], [0]
    for _ in range(steps):
        if frames[-1]["is_last"]:
            episode += 1
            state, ts = reset(jax.random.fold_in(jax.random.key(seed), episode), empty)
            action = 0
        else:
            action = player(frames[-1])
            state, ts = step(state, jnp.int32(action))
        frames.append(to_frame(ts))
        actions.append(action)
    out = {k: np.stack([f[k] for f in frames])[:, None] for k in frames[0]}
    out["action"] = np.array(actions, np.int32)[:, None]
    return out


def piece_draws(r: dict) -> list[list[int]]:
    """Every env's episodes as the sequence of pieces drawn: the first piece and queue at
    reset, then each step's new queue entries (one per locked or topped-out piece in
    placement mode; one per lock and one per first hold in direct mode)."""
    steps, batch = r["piece"].shape
    direct = r["action_mask"].shape[-1] == 8
    episodes = []
    for b in range(batch):
        seq = None
        for t in range(steps):
            if r["is_first"][t, b]:
                if seq is not None:
                    episodes.append(seq)
                seq = [int(r["piece"][t, b])] + [int(p) for p in r["queue"][t, b]]
                continue
            if direct:
                locked = r["pieces_placed"][t, b] - r["pieces_placed"][t - 1, b]
                first_hold = (r["hold"][t - 1, b] == 7) & (r["hold"][t, b] != 7)
                k = int(locked + first_hold)
            else:
                k = int(not r["is_last"][t - 1, b])
            if k:
                seq += [int(p) for p in r["queue"][t, b, -k:]]
        episodes.append(seq)
    return episodes


# ----- Parity with the numpy reference. -----

COMPARED = (
    "board",
    "active",
    "piece",
    "rotation",
    "queue",
    "hold",
    "can_hold",
    "action_mask",
    "is_first",
    "is_last",
    "is_terminal",
    "lines_cleared",
    "total_lines",
    "pieces_placed",
    "score",
    "steps",
)


def ascii_grid(grid: np.ndarray, active: np.ndarray | None = None) -> str:
    rows = []
    for r in range(grid.shape[0]):
        rows.append(
            "".join(
                "#" if grid[r, c] else "@" if active is not None and active[r, c] else "."
                for c in range(grid.shape[1])
            )
        )
    return "\n".join(rows)


class _Draws:
    """Stands in for the randomizer: hands out placeholders, later replaced by the pieces the
    JAX env actually drew (the tail of its new queue)."""

    PENDING = -1

    def __call__(self) -> int:
        return self.PENDING


def reference_frame(ref: ref_lib.Reference, info: dict) -> dict:
    out = ref.observation()
    out.update(ref.metrics())
    out.update(
        reward=info["reward"],
        is_first=info["is_first"],
        is_last=info["is_last"],
        is_terminal=info["is_terminal"],
        lines_cleared=info["lines"],
    )
    return out


def compare(expected: dict, got: dict, where: str) -> None:
    """Asserts that a JAX frame matches the reference's (rewards up to float32 rounding)."""
    for key in COMPARED:
        e, g = np.asarray(expected[key]), np.asarray(got[key])
        if e.shape != g.shape or not np.array_equal(e.astype(g.dtype), g):
            detail = ""
            if key in ("board", "active"):
                detail = (
                    f"\nreference:\n{ascii_grid(expected['board'], expected['active'])}"
                    f"\njax:\n{ascii_grid(got['board'], got['active'])}"
                )
            raise AssertionError(
                f"{where}: {key} differs: reference {e.tolist()} != jax {g.tolist()}{detail}"
            )
    np.testing.assert_allclose(got["reward"], expected["reward"], atol=2e-4, err_msg=where)


def replay_against_reference(cfg: Config, frames: list[dict], actions) -> int:
    """Steps the reference through one env's frames (frame 0 from reset or a state that is
    `is_first`), feeding it the JAX env's pieces, and compares every frame. Returns the
    number of steps compared."""
    ref = reference_of(cfg)
    draws = _Draws()
    for t, frame in enumerate(frames):
        where = f"{cfg} step {t} action {int(actions[t])}"
        if t == 0 or frame["is_first"]:
            info = ref.reset(int(frame["piece"]), frame["queue"])
        else:
            info = ref.step(int(actions[t]), draws)
            pending = sum(p == draws.PENDING for p in ref.queue)
            assert ref.queue[len(ref.queue) - pending :] == [draws.PENDING] * pending, where
            if pending:
                ref.queue[-pending:] = [int(p) for p in frame["queue"][-pending:]]
        compare(reference_frame(ref, info), frame, where)
    return len(frames)


def unbatch(roll: dict, b: int) -> list[dict]:
    """Env b's frames from a rollout."""
    steps = roll["piece"].shape[0]
    return [{k: v[t, b] for k, v in roll.items()} for t in range(steps)]


# ----- Hand-built states. -----


def parse(picture: str) -> np.ndarray:
    """A board from rows of '.' (empty) and any other character (filled), top row first."""
    rows = [line.strip() for line in picture.strip().splitlines()]
    return np.array([[ch != "." for ch in row] for row in rows], bool)


def board_with(cfg: Config, bottom: str) -> np.ndarray:
    """A (height, width) board whose lowest rows are `bottom`; empty above."""
    rows = parse(bottom)
    board = np.zeros((cfg.height, cfg.width), bool)
    board[cfg.height - len(rows) :] = rows
    return board


def place(state, piece: int, rotation: int, top: int, left: int):
    """The state with its active piece replaced: box top-left at grid (row `top`, col `left`),
    row 0 at the top of the grid (hidden rows included)."""
    rows = state.hidden_rows + state.height
    return state.replace(
        piece=jnp.int32(piece),
        rotation=jnp.int32(rotation),
        x=jnp.int32(left),
        y=jnp.int32(rows - top - ref_lib.box_size(piece)),
    )
