"""experiments.world_model: scores on a hand-built batch, an oracle model, the program."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import subprocess_env

from dreamer_jax import rssm
from experiments import world_model as wm_program
from experiments.lib import build, runs
from experiments.lib import world_model as wm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A committed export without placement features: its env compiles fastest.
EXPORT = os.path.join(ROOT, "docs", "results", "params", "lines_only_cpu60")


def _hand_built():
    """One game of 3 steps (t = 3 is past its end) on a 2x2 board with a queue of 2; the game
    clears a line on arriving at t = 1 and ends at t = 2."""
    b = lambda *rows: np.array(rows, bool)  # noqa: E731
    boards = np.stack([b([0, 0], [0, 0]), b([0, 0], [1, 1]), b([1, 0], [1, 1]), b([1, 1], [1, 1])])
    obs = {
        "board": boards,
        "piece": np.array([0, 1, 2, 5]),
        "queue": np.array([[1, 2], [2, 3], [3, 4], [6, 6]]),
    }
    lines = np.array([0, 1, 0, 0])
    traj = wm.Trajectories(
        obs={k: jnp.asarray(v[None]) for k, v in obs.items()},
        action=jnp.zeros((1, 4), jnp.int32),
        chosen=jnp.zeros((1, 4, 0)),
        post=rssm.initial_state(4, 1, 1, 2),
        reward=jnp.asarray(lines[None], jnp.float32),
        lines=jnp.asarray(lines[None]),
        terminal=jnp.asarray([[False, False, True, False]]),
        valid=jnp.asarray([[True, True, True, False]]),
    )
    frame = lambda fields, reward, cont: wm.Frame(  # noqa: E731
        {k: jnp.asarray(np.asarray(v)[None]) for k, v in fields.items()},
        jnp.asarray([reward], jnp.float32),
        jnp.asarray([cont], jnp.float32),
    )
    # The last entry of each prediction has no valid target: garbage that must not count.
    posterior = frame(
        {
            "board": np.stack([boards[0], b([0, 0], [1, 0]), boards[2], b([0, 1], [0, 1])]),
            "piece": [0, 1, 2, 3],
            "queue": [[1, 2], [2, 0], [3, 4], [0, 0]],
        },
        [0.1, 0.8, 0.4, 3.0],
        [0.9, 0.9, 0.9, 0.0],
    )
    one = frame(
        {
            "board": np.stack([boards[1], boards[1], boards[0], boards[0]]),
            "piece": [1, 0, 4, 4],
            "queue": [[2, 3], [3, 0], [5, 5], [5, 5]],
        },
        [0.6, 0.2, 2.0, 2.0],
        [0.9, 0.2, 0.0, 0.0],
    )
    return traj, {"posterior": posterior, "1": one}


def test_scores_on_a_hand_built_batch():
    traj, preds = _hand_built()
    r = jax.tree.map(float, wm.score(traj, preds, horizons=(1,), split_queue=True))
    post, one, base = r["posterior"], r["open_loop"]["1"], r["baselines"]
    want_post = {
        "board_exact": 2 / 3,
        "board_error": (0 + 1 / 4 + 0) / 3,
        "piece_exact": 1.0,
        "queue_exact": 2 / 3,
        "queue_error": 0.5 / 3,
        "lines_exact": 1.0,
        "lines_exact_when_cleared": 1.0,
        "reward_abs_error": (0.1 + 0.2 + 0.4) / 3,
        "continue_accuracy": 2 / 3,
        "terminal_accuracy": 0.0,
        "steps": 3,
        "cleared_steps": 1,
        "terminal_steps": 1,
        # The board of t = 1 (which the clear made) is the one it gets wrong.
        "board_exact_when_cleared": 0.0,
        "board_exact_when_not_cleared": 1.0,
    }
    want_one = {
        "board_exact": 1 / 2,
        "board_error": (0 + 1 / 4) / 2,
        "piece_exact": 1 / 2,
        "queue_exact": 1 / 2,
        "queue_error": (0 + 1 / 2) / 2,
        # Queue of 2, one step on: slot 0 was shown at the start, slot 1 was not.
        "queue_known_exact": 1.0,
        "queue_known_error": 0.0,
        "queue_unknown_exact": 1 / 2,
        "queue_unknown_error": 1 / 2,
        "lines_exact": 1.0,
        "lines_exact_when_cleared": 1.0,
        "reward_abs_error": (0.4 + 0.2) / 2,
        "continue_accuracy": 1.0,
        "terminal_accuracy": 1.0,
        "steps": 2,
        "cleared_steps": 1,
        "terminal_steps": 1,
        # Right into t = 1 (the clear), wrong into t = 2.
        "board_exact_when_cleared": 1.0,
        "board_exact_when_not_cleared": 0.0,
    }
    want_base = {
        "copy_start": {
            "1": {
                "board_exact": 0.0,
                "board_error": (2 / 4 + 1 / 4) / 2,
                "piece_exact": 0.0,
                "queue_exact": 0.0,
                "queue_error": 1.0,
            }
        },
        "copy_posterior": {
            "1": {
                "board_exact": 0.0,
                "board_error": (2 / 4 + 2 / 4) / 2,
                "piece_exact": 0.0,
                "queue_exact": 0.0,
                "queue_error": 1.0,
            }
        },
        "all_empty": {
            "posterior": {"board_exact": 1 / 3, "board_error": (0 + 2 / 4 + 3 / 4) / 3},
            "1": {"board_exact": 0.0, "board_error": (2 / 4 + 3 / 4) / 2},
        },
        "no_event": {
            "posterior": {
                "lines_exact": 2 / 3,
                "lines_exact_when_cleared": 0.0,
                "continue_accuracy": 2 / 3,
                "terminal_accuracy": 0.0,
            },
            "1": {
                "lines_exact": 1 / 2,
                "lines_exact_when_cleared": 0.0,
                "continue_accuracy": 1 / 2,
                "terminal_accuracy": 0.0,
            },
        },
    }
    assert post.keys() == want_post.keys() and one.keys() == want_one.keys()
    np.testing.assert_allclose([post[k] for k in want_post], list(want_post.values()), atol=1e-6)
    np.testing.assert_allclose([one[k] for k in want_one], list(want_one.values()), atol=1e-6)
    assert runs.flat(base) == pytest.approx(runs.flat(want_base), abs=1e-6)


def test_nothing_to_average_is_none_and_flat_names():
    traj, preds = _hand_built()
    traj = traj._replace(terminal=jnp.zeros_like(traj.terminal))  # No game over at all.
    r = wm._python(wm.score(traj, preds, horizons=(1,), split_queue=True))
    assert r["posterior"]["terminal_accuracy"] is None and r["posterior"]["terminal_steps"] == 0
    flat = wm.flat_metrics(r)
    assert flat["wm/posterior/board_exact"] == pytest.approx(2 / 3)
    assert flat["wm/open_loop_1/board_exact"] == pytest.approx(1 / 2)
    assert flat["wm/copy_start_1/board_error"] == pytest.approx(3 / 8)
    assert flat["wm/all_empty_posterior/board_exact"] == pytest.approx(1 / 3)
    assert "wm/posterior/terminal_accuracy" not in flat
    assert all(isinstance(v, float) for v in flat.values())


def _oracle(agent, params, traj, key, *, horizons):
    """Predicts every step from the real trajectory itself: the world model of a perfect agent."""

    def ahead(x, h):  # x[:, s + h], the last step repeated past the end.
        return jnp.concatenate([x[:, h:], jnp.repeat(x[:, -1:], h, 1)], 1) if h else x

    def frame(h):
        fields = {k: ahead(v, h) for k, v in traj.obs.items()}
        cont = 1.0 - ahead(traj.terminal, h).astype(jnp.float32)
        return wm.Frame(fields, ahead(traj.reward, h), cont)

    return {"posterior": frame(0), **{str(h): frame(h) for h in horizons}}


def test_measure_untrained_and_oracle(debug_config, monkeypatch):
    """An untrained agent on the debug env (standard reward, placement features): a report
    with every score in [0, 1], the same for the same key. With the model's predictions
    replaced by the real future, every model score is 1 and the baselines are not."""
    env = build.make_env(debug_config, evaluation=True)
    agent = build.make_agent(debug_config, env)
    params = jax.jit(agent.init)(jax.random.key(0)).params
    kw = dict(episodes=4, max_pieces=24, horizons=(1, 3))
    r = wm.measure(agent, params, env, jax.random.key(1), **kw)
    assert r["steps"] > 0 and r["games"]["ended"] > 0  # Untrained play tops out on 8x6.
    assert list(r["open_loop"]) == ["1", "3"] and r["determined"]["3"]["board"] is True
    assert r["determined"]["1"]["queue_slots"] == 1 and r["determined"]["3"]["piece"] is False
    flat = wm.flat_metrics(r)
    rates = {k: v for k, v in flat.items() if not k.endswith("steps") and "reward" not in k}
    assert all(0.0 <= v <= 1.0 for v in rates.values()), rates
    assert wm.measure(agent, params, env, jax.random.key(1), **kw) == r

    monkeypatch.setattr(wm, "predict", _oracle)
    wm._report_fn.cache_clear()  # Its cached trace calls the real `predict`.
    try:
        o = wm.measure(agent, params, env, jax.random.key(1), **kw)
    finally:
        wm._report_fn.cache_clear()
    assert o["steps"] == r["steps"]
    for name in ("copy_start", "all_empty", "no_event"):  # The same games.
        assert o["baselines"][name] == r["baselines"][name], name
    assert o["baselines"]["copy_posterior"] == o["baselines"]["copy_start"]  # A perfect decoder.
    for name, s in [("posterior", o["posterior"]), *o["open_loop"].items()]:
        for k, v in s.items():
            if v is None:  # Nothing to average: only where no line was cleared.
                assert k.endswith("_when_cleared") and s["cleared_steps"] == 0, (name, k)
            elif "_exact" in k or k.endswith("_accuracy"):
                assert v == 1.0, (name, k, v)
            elif k.endswith("_error"):
                assert v == 0.0, (name, k, v)
        assert s["terminal_steps"] > 0, name
    assert o["baselines"]["copy_start"]["1"]["board_exact"] < 1.0
    assert o["baselines"]["all_empty"]["1"]["board_exact"] < 1.0


def _files(folder):
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs)


def test_program_on_a_committed_export(tmp_path):
    before = _files(EXPORT)
    out = tmp_path / "wm"
    result = wm_program.run(
        checkpoint=EXPORT,
        episodes=2,
        max_pieces=20,
        horizons=["1", "5", "15"],
        seed=3,
        figure_games=2,
        out=str(out),
        log=lambda *_: None,
    )
    assert _files(EXPORT) == before  # Nothing written beside the checkpoint.
    with open(out / "world_model.json") as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(result))
    for key in (
        "checkpoint",
        "step",
        "seed",
        "episodes",
        "steps",
        "posterior",
        "open_loop",
        "baselines",
        "determined",
    ):
        assert key in saved, key
    assert saved["episodes"] == 2 and saved["seed"] == 3 and saved["steps"] > 0
    assert saved["checkpoint"] == EXPORT and saved["step"] > 0
    for h in ("1", "5", "15"):
        assert 0 <= saved["open_loop"][h]["board_exact"] <= 1
        assert 0 <= saved["baselines"]["copy_start"][h]["board_error"] <= 1
    assert saved["determined"]["5"]["board"] and not saved["determined"]["15"]["board"]
    assert 0 <= saved["posterior"]["board_error"] <= 1
    text = (out / "world_model.md").read_text()
    assert "| open loop 15 * |" in text and "| posterior |" in text
    assert (out / "world_model.png").stat().st_size > 10_000
    want = os.path.join("runs", "world_model", "lines_only_cpu60")
    assert wm_program.default_out(None, EXPORT) == want
    assert wm_program.default_out("/a/run", None) == os.path.join("/a/run", "world_model")


def test_program_refuses_bad_arguments_before_loading(tmp_path):
    def refused(*args):
        r = subprocess.run(
            [sys.executable, "-m", "experiments.world_model", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=subprocess_env(),
        )
        assert r.returncode == 2, r.stderr[-2000:]
        return r.stderr

    assert "never inside --checkpoint" in refused(f"--checkpoint={EXPORT}", f"--out={EXPORT}/x")
    assert "--max_pieces" in refused(f"--checkpoint={EXPORT}", "--max_pieces=15")
    assert "--horizons" in refused(f"--checkpoint={EXPORT}", "--horizons=0,5")
    assert "exactly one of" in refused(f"--checkpoint={EXPORT}", f"--workdir={tmp_path}")


def test_chunked_is_the_function_on_all_rows_at_once():
    """`wm.chunked` (the planning scores' passes over long games) gives what one call on every
    row gives, for any chunk size, on a pytree in and out."""
    xs = {"a": jnp.arange(23.0).reshape(23, 1) ** 2, "b": jnp.arange(23) % 5}

    def fn(x):
        return {"sum": x["a"][:, 0] + x["b"], "pair": jnp.stack([x["b"], 2 * x["b"]], -1)}

    want = fn(xs)
    for chunk in (1, 4, 7, 23, 64):
        got = jax.jit(lambda x, c=chunk: wm.chunked(fn, x, c))(xs)
        for k in want:
            np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)
