"""The board world model through the experiment tools: train, world-model report, evaluate."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import evaluate
from experiments import world_model as wm_program
from experiments.lib import build, trainer
from experiments.lib import world_model as wm
from experiments.lib.errors import UserError


def _board_config(debug_config):
    c = debug_config
    c.env.placement_features = False
    c.agent.qhead = False
    c.agent.world_model = "board"
    c.agent.imag_length = 2
    c.agent.imag_last = 2
    c.env.reward_mode = "lines_only"
    return c


def _true_step(board, plane):
    """The real rule, written out for the test: drop the plane's piece, lock, clear full rows.
    Returns (next board, lines, top-out) for one board (H, W) and plane (4, W)."""
    H = board.shape[0]
    grid = jnp.concatenate([jnp.zeros_like(plane), board], 0)  # Strip above the board.

    def shifted(d):
        return jnp.roll(jnp.concatenate([plane, jnp.zeros_like(board)], 0), d, 0)

    # The largest drop d such that every drop up to d fits (no overlap, nothing wraps).
    ok = jnp.array([~(shifted(d) & grid).any() & ~shifted(d)[:d].any() for d in range(H + 4)])
    d = jnp.argmin(jnp.concatenate([ok, jnp.array([False])])) - 1
    locked = grid | shifted(d)
    top = locked[:4].any()
    full = locked[4:].all(-1)
    keep = jnp.argsort(full, stable=True)  # Rows not full first, in order; full ones last.
    rows = locked[4:][keep]
    n = full.sum()
    cleared = jnp.where(jnp.arange(H)[:, None] < n, False, jnp.roll(rows, n, 0))
    return jnp.where(top, board, cleared), jnp.where(top, 0, n), top


def test_train_report_and_evaluate_the_board_agent(tmp_path, debug_config, monkeypatch):
    config = _board_config(debug_config)
    workdir = str(tmp_path / "run")
    out = trainer.run(config, workdir, log=lambda *_: None)
    assert out["stopped"] == "end" and out["training"]["updates"] > 0
    evals = [json.loads(line) for line in open(f"{workdir}/evals.jsonl")]
    assert evals and "wm/open_loop_1/board_exact" in evals[-1]
    # Its state is the board: the "posterior" is the real board.
    assert evals[-1]["wm/posterior/board_exact"] == 1.0

    result = wm_program.run(
        workdir=workdir,
        episodes=2,
        max_pieces=20,
        horizons=["1", "2"],
        seed=3,
        figure_games=2,
        out=str(tmp_path / "wm"),
        log=lambda *_: None,
    )
    assert 0 <= result["open_loop"]["2"]["board_exact"] <= 1
    assert (tmp_path / "wm" / "world_model.png").stat().st_size > 5_000
    text = (tmp_path / "wm" / "world_model.md").read_text()
    assert "| open loop 2 |" in text
    # A barely trained model: the planning scores say it does not plan like the real rules.
    plan = result["planning"]
    assert plan["placements"] > plan["steps"] > 0 and plan["placements_board_exact"] < 1.0
    assert 0.0 <= plan["choice_agreement"] <= 1.0 and plan["regret"] >= 0.0
    assert "same choice as with the real rules" in text

    r = evaluate.evaluate(
        workdir,
        episodes=3,
        max_pieces=20,
        modes=("greedy", "plan2", "true_plan2"),
        plan_width=2,
        baselines=("random",),
        gif=False,
    )
    assert [row["policy"] for row in r["rows"]] == [
        "agent (greedy)",
        "agent (plan2, width 2)",
        "agent's critic, true dynamics, plan2 width 2 (diagnostic)",
        "random",
    ]
    assert all(row["stats"]["games"] == 3 for row in r["rows"])
    # On 2 parallel slots (a slot whose game ends starts the next): the same 3 games. (Game by
    # game equality is `rollout.play_slots`'s test: this barely trained model has near-ties
    # that the batch size's float rounding can break either way.)
    r2 = evaluate.evaluate(
        workdir,
        episodes=3,
        max_pieces=20,
        modes=("greedy", "plan2"),
        plan_width=2,
        slots=2,
        gif=False,
    )
    assert r2["slots"] == 2 and [row["policy"] for row in r2["rows"]] == [
        row["policy"] for row in r["rows"][:2]
    ]
    assert all(len(row["games"]["lines"]) == row["stats"]["games"] == 3 for row in r2["rows"])
    with pytest.raises(UserError, match="slots"):
        evaluate.evaluate(workdir, episodes=1, max_pieces=5, slots=0, gif=False)
    with pytest.raises(UserError, match="plan_width"):
        evaluate.evaluate(workdir, episodes=1, max_pieces=5, plan_width=2, gif=False)

    # With the model replaced by the real rule, every open-loop board and event is right.
    env = build.make_env(config, evaluation=True)
    agent = build.make_agent(config, env)
    params = jax.jit(agent.init)(jax.random.key(0)).params

    def oracle(self, params, board, plane):
        lead = board.shape[:-2]
        f = jax.vmap(_true_step)
        b, p = board.reshape((-1, *board.shape[-2:])), plane.reshape((-1, *plane.shape[-2:]))
        nxt, lines, top = f(b, p)
        nxt = nxt.reshape(board.shape)
        rew = lines.reshape(lead).astype(jnp.float32)
        con = (~top).reshape(lead).astype(jnp.float32)
        return nxt, None, rew, con

    monkeypatch.setattr(type(agent), "predict", oracle)
    monkeypatch.setattr(wm, "PLAN_CHUNK", 7)  # The planning scores in passes of 7 steps.
    wm._report_fn.cache_clear()
    wm._collect_fn.cache_clear()
    try:
        o = wm.measure(
            agent, params, env, jax.random.key(1), episodes=4, max_pieces=24, horizons=(1, 2)
        )
    finally:
        wm._report_fn.cache_clear()
        wm._collect_fn.cache_clear()
    assert o["games"]["ended"] > 0
    for h in ("1", "2"):
        s = o["open_loop"][h]
        assert s["board_exact"] == 1.0 and s["lines_exact"] == 1.0, (h, s)
        assert s["board_exact_when_not_cleared"] == 1.0, (h, s)
        assert s["continue_accuracy"] == 1.0 and s["terminal_steps"] > 0, (h, s)
    assert o["baselines"]["copy_start"]["1"]["board_exact"] < 1.0
    assert np.isfinite(o["posterior"]["reward_abs_error"])
    # Planning: every placement predicted right, so the lookahead chooses as with the rules.
    p = o["planning"]
    assert p["placements"] > p["steps"] > 0
    for k in (
        "placements_board_exact",
        "placements_board_exact_when_cleared",
        "placements_lines_exact",
        "choice_agreement",
    ):
        assert p[k] == 1.0, (k, p)
    assert p["placements_continue_accuracy"] == 1.0 and p["regret"] == 0.0, p


def test_act_plan2_needs_a_queue_of_two(debug_config):
    c = _board_config(debug_config)
    c.agent.board_act_plan2 = True
    c.env.queue_size, c.agent.imag_length, c.agent.imag_last = 1, 1, 0
    with pytest.raises(UserError, match="board_act_plan2.*queue_size >= 2, got 1"):
        build.check_config(c, 1)
    c.env.queue_size, c.agent.imag_length, c.agent.imag_last = 2, 2, 2
    build.check_config(c, 1)


def test_imag_plan2_needs_a_queue_of_imag_length_plus_one(debug_config):
    c = _board_config(debug_config)
    c.agent.board_imag_plan2 = True
    c.env.queue_size, c.agent.imag_length, c.agent.imag_last = 2, 2, 2
    want = "board_imag_plan2.*queue_size >= imag_length \\+ 1 = 3, got 2"
    with pytest.raises(UserError, match=want):
        build.check_config(c, 1)
    c.env.queue_size = 3
    build.check_config(c, 1)


def test_the_headline_configs_are_what_their_names_say():
    """lines_only.py: the board world model, no hand-made features, no Q head; board.py is its
    session-7 name; board_features.py adds features of predicted boards to the critic (the
    env's real afterstate features stay off); board_features_pool.py is board_features.py with
    the session-14 runs' settings; qhead.py is the model-free baseline."""
    from experiments import board, board_features, board_features_pool, lines_only, qhead

    configs = {
        name: build.resolve(m.get_config())
        for name, m in (
            ("lines_only", lines_only),
            ("board", board),
            ("board_features", board_features),
            ("board_features_pool", board_features_pool),
            ("qhead", qhead),
        )
    }
    for name, c in configs.items():
        build.check_config(c, 1)
        assert c.env.reward_mode == "lines_only", name
    lo, bf, q = configs["lines_only"], configs["board_features"], configs["qhead"]
    assert configs["board"].to_dict() == lo.to_dict()
    assert lo.agent.world_model == "board" and not lo.agent.qhead
    assert not lo.env.placement_features and not lo.agent.board_features
    assert bf.agent.board_features and not bf.env.placement_features and not bf.agent.qhead
    # The session-14 command line (docs/RESULTS.md), as a config.
    pool = board_features.get_config()
    pool.agent.update(board_row_pool=8, board_model_steps=2, board_repval=0.3)
    pool.update(batch_size=32, train_ratio=64)
    assert configs["board_features_pool"].to_dict() == build.resolve(pool).to_dict()
    assert q.agent.world_model in (None, "rssm") and q.agent.qhead and q.env.placement_features
    # The features agent's critic has the feature readout; the env gives no placements field.
    env = build.make_env(bf, evaluation=True)
    assert "placements" not in env.observation_spec()
    agent = build.make_agent(bf, env)
    assert agent.config.board_features and agent.board_features is not None


class _KnownCritic:
    """Stands in for a BoardAgent in `true_dynamics_policy`: its value of a board is minus the
    height-weighted count of its cells (so the choice depends on the next board)."""

    def __init__(self, agent):
        self.config, self._choose = agent.config, agent._choose

    def value(self, params, board, piece):
        del params, piece
        rows = board.shape[-2]
        weight = jnp.arange(rows, 0, -1, dtype=jnp.float32)[:, None]  # Top row weighs most.
        return -(board.astype(jnp.float32) * weight).sum((-1, -2))


def test_true_dynamics_policy_ranks_the_real_next_boards_with_the_critic():
    from dreamer_jax import configs
    from dreamer_jax.board import BoardAgent
    from experiments.lib import play, policies
    from tetris_jax import Tetris, heuristics, rollout

    env = Tetris(height=8, width=6, queue_size=2)
    config = configs.get_config(
        "tiny", world_model="board", imag_length=2, imag_last=2, batch_size=4, batch_length=8
    )
    agent = BoardAgent(config, env.observation_spec(), env.num_actions, env.action_planes())
    _, tr = jax.jit(
        lambda k: rollout.trace(
            env,
            heuristics.batch_policy(heuristics.make_policy(env, "random")),
            k,
            num_games=8,
            steps=5,
        )
    )(jax.random.key(1))
    flat = lambda x: x.reshape((-1, *x.shape[2:]))  # noqa: E731
    states, ts = jax.tree.map(flat, tr.states), jax.tree.map(flat, tr.ts)
    critic = _KnownCritic(agent)
    act, carry, _ = policies.true_dynamics_policy(env, critic, {"critic": None})(
        agent.initial_carry(40), states, ts, jax.random.key(0)
    )
    # Written out action by action: Q = r + (1 - game over)(1 - 1/horizon) V(real next board).
    mask = np.asarray(ts.observation.action_mask)
    q = np.full(mask.shape, -np.inf)
    for a in range(env.num_actions):
        _, nts = jax.vmap(env.step, (0, None))(states, jnp.int32(a))
        v = critic.value(None, nts.observation.board, None)
        keep = (1.0 - np.asarray(nts.is_terminal, np.float32)) * (1.0 - 1.0 / config.horizon)
        q[:, a] = np.asarray(nts.reward) + keep * np.asarray(v)
    best = np.where(mask, q, -np.inf).argmax(-1)
    assert (np.asarray(act) == best).all() and (np.asarray(carry.prev_action) == best).all()
    assert mask[np.arange(len(best)), best].all()

    # The reward is the real one: with a critic of 0 the only line-clearing placement is chosen.
    board = np.zeros((8, 6), bool)
    board[-1, :5] = True  # Bottom row missing its rightmost cell: only a vertical I fills it.
    seed = next(
        s for s in range(100) if int(env.reset(jax.random.key(s))[1].observation.piece) == 0
    )
    state, ts1 = env.reset(jax.random.key(seed), board=board)
    assert int(ts1.observation.piece) == 0
    zero = _KnownCritic(agent)
    zero.value = lambda params, board, piece: jnp.zeros(board.shape[:-2])
    batch = jax.tree.map(lambda x: x[None], (state, ts1))
    a, _, _ = policies.true_dynamics_policy(env, zero, {"critic": None})(
        agent.initial_carry(1), *batch, jax.random.key(0)
    )
    _, after = env.step(state, a[0])
    assert float(after.reward) == 1.0

    # plan2 with the real rules: the `width` best first placements by the one-placement Q,
    # each scored by its best allowed follow-up, written out state by state.
    width, keep = 3, 1.0 - 1.0 / config.horizon
    critic.config = dataclasses.replace(config, board_plan_width=width)
    scores = np.asarray(
        policies.true_plan2(env, critic, None, states, ts.observation.queue[:, 0], mask)
    )
    for n in range(0, len(best), 3):
        state = jax.tree.map(lambda x: x[n], states)
        expanded = np.flatnonzero(np.isfinite(scores[n]))
        assert len(expanded) == min(width, mask[n].sum()) and mask[n, expanded].all()
        rest = np.setdiff1d(np.flatnonzero(mask[n]), expanded)
        assert q[n, rest].max(initial=-np.inf) <= q[n, expanded].min() + 1e-5
        for a in expanded:
            s1, t1 = env.step(state, jnp.int32(a))
            follow = -np.inf
            for a2 in np.flatnonzero(np.asarray(t1.observation.action_mask)):
                _, t2 = env.step(s1, jnp.int32(a2))
                v = float(critic.value(None, t2.observation.board, None))
                follow = max(follow, float(t2.reward) + (not bool(t2.is_terminal)) * keep * v)
            want = float(t1.reward) + (0.0 if bool(t1.is_terminal) else keep * follow)
            np.testing.assert_allclose(scores[n, a], want, rtol=1e-5, atol=1e-4)
    act2, _, _ = policies.true_plan2_policy(env, critic, {"critic": None})(
        agent.initial_carry(40), states, ts, jax.random.key(0)
    )
    assert (np.asarray(act2) == scores.argmax(-1)).all()

    # Only the board world model can have its model replaced.
    with pytest.raises(ValueError, match="board world-model"):
        play.play_agent(
            env,
            object(),
            None,
            jax.random.key(0),
            num_games=1,
            max_pieces=1,
            mode=policies.TRUE_DYNAMICS,
        )
