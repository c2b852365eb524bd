"""play.stats: the 95% interval of lines per game is a bootstrap percentile interval."""

from __future__ import annotations

import numpy as np

from experiments.lib import play
from tetris_jax.rollout import Games


def _games(lines) -> Games:
    lines = np.asarray(lines, np.int32)
    return Games(lines, 3 * lines + 10, 100 * lines, np.zeros(lines.shape, bool))


def test_all_zero_sample_gives_zero_interval():
    s = play.stats(_games([0] * 32))
    assert (s["lines_ci95_low"], s["lines_ci95_high"]) == (0.0, 0.0)


def test_skewed_count_sample_never_goes_below_zero():
    lines = [0] * 30 + [40, 3]  # mean 1.34, sd 7.1: the normal interval would reach -1.1.
    s = play.stats(_games(lines))
    assert s["lines_mean"] - 1.96 * s["lines_std"] / np.sqrt(32) < 0
    assert 0.0 <= s["lines_ci95_low"] <= s["lines_mean"] <= s["lines_ci95_high"]
    assert s["lines_ci95_high"] <= max(lines)


def test_interval_contains_the_mean_and_is_reproducible():
    rng = np.random.default_rng(1)
    for n in (1, 2, 5, 256):
        lines = rng.geometric(0.01, n) - 1
        s = play.stats(_games(lines))
        assert s["lines_ci95_low"] <= s["lines_mean"] <= s["lines_ci95_high"], (n, s)
        assert s == play.stats(_games(lines))  # Fixed seed: the same interval every time.
    # On a large symmetric sample it agrees with the normal approximation.
    x = rng.normal(100.0, 10.0, 2000)
    low, high = play.bootstrap_ci(x)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert abs(low - (x.mean() - half)) < 0.15 and abs(high - (x.mean() + half)) < 0.15


def test_per_game_records_pool_to_the_stats_of_all_their_games():
    a = Games(
        np.array([3, 0, 7]), np.array([10, 4, 20]), np.array([300, 0, 900]), np.array([0, 0, 1]) > 0
    )
    b = Games(np.array([5, 1]), np.array([15, 6]), np.array([500, 100]), np.array([1, 0]) > 0)
    ra, rb = play.per_game(a), play.per_game(b)
    assert ra["lines"] == [3, 0, 7] and ra["capped"] == [False, False, True]
    both = Games(*(np.concatenate([x, y]) for x, y in zip(a, b, strict=True)))
    assert play.pooled([ra, rb]) == play.stats(both)
    assert (
        play.pooled([ra])["lines_mean"]
        == play.stats(a)["lines_mean"]
        != play.pooled([ra, rb])["lines_mean"]
    )
    import pytest

    with pytest.raises(ValueError, match="lacks"):
        play.pooled([{"lines": [1]}])
