"""The pooling script joins evaluations of one checkpoint on other seeds, and refuses others."""

from __future__ import annotations

import json

import pytest

from tests.experiments.conftest import load_script


def _module():
    return load_script("pool_evals")


def _eval(tmp_path, name, source, seed, lines, step=100, cap=10000):
    games = {
        "lines": lines,
        "pieces": [3 * v + 10 for v in lines],
        "score": [100 * v for v in lines],
        "capped": [False] * len(lines),
    }
    path = tmp_path / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "step": step,
                "source": source,
                "max_pieces": cap,
                "seed": seed,
                "episodes": len(lines),
                "rows": [{"policy": "agent (greedy)", "games": games}],
                "backend": "cpu",
                "jax": "0",
            }
        )
    )
    return str(path)


def test_pool_joins_seeds_and_the_same_export_from_two_clones(tmp_path):
    mod = _module()
    a = _eval(tmp_path, "a", "/work/snapA/docs/results/params/x", 1, [10, 20])
    b = _eval(tmp_path, "b", "/work/snapB/docs/results/params/x", 2, [30, 40, 50])
    r = mod.pool([a, b])
    stats = r["rows"][0]["stats"]
    assert stats["games"] == 5 and stats["lines_mean"] == pytest.approx(30.0)
    assert r["seeds"] == [1, 2] and r["episodes"] == [2, 3] and len(r["sources"]) == 2


@pytest.mark.parametrize(
    "source, seed, step, needle",
    [
        ("/work/snapB/docs/results/params/y", 2, 100, "source"),  # Another export.
        ("/work/snapA/runs/x", 2, 100, "source"),  # Not an export: the full path must match.
        ("/work/snapA/docs/results/params/x", 1, 100, "seeds repeat"),  # The same games.
        ("/work/snapA/docs/results/params/x", 2, 200, "step"),
    ],
)
def test_pool_refuses_other_checkpoints_and_repeated_seeds(tmp_path, source, seed, step, needle):
    mod = _module()
    a = _eval(tmp_path, "a", "/work/snapA/docs/results/params/x", 1, [10, 20])
    b = _eval(tmp_path, "b", source, seed, [30], step=step)
    with pytest.raises(SystemExit, match=needle):
        mod.pool([a, b])
