"""Invariants over thousands of random games (256 envs x 200 steps per configuration, with
auto-reset), in both action modes and both reward modes, on small 8x6 boards."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tetris import harness as h
from tests.tetris import reference as ref_lib

CONFIGS = list(h.SMALL)
PLACEMENT = [k for k in CONFIGS if h.SMALL[k].action_mode == "placement"]
DIRECT = [k for k in CONFIGS if h.SMALL[k].action_mode == "direct"]
LINES_ONLY = [k for k in CONFIGS if h.SMALL[k].reward_mode == "lines_only"]
STANDARD = [k for k in CONFIGS if h.SMALL[k].reward_mode == "standard"]
BAG = [k for k in CONFIGS if h.SMALL[k].randomizer == "7bag"]
UNIFORM = [k for k in CONFIGS if h.SMALL[k].randomizer == "uniform"]
CAPPED = [k for k in CONFIGS if h.SMALL[k].max_steps is not None]


def roll(name: str) -> dict:
    return h.rollout(h.SMALL[name])


def stepped(r: dict) -> np.ndarray:
    """(T, B) mask of frames t >= 1 produced by a step of the same episode (not a reset)."""
    return ~r["is_first"][1:]


def where_fails(mask: np.ndarray, r: dict, t_offset: int = 1) -> str:
    t, b = np.argwhere(mask)[0]
    t = t + t_offset
    return (
        f"{mask.sum()} frames; first at step {t}, env {b}, action {r['action'][t, b]}:\n"
        f"before:\n{h.ascii_grid(r['board'][t - 1, b], r['active'][t - 1, b])}\n"
        f"after:\n{h.ascii_grid(r['board'][t, b], r['active'][t, b])}"
    )


@pytest.mark.parametrize("name", CONFIGS)
def test_rollouts_play_many_games_without_retracing(name):
    r = roll(name)
    episodes = r["is_last"].sum()
    assert episodes >= 1000, f"only {episodes} episodes ended"
    assert r["lines_cleared"].sum() > 50, "random play should clear some lines"
    # Every step of every rollout reused one trace of jit(vmap(auto_reset_step)).
    assert len(h.batched(h.SMALL[name]).traces) == 1


@pytest.mark.parametrize("name", CONFIGS)
def test_cells_are_conserved(name):
    """Locked cells after a step = before + 4 per locked piece - width per cleared line."""
    r, width = roll(name), h.SMALL[name].width
    cells = r["board"].sum((-2, -1))
    placed = np.diff(r["pieces_placed"], axis=0)
    ok = stepped(r)
    assert set(np.unique(placed[ok])) <= {0, 1}
    expected = cells[:-1] + 4 * placed - width * r["lines_cleared"][1:]
    bad = ok & (cells[1:] != expected)
    assert not bad.any(), where_fails(bad, r)
    assert (r["lines_cleared"][1:][ok & (placed == 0)] == 0).all()


@pytest.mark.parametrize("name", CONFIGS)
def test_no_full_row_survives(name):
    r = roll(name)
    full = r["board"].all(-1).any(-1)
    assert not full.any(), where_fails(full[1:], r)


@pytest.mark.parametrize("name", CONFIGS)
def test_active_piece_has_four_cells_and_never_overlaps(name):
    """The active plane always shows the 4 cells of the current piece. In direct mode, outside
    a game-over frame (block out: the new piece overlaps the stack) they never overlap locked
    cells (placement mode shows the piece at its spawn, off the board)."""
    r = roll(name)
    assert (r["active"].sum((-2, -1)) == 4).all()
    if h.SMALL[name].action_mode == "placement":
        return
    overlap = (r["active"] & r["board"]).any((-2, -1)) & ~r["is_terminal"]
    assert not overlap.any(), where_fails(overlap[1:], r)


def distinct_placements(piece: int, width: int) -> np.ndarray:
    """(4 * width,) bool: placements that are not a repeat of a lower-numbered one (same
    cells as an earlier rotation, or a column past the last one where the piece fits)."""
    out = np.zeros(4 * width, bool)
    shapes = [ref_lib.shape(piece, r) for r in range(4)]
    for r, s in enumerate(shapes):
        if s not in shapes[:r]:
            out[r * width : (r + 1) * width - max(c for _, c in s)] = True
    return out


@pytest.mark.parametrize("name", PLACEMENT)
def test_action_mask_never_empty_and_masks_top_outs(name):
    """The mask is never empty, only marks distinct placements, and a masked placement tops
    out only when every placement does (then the mask falls back to all distinct ones)."""
    r, width = roll(name), h.SMALL[name].width
    mask = r["action_mask"]
    assert mask.any(-1).all()
    distinct = np.stack([distinct_placements(p, width) for p in range(7)])[r["piece"]]
    assert not (mask & ~distinct).any()
    action = r["action"][1:]
    in_range = (action >= 0) & (action < mask.shape[-1])
    index = np.clip(action, 0, mask.shape[-1] - 1)[..., None]
    chosen = np.take_along_axis(mask[:-1], index, -1)[..., 0]
    died = stepped(r) & in_range & chosen & r["is_terminal"][1:]
    fallback = (mask == distinct).all(-1)[:-1]
    assert died.sum() > 100  # Random play often reaches boards where every placement dies.
    assert not (died & ~fallback).any(), where_fails(died & ~fallback, r)


@pytest.mark.parametrize("name", PLACEMENT)
def test_board_step_is_the_step_of_a_board_alone(name):
    """`Tetris.board_step(board, piece, action)` (the real rules without a state, for the
    board-oracle diagnostic) gives every stepped frame's board, reward and game over, on
    random games (out-of-range actions included), in the standard reward with its shaping;
    and on lines_only 10x20 games."""
    import jax

    r, env = roll(name), h.env_of(h.SMALL[name])
    board, reward, over = jax.jit(env.board_step)(r["board"][:-1], r["piece"][:-1], r["action"][1:])
    ok = stepped(r)
    assert ok.sum() > 10_000 and r["is_terminal"][1:][ok].sum() > 100
    wrong = ok & ~(np.asarray(board) == r["board"][1:]).all((-1, -2))
    assert not wrong.any(), where_fails(wrong, r)
    np.testing.assert_allclose(np.asarray(reward)[ok], r["reward"][1:][ok], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(over)[ok], r["is_terminal"][1:][ok])
    assert (r["lines_cleared"][1:][ok] > 0).sum() > 100  # Line clears are among them.

    full = h.PLACEMENT
    lines_env = h.env_of(full)
    frames = h.rollout(full, 64, 150)
    board, reward, over = jax.jit(lines_env.board_step)(
        frames["board"][:-1], frames["piece"][:-1], frames["action"][1:]
    )
    ok = ~frames["is_first"][1:]
    assert (np.asarray(board) == frames["board"][1:]).all((-1, -2))[ok].all()
    np.testing.assert_array_equal(np.asarray(reward)[ok], frames["reward"][1:][ok])
    np.testing.assert_array_equal(np.asarray(over)[ok], frames["is_terminal"][1:][ok])
    with pytest.raises(ValueError, match="board_step.*shape"):
        lines_env.board_step(frames["board"][0, :, :5], frames["piece"][0], frames["action"][1])
    with pytest.raises(ValueError, match="board_step.*placement mode"):
        h.tetris_jax.Tetris(action_mode="direct").board_step(
            frames["board"][0], frames["piece"][0], frames["action"][1]
        )


@pytest.mark.parametrize("name", DIRECT)
def test_direct_mask_allows_hold_only_when_possible(name):
    r = roll(name)
    mask = r["action_mask"]
    assert mask[..., :7].all()
    np.testing.assert_array_equal(mask[..., 7], r["can_hold"])


@pytest.mark.parametrize("name", CONFIGS)
def test_episode_lines_and_flags(name):
    """Per episode: the sum of lines_cleared is total_lines; lines_only rewards are the lines
    (so the return equals total_lines); is_terminal implies is_last; is_first follows is_last."""
    cfg, r = h.SMALL[name], roll(name)
    assert not (r["is_terminal"] & ~r["is_last"]).any()
    np.testing.assert_array_equal(r["is_first"][1:], r["is_last"][:-1])
    assert r["is_first"][0].all()
    ok = stepped(r)
    lines = np.where(ok, r["lines_cleared"][1:], 0)
    ret = np.where(ok, r["reward"][1:], 0)
    sum_lines = np.zeros(r["piece"].shape[1], int)
    sum_ret = np.zeros(r["piece"].shape[1])
    for t in range(lines.shape[0]):
        sum_lines = np.where(r["is_first"][t + 1], 0, sum_lines + lines[t])
        sum_ret = np.where(r["is_first"][t + 1], 0, sum_ret + ret[t])
        np.testing.assert_array_equal(sum_lines, r["total_lines"][t + 1])
        if cfg.reward_mode == "lines_only":
            np.testing.assert_array_equal(sum_ret, r["total_lines"][t + 1])
    if cfg.reward_mode == "lines_only":
        np.testing.assert_array_equal(r["reward"][1:][ok], r["lines_cleared"][1:][ok])


@pytest.mark.parametrize("name", STANDARD)
def test_standard_reward_is_lines_plus_shaping_minus_penalty(name):
    cfg, r = h.SMALL[name], roll(name)
    env = h.env_of(cfg)
    phi = np.vectorize(lambda t, b: ref_lib.potential(r["board"][t, b], env.shaping))
    idx = np.indices(r["piece"].shape)
    potential = phi(idx[0], idx[1])
    placed = np.diff(r["pieces_placed"], axis=0)
    assert env.piece_reward and placed.max() == 1  # The survival term is exercised.
    expected = (
        r["lines_cleared"][1:]
        + env.shaping_gamma * potential[1:]
        - potential[:-1]
        - env.game_over_penalty * r["is_terminal"][1:]
        + env.piece_reward * placed
    )
    ok = stepped(r)
    np.testing.assert_allclose(r["reward"][1:][ok], expected[ok], atol=2e-4)
    assert (r["reward"][r["is_first"]] == 0).all()
    # Shaping makes the rewards dense: most steps that place a piece are rewarded.
    assert (r["reward"][1:][ok] != 0).mean() > 0.1


@pytest.mark.parametrize("name", CONFIGS)
def test_truncation_only_at_max_steps(name):
    cfg, r = h.SMALL[name], roll(name)
    truncated = r["is_last"] & ~r["is_terminal"]
    if cfg.max_steps is None:
        assert not truncated.any()
        return
    assert truncated.sum() >= 10, "the cap should cut some games"
    np.testing.assert_array_equal(truncated, (r["steps"] == cfg.max_steps) & ~r["is_terminal"])
    assert (r["steps"] <= cfg.max_steps).all()
    assert (r["is_last"][r["steps"] == cfg.max_steps]).all()


@pytest.mark.parametrize("name", CONFIGS)
def test_auto_reset_keeps_the_terminal_frame(name):
    """The frame with is_last shows the finished game; the next one is a fresh game with
    is_first, reward 0 and zeroed metrics."""
    r = roll(name)
    last = r["is_last"][:-1]
    nxt = {k: v[1:][last] for k, v in r.items()}
    assert nxt["is_first"].all() and not nxt["is_last"].any()
    assert (nxt["reward"] == 0).all() and (nxt["lines_cleared"] == 0).all()
    for key in ("steps", "total_lines", "pieces_placed", "score"):
        assert (nxt[key] == 0).all(), key
    assert not nxt["board"].any()
    assert (nxt["hold"] == ref_lib.EMPTY_HOLD).all()
    # The terminal frame is the game's own last frame, not the new game.
    ended = {k: v[:-1][last] for k, v in r.items()}
    assert (ended["steps"] > 0).all() and not ended["is_first"].any()
    assert (ended["board"].sum((-2, -1)) > 0).all()
    if h.SMALL[name].action_mode == "placement":  # A top-out leaves the board as it was.
        top_out = r["is_terminal"][1:]
        np.testing.assert_array_equal(r["board"][1:][top_out], r["board"][:-1][top_out])


@pytest.mark.parametrize("name", BAG)
def test_7bag_every_bag_is_a_permutation(name):
    episodes = h.piece_draws(roll(name))
    bags = 0
    for seq in episodes:
        for i in range(0, len(seq), 7):
            bag = seq[i : i + 7]
            assert len(set(bag)) == len(bag), (seq, i)
            bags += len(bag) == 7
    assert bags > 1000
    # Bags differ between games: the order is random.
    firsts = {tuple(seq[:7]) for seq in episodes if len(seq) >= 7}
    assert len(firsts) > 500


@pytest.mark.parametrize("name", UNIFORM)
def test_uniform_pieces_are_equally_likely(name):
    episodes = h.piece_draws(roll(name))
    counts = np.bincount(np.concatenate(episodes), minlength=7)
    n = counts.sum()
    assert n > 20_000
    chi2 = ((counts - n / 7) ** 2 / (n / 7)).sum()
    assert chi2 < 30, (counts, chi2)  # 6 degrees of freedom: P(chi2 > 30) ~ 4e-5.
    # Not a bag: some aligned groups of 7 repeat a piece.
    repeats = sum(len(set(s[i : i + 7])) < 7 for s in episodes for i in range(0, len(s) - 6, 7))
    assert repeats > 100
