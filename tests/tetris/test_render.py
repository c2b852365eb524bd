"""Text and RGB rendering, GIF writing and episode recording."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from tetris_jax import Tetris, heuristics, pieces, render
from tetris_jax.types import EMPTY_HOLD

ENVS = {
    "placement": Tetris(height=8, width=6, queue_size=3),
    "direct": Tetris(height=8, width=6, action_mode="direct", queue_size=2),
}


def states_on_random_boards(env: Tetris, n: int, seed: int = 0):
    """Unbatched states on random boards with every piece, rotation and hold value."""
    rng = np.random.default_rng(seed)
    base, _ = env.reset(jax.random.key(seed))
    out = []
    for i in range(n):
        board = rng.random((env.height, env.width)) < rng.uniform(0, 0.7)
        piece, rotation = i % 7, (i // 7) % 4
        cells = pieces.CELLS[piece, rotation]
        x = rng.integers(-cells[:, 0].min(), env.width - cells[:, 0].max())
        y = rng.integers(-cells[:, 1].min(), env.rows - cells[:, 1].max())
        out.append(
            base.replace(
                cols=render_cols(board, env.rows),
                piece=jnp.int32(piece),
                rotation=jnp.int32(rotation),
                x=jnp.int32(x),
                y=jnp.int32(y),
                hold=jnp.int32([EMPTY_HOLD, *range(7)][i % 8]),
                queue=jnp.asarray(rng.integers(0, 7, env.queue_size), jnp.int32),
            )
        )
    return out


def render_cols(board: np.ndarray, rows: int) -> jax.Array:
    """Visible (height, width) board -> uint32 columns of a grid with `rows` rows."""
    height = board.shape[0]
    weights = np.uint64(1) << np.arange(height - 1, -1, -1, dtype=np.uint64)
    return jnp.asarray((board * weights[:, None]).sum(0).astype(np.uint32))


def expected_grids(env: Tetris, state) -> tuple[np.ndarray, np.ndarray]:
    locked = np.asarray(state.grid)
    active = np.zeros_like(locked)
    for dx, dy in pieces.CELLS[int(state.piece), int(state.rotation)]:
        active[env.rows - 1 - (int(state.y) + dy), int(state.x) + dx] = True
    return locked, active


@pytest.mark.parametrize("mode", ENVS)
def test_ascii_cells_queue_and_hold(mode):
    env = ENVS[mode]
    for state in states_on_random_boards(env, 32):
        text = render.render_ascii(env, state).splitlines()
        assert len(text) == env.rows + 2, text
        locked, active = expected_grids(env, state)
        letter = pieces.NAMES[int(state.piece)]
        for r in range(env.rows):
            edge = ":" if r < env.hidden_rows else "|"
            row = text[r]
            assert row[0] == edge and row[env.width + 1] == edge, (r, row)
            want = "".join(
                letter if active[r, c] else "#" if locked[r, c] else "." for c in range(env.width)
            )
            assert row[1 : env.width + 1] == want, (r, row, want)
        joined = "\n".join(text)
        assert "next  " + " ".join(pieces.NAMES[int(p)] for p in state.queue) in joined
        hold = int(state.hold)
        assert "hold  " + ("-" if hold == EMPTY_HOLD else pieces.NAMES[hold]) in joined
        assert text[-1].startswith("score 0  lines 0  pieces 0  steps 0"), text[-1]


@pytest.mark.parametrize("mode", ENVS)
@pytest.mark.parametrize("cell", [16, 5])
def test_rgb_shape_and_cell_colours(mode, cell):
    env = ENVS[mode]
    half = cell // 2
    shape = (
        max(env.rows * cell, 3 * half * (1 + env.queue_size) + half),
        env.width * cell + 6 * half,
        3,
    )
    for state in states_on_random_boards(env, 16, seed=1):
        img = render.render_rgb(env, state, cell=cell)
        assert img.shape == shape and img.dtype == np.uint8, (img.shape, img.dtype)
        locked, active = expected_grids(env, state)
        centres = img[cell // 2 : env.rows * cell : cell, cell // 2 : env.width * cell : cell]
        want = np.where(locked[..., None], render.LOCKED, render.EMPTY)
        want[: env.hidden_rows][~locked[: env.hidden_rows]] = render.HIDDEN
        want[active] = render.COLORS[int(state.piece)]
        np.testing.assert_array_equal(centres, want)
        # The hold slot shows the held piece's colour, or nothing.
        slot = img[half : 3 * half, env.width * cell + half : env.width * cell + 5 * half]
        held = int(state.hold)
        if held == EMPTY_HOLD:
            assert (slot == render.PANEL).all()
        else:
            assert (slot == render.COLORS[held]).all(-1).sum() == 4 * (cell // 2) ** 2


def test_rejects_batched_state_and_bad_cell():
    env = ENVS["placement"]
    state, _ = env.reset(jax.random.key(0))
    batch = jax.tree.map(lambda x: jnp.stack([x, x]), state)
    with pytest.raises(ValueError, match="unbatched"):
        render.render_ascii(env, batch)
    with pytest.raises(ValueError, match="cell=1"):
        render.render_rgb(env, state, cell=1)


def test_record_episode_and_gif(tmp_path):
    env = Tetris(height=6, width=5, randomizer="uniform", queue_size=2)
    policy = heuristics.make_policy(env, "random")
    states = render.record_episode(env, policy, jax.random.key(0), max_steps=200)
    assert 2 <= len(states) <= 201 and states[-1].done and not states[-2].done
    assert [int(s.steps) for s in states] == list(range(len(states)))
    # The cap: a short episode stops after max_steps steps, not done.
    short = render.record_episode(env, policy, jax.random.key(0), max_steps=2)
    assert len(short) == 3 and not short[-1].done

    path = tmp_path / "episode.gif"
    render.save_gif(states, str(path), fps=20, env=env, cell=8)
    frames = [render.render_rgb(env, s, cell=8) for s in states]
    # Pillow merges identical consecutive frames.
    distinct = 1 + sum((a != b).any() for a, b in zip(frames[:-1], frames[1:], strict=True))
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == distinct
        assert gif.size == (frames[0].shape[1], frames[0].shape[0])
        assert gif.info["duration"] == 50
        first = np.asarray(gif.convert("RGB"))
    # GIF palettes are exact for our few colours.
    np.testing.assert_array_equal(first, frames[0])
    with pytest.raises(ValueError, match="env="):
        render.save_gif(states, str(path))
