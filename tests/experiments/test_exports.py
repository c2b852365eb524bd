"""Every committed export (docs/results/params/*) loads and plays exactly the greedy games
recorded in exports_expected.json (per-game lines, pieces and score; same seed, same games).

Compiling the play loop costs ~7-45 s per distinct (env, agent) on a CPU, far more than the
games: by default only the headline pair (`lines_only_q60` and its best checkpoint share one
compile) and the cheap direct-mode export run; `-m slow` runs all of them.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.experiments import exports_reference as ref

with open(ref.EXPECTED) as f:
    EXPECTED = json.load(f)
DEFAULT = ("direct_cpu20", "lines_only_q60", "lines_only_q60_best")


def test_the_fixture_covers_every_committed_export():
    assert sorted(EXPECTED["exports"]) == ref.export_names()
    assert (EXPECTED["seed"], EXPECTED["games"], EXPECTED["max_pieces"]) == (
        ref.SEED,
        ref.GAMES,
        ref.MAX_PIECES,
    )


@pytest.mark.parametrize(
    "name",
    [n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in ref.export_names()],
)
def test_export_plays_the_recorded_games(name):
    assert ref.play(name) == EXPECTED["exports"][name]


def test_committed_configs_are_on_todays_schema():
    """Each export's config.json has exactly today's fields, so none loads by default values."""
    from experiments.lib import runs, schema

    want = set(runs.flat(schema.defaults().to_dict()))
    for name in ref.all_export_names():
        with open(os.path.join(ref.EXPORTS, name, "config.json")) as f:
            assert set(runs.flat(json.load(f))) == want, name


def test_cartpole_export_keeps_the_pole_up(tmp_path):
    """docs/results/params/cartpole (experiments/cartpole.py, 20 minutes; docs/RESULTS.md)
    plays 100 greedy CartPole-v1 episodes of `experiments.evaluate` (seed 12345) as recorded:
    every one reaches the 500-step limit."""
    from experiments import evaluate

    result = evaluate.evaluate(
        checkpoint=os.path.join(ref.EXPORTS, "cartpole"),
        episodes=100,
        max_pieces=10000,
        baselines=(),
        gif=False,
        out=str(tmp_path),
        log=lambda _text: None,
    )
    s = result["rows"][0]["stats"]
    assert s["return_mean"] >= 475, s
    assert (s["return_mean"], s["return_min"], s["capped_share"]) == (500.0, 500.0, 0.0), s


@pytest.mark.slow
def test_minatar_breakout_export_plays_its_recorded_return(tmp_path):
    """docs/results/params/minatar_breakout (40 minutes; docs/RESULTS.md): the 100 greedy
    episodes of `experiments.evaluate --max_pieces=1000` (seed 12345) return 3.69 on average."""
    from experiments import evaluate

    result = evaluate.evaluate(
        checkpoint=os.path.join(ref.EXPORTS, "minatar_breakout"),
        episodes=100,
        max_pieces=1000,
        baselines=(),
        gif=False,
        out=str(tmp_path),
        log=lambda _text: None,
    )
    s = result["rows"][0]["stats"]
    assert s["return_mean"] == pytest.approx(3.69, abs=0.005), s
