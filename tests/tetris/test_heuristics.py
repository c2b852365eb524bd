"""Heuristic features and controllers against the plain numpy reference (features_reference).

Compiles are the cost on a 2-core CPU: each test module-scoped fixture compiles one function and
the tests share it.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tetris_jax import Tetris, heuristics
from tetris_jax import board as bb

sys.path.insert(0, os.path.dirname(__file__))
import features_reference as ref  # noqa: E402

HEURISTICS = ("dellacherie", "el_tetris", "bcts")


# ----- random boards -----


def random_boards(
    rng: np.random.Generator, n: int, rows: int, width: int, full_rows: bool = True
) -> np.ndarray:
    """(n, rows, width) bool grids, row 0 at the top: empty boards, stacks with holes,
    overhangs, deep wells, near-full boards, random noise, and (if full_rows) full rows."""
    out = np.zeros((n, rows, width), bool)
    for i in range(n):
        kind = i % 7
        g = out[i]
        if kind == 0 and i < 7:
            continue  # Empty.
        top = rng.integers(0, rows + 1, width)
        if kind == 6 or kind == 0:
            top = rng.integers(0, max(2, rows // 3), width)  # Low stacks.
        for c in range(width):
            g[rows - top[c] :, c] = True
        if kind in (1, 6):  # Holes under the surface.
            g &= rng.random((rows, width)) > 0.25
            for c in range(width):  # Keep each column's top cell so the holes are covered.
                if top[c]:
                    g[rows - top[c], c] = True
        elif kind == 2:  # Noise at a random density: overhangs, floating cells.
            g[:] = rng.random((rows, width)) < rng.uniform(0.1, 0.9)
        elif kind == 3:  # Near-full rows with one gap each (wells and holes), noise on top.
            k = rng.integers(1, rows)
            g[:] = False
            g[rows - k :] = True
            g[np.arange(rows - k, rows), rng.integers(0, width, k)] = False
            g[: rows - k] = rng.random((rows - k, width)) < 0.2
        elif kind == 4:  # Deep wells: columns cut down to the floor or to a low height.
            for c in rng.choice(width, size=rng.integers(1, 4), replace=False):
                g[: rows - rng.integers(0, 3), c] = False
        elif kind == 5 and rng.random() < 0.5:  # Nearly full to the top.
            g[:] = rng.random((rows, width)) < 0.9
        if not full_rows:
            for r in np.flatnonzero(g.all(axis=1)):
                g[r, rng.integers(0, width)] = False
    return out


def to_cols(grids: np.ndarray) -> np.ndarray:
    """(..., rows, width) grids -> (..., width) uint32 bitboard columns (bit k = row k up)."""
    rows = grids.shape[-2]
    weights = (np.uint64(1) << np.arange(rows - 1, -1, -1, dtype=np.uint64))[:, None]
    return (grids.astype(np.uint64) * weights).sum(-2).astype(np.uint32)


# ----- board features -----


@pytest.mark.parametrize("rows,width,n", [(20, 10, 420), (6, 4, 140)])
def test_board_features_match_reference(rows, width, n):
    grids = random_boards(np.random.default_rng(rows), n, rows, width)

    @jax.jit
    @jax.vmap
    def features(cols):
        c = bb.split(cols)
        return {
            "row_transitions": bb.row_transitions(c, rows),
            "column_transitions": bb.column_transitions(c, rows),
            "holes": bb.holes(c),
            "well_sums": bb.well_sums(c, rows),
            "hole_depth": bb.hole_depth(c, rows),
            "rows_with_holes": bb.rows_with_holes(c, rows),
            "aggregate_height": sum(bb.heights(c)),
            "bumpiness": bb.bumpiness(bb.heights(c)),
            "max_height": jnp.max(jnp.stack(bb.heights(c)), 0),
        }

    got = jax.device_get(features(jnp.asarray(to_cols(grids))))
    for name, fn in ref.BOARD_FEATURES.items():
        want = fn(grids)
        bad = np.flatnonzero(got[name] != want)
        assert bad.size == 0, (
            name,
            bad[:5],
            got[name][bad[:5]],
            want[bad[:5]],
            grids[bad[0]].astype(int),
        )


def test_reference_features_by_hand():
    """The reference itself on a board checked by hand (row 0 at the top)."""
    g = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 0, 1]], bool)
    assert ref.holes(g) == 2  # (3, 0) and (4, 2).
    assert ref.row_transitions(g) == 2 + 2 + 4 + 4 + 2
    assert ref.column_transitions(g) == 3 + 1 + 3 + 1  # Floor filled, above the board empty.
    # Wells: (3,0) 1; (2,1) 1; (4,2) 1; (2,3) 1 + the empty (3,3) below; (3,3) 1.
    assert ref.well_sums(g) == 1 + 1 + 1 + 2 + 1
    assert ref.hole_depth(g) == 2 + 2
    assert ref.rows_with_holes(g) == 2


# ----- placements and controllers -----


@pytest.fixture(scope="module")
def placement_case():
    """Random 12x10 boards x all 7 pieces, analysed by one compiled function."""
    env = Tetris(height=12, width=10, randomizer="uniform", queue_size=0)
    grids = random_boards(np.random.default_rng(7), 42, env.height, env.width, full_rows=False)
    grids = np.repeat(grids, 7, axis=0)
    piece = np.tile(np.arange(7), len(grids) // 7)
    state, _ = env.reset(jax.random.key(0))
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (len(grids),) + x.shape), state)
    states = states.replace(cols=jnp.asarray(to_cols(grids)), piece=jnp.asarray(piece, jnp.int32))

    @jax.jit
    @jax.vmap
    def analyse(s, key):
        features, valid = heuristics.placement_features(env, s)
        actions = {n: heuristics.make_policy(env, n)(s, None) for n in HEURISTICS}
        random = jax.vmap(lambda k: heuristics.random_policy(env, s, k))
        actions["random"] = random(jax.random.split(key, 256))
        return features, valid, env.action_mask(s), actions

    return (
        env,
        grids,
        piece,
        jax.device_get(analyse(states, jax.random.split(jax.random.key(3), len(grids)))),
    )


def test_placement_features_match_reference(placement_case):
    env, grids, piece, (features, valid, mask, _) = placement_case
    assert valid.any(axis=1).mean() > 0.5 and (~valid).all(axis=1).any()  # Both cases covered.
    for i in range(len(grids)):
        want, want_valid = ref.placement_features(grids[i], int(piece[i]))
        np.testing.assert_array_equal(valid[i], want_valid, err_msg=f"valid, case {i}")
        # With no valid placement the env's mask falls back to every distinct placement.
        if want_valid.any():
            np.testing.assert_array_equal(mask[i], want_valid, err_msg=f"mask, case {i}")
        for name in ref.FEATURES:
            np.testing.assert_array_equal(
                features[name][i][want_valid], want[name][want_valid], err_msg=f"{name}, case {i}"
            )


@pytest.mark.parametrize("name", HEURISTICS)
def test_controller_plays_reference_argmax(placement_case, name):
    env, grids, piece, (*_, actions) = placement_case
    weights = heuristics.WEIGHTS[name]
    for i in range(len(grids)):
        scores = ref.scores(grids[i], int(piece[i]), weights)
        a = int(actions[name][i])
        if not np.isfinite(scores).any():
            assert a == 0, (i, a)  # Every placement tops out: action 0, the game ends anyway.
        elif name == "dellacherie":  # Integer and half-integer sums: exact in float32.
            assert a == int(np.argmax(scores)), (i, a, scores)
        else:  # float32 sums may break near-ties differently from float64.
            best = scores.max()
            assert scores[a] >= best - 1e-5 * max(1.0, abs(best)), (i, a, scores[a], best)


def test_random_policy_uniform_over_mask(placement_case):
    """256 random actions per board: all allowed, and uniform (a pooled chi-square)."""
    *_, (_, _, mask, actions) = placement_case
    samples = actions["random"]
    assert samples.shape == (len(mask), 256)
    assert np.take_along_axis(mask, samples, axis=1).all()
    chi2, dof = 0.0, 0
    for m, a in zip(mask, samples, strict=True):
        counts = np.bincount(a, minlength=m.size)[m]
        expected = a.size / m.sum()
        chi2 += ((counts - expected) ** 2 / expected).sum()
        dof += m.sum() - 1
    assert abs(chi2 - dof) < 5 * np.sqrt(2 * dof), (chi2, dof)


def test_weights_match_tetris_facts():
    """Transcribed again from shared/TETRIS_FACTS.md's table, to catch typos."""
    order = (
        "landing_height",
        "eroded_cells",
        "row_transitions",
        "column_transitions",
        "holes",
        "well_sums",
        "hole_depth",
        "rows_with_holes",
    )
    table = {
        "dellacherie": (-1, 1, -1, -1, -4, -1, None, None),
        "el_tetris": (
            -4.500158825082766,
            3.4181268101392694,
            -3.2178882868487753,
            -9.348695305445199,
            -7.899265427351652,
            -3.3855972247263626,
            None,
            None,
        ),
        "bcts": (-12.63, 6.60, -9.22, -19.77, -13.08, -10.49, -1.61, -24.04),
    }
    for name, row in table.items():
        want = {k: w for k, w in zip(order, row, strict=True) if w is not None}
        if name == "el_tetris":  # Lines removed instead of eroded cells.
            want["lines"] = want.pop("eroded_cells")
        assert heuristics.WEIGHTS[name] == want, name


def test_bad_arguments():
    with pytest.raises(ValueError, match="action_mode"):
        heuristics.make_policy(Tetris(action_mode="direct"), "dellacherie")
    env = Tetris(height=6, width=4)
    with pytest.raises(ValueError, match="name='nope'"):
        heuristics.make_policy(env, "nope")
    with pytest.raises(ValueError, match="max_pieces"):
        heuristics.play(env, "dellacherie", jax.random.key(0), 2, 0)
    with pytest.raises(ValueError, match="unknown features"):
        heuristics.placement_scores(env, env.reset(jax.random.key(0))[0], {"height": 1.0})


# ----- whole games -----


def piece_streams(env: Tetris, keys: jax.Array, length: int) -> np.ndarray:
    """(games, length) pieces each game from env.reset(keys[i]) is dealt, whatever is played:
    steps an always-empty board (the stream depends only on the seed and the step count)."""

    @jax.jit
    def run(keys):
        states, _ = jax.vmap(env.reset)(keys)

        def body(s, _):
            s = s.replace(cols=jnp.zeros_like(s.cols))
            return jax.vmap(env.step)(s, jnp.zeros(len(keys), jnp.int32))[0], s.piece

        return jax.lax.scan(body, states, None, length=length)[1].T

    return np.asarray(run(keys))


def test_dellacherie_games_match_reference_and_beat_random():
    """10 wide x 6 tall, uniform pieces: short games that end by topping out, played
    identically by the compiled controller and the numpy reference on the same pieces."""
    env = Tetris(height=6, width=10, randomizer="uniform", queue_size=0)
    key, games, cap = jax.random.key(1), 8, 400
    della = jax.device_get(heuristics.play(env, "dellacherie", key, games, cap))
    streams = piece_streams(env, heuristics.game_keys(key, games), cap)
    controller = ref.heuristic(heuristics.WEIGHTS["dellacherie"])
    for i in range(games):
        want = ref.play(env.height, env.width, streams[i], controller, cap)
        got = (int(della.lines[i]), int(della.pieces[i]), bool(della.capped[i]))
        assert got == want, (i, got, want)
    assert not della.capped.all()  # Some games end, so top-out is compared too.
    # Random placements on the same pieces (the compiled random player: see the slow test).
    rand = ref.random_controller(np.random.default_rng(0))
    rand_lines = [ref.play(env.height, env.width, s, rand, cap)[0] for s in streams]
    assert della.lines.mean() > 10 * max(1.0, np.mean(rand_lines)), (della.lines, rand_lines)


@pytest.mark.slow
def test_heuristics_on_10x12_match_reference_and_beat_random():
    """The issue's check: 10 wide x 12 tall, uniform pieces, 2000-piece cap."""
    env = Tetris(height=12, width=10, randomizer="uniform", queue_size=0)
    key, games, cap = jax.random.key(2), 32, 2000
    rand = jax.device_get(heuristics.play(env, "random", key, games, cap))
    della = jax.device_get(heuristics.play(env, "dellacherie", key, games, cap))
    assert rand.lines.mean() < 5 and not rand.capped.any(), rand
    assert della.lines.mean() > 300, della.lines  # At most 0.4 lines per piece: 800 here.
    streams = piece_streams(env, heuristics.game_keys(key, games), cap)
    controller = ref.heuristic(heuristics.WEIGHTS["dellacherie"])
    for i in range(3):
        want = ref.play(env.height, env.width, streams[i], controller, cap)
        got = (int(della.lines[i]), int(della.pieces[i]), bool(della.capped[i]))
        assert got == want, (i, got, want)
    for name in ("el_tetris", "bcts"):
        result = jax.device_get(heuristics.play(env, name, key, games, cap))
        assert result.lines.mean() > 300, (name, result.lines)


# ----- the environment's `placements` observation field -----


def test_placements_observation_matches_reference():
    """`Tetris(placement_features=True)`: the observed features of every placement are the
    reference's (exact in float16) where the placement is valid, zero elsewhere, on the boards
    of random games."""
    env = Tetris(height=12, width=6, randomizer="uniform", queue_size=1, placement_features=True)
    spec = env.observation_spec()["placements"]
    assert spec.shape == (env.num_actions, len(ref.FEATURES)) and spec.kind == "action_features"
    assert heuristics.FEATURES == ref.FEATURES

    @jax.jit
    def rollout(key):
        def body(state, k):
            action = heuristics.random_policy(env, state, k)
            obs = env.observation(state)
            state, _ = env.auto_reset_step(state, action)
            return state, (obs.board, obs.piece, obs.placements)

        state, _ = env.reset(key)
        return jax.lax.scan(body, state, jax.random.split(key, 120))[1]

    boards, piece, placements = jax.device_get(rollout(jax.random.key(5)))
    assert placements.dtype == np.float16
    assert boards.any(axis=(1, 2)).mean() > 0.5  # Mostly non-empty boards.
    for i in range(len(boards)):
        want, valid = ref.placement_features(boards[i], int(piece[i]))
        x = placements[i].astype(np.float64)
        np.testing.assert_array_equal(x[~valid], 0.0, err_msg=f"invalid placements, step {i}")
        for j, name in enumerate(ref.FEATURES):
            np.testing.assert_array_equal(
                x[valid, j], want[name][valid], err_msg=f"{name}, step {i}"
            )


def test_placement_features_need_placement_mode():
    with pytest.raises(ValueError, match="placement_features"):
        Tetris(action_mode="direct", placement_features=True)
    with pytest.raises(ValueError, match="placement_features"):
        Tetris(placement_features=1)
    assert "placements" not in Tetris().observation_spec()
    assert Tetris().observation(Tetris().reset(jax.random.key(0))[0]).placements is None
