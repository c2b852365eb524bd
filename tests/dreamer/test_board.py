"""The board world model (`dreamer_jax/board.py`): checks, acting, training, and learning."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dreamer_jax import configs
from dreamer_jax.board import BoardAgent, scatter_expansion, top_k_expansion
from tetris_jax import Tetris, heuristics, rollout


def _agent(env, **kw):
    kw = {"world_model": "board", "imag_length": 2, "imag_last": 2, "bins": 31, **kw}
    config = configs.get_config("tiny", batch_size=4, batch_length=8, **kw)
    return BoardAgent(config, env.observation_spec(), env.num_actions, env.action_planes())


def _obs(ts):
    return {
        **{k: v for k, v in ts.observation._asdict().items() if v is not None},
        "is_first": ts.is_first,
    }


def test_config_and_spec_errors_name_the_field():
    for field, value in (
        ("world_model", "gru"),
        ("board_arch", "cnn"),
        ("board_explore", 2.0),
        ("board_row_layers", -1),
        ("board_row_dim", 0),
        ("board_row_pool", -1),
    ):
        with pytest.raises(configs.ConfigError, match=field):
            configs.get_config("tiny", **{field: value})
    with pytest.raises(configs.ConfigError, match="board_row_layers.*mixer"):
        configs.get_config("tiny", board_arch="mlp", board_row_layers=2)
    with pytest.raises(configs.ConfigError, match="board_row_pool.*mixer"):
        configs.get_config("tiny", board_arch="mlp", board_row_pool=8)
    env = Tetris(height=8, width=6, queue_size=2)
    spec = env.observation_spec()
    cfg = configs.get_config("tiny", world_model="board", imag_length=2)
    with pytest.raises(ValueError, match="'queue'"):
        BoardAgent(cfg, {k: v for k, v in spec.items() if k != "queue"}, 24, env.action_planes())
    with pytest.raises(ValueError, match="action_planes"):
        BoardAgent(cfg, spec, env.num_actions, env.action_planes()[:, :5])
    with pytest.raises(ValueError, match="imag_length"):
        BoardAgent(cfg.replace(imag_length=3), spec, env.num_actions, env.action_planes())
    with pytest.raises(ValueError, match="placement mode"):
        Tetris(action_mode="direct").action_planes()


def test_policy_keeps_to_the_mask_and_lookahead_adds_reward_and_value():
    env = Tetris(height=8, width=6, queue_size=2)
    agent = _agent(env, board_explore=0.5)
    params = agent.init(jax.random.key(0)).params
    # Random games give states whose masks forbid some placements.
    _, tr = jax.jit(
        lambda k: rollout.trace(
            env,
            heuristics.batch_policy(heuristics.make_policy(env, "random")),
            k,
            num_games=8,
            steps=6,
        )
    )(jax.random.key(1))
    ts = jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), tr.ts)
    mask = np.asarray(ts.observation.action_mask)
    assert not mask.all()
    for mode in ("greedy", "sample"):
        for seed in range(3):
            a, carry = agent.policy(
                params, agent.initial_carry(48), _obs(ts), jax.random.key(seed), mode
            )
            assert mask[np.arange(48), np.asarray(a)].all(), mode
            assert (np.asarray(carry.prev_action) == np.asarray(a)).all()
    # Q = predicted reward + predicted continue * V(predicted board, the next piece).
    obs = ts.observation
    q, (nxt, rew, con) = agent.lookahead(
        params, params["critic"], obs.board, obs.piece, obs.queue[:, 0]
    )
    assert q.shape == (48, env.num_actions) and nxt.shape == (48, env.num_actions, 8, 6)
    v = agent.value(
        params["critic"], nxt, jnp.broadcast_to(obs.queue[:, :1], (48, env.num_actions))
    )
    np.testing.assert_allclose(q, rew + con * v, rtol=1e-5, atol=1e-6)
    greedy, _ = agent.policy(params, agent.initial_carry(48), _obs(ts), jax.random.key(0), "greedy")
    best = np.where(mask, np.asarray(q), -np.inf).argmax(-1)
    assert (np.asarray(greedy) == best).all()


def test_action_planes_are_the_piece_above_its_column():
    """Every placement's plane, dropped straight down, is the cells the env locks (checked on
    random games' steps that clear no line and do not top out)."""
    env = Tetris(height=12, width=7, queue_size=2)
    planes = env.action_planes()
    assert planes.shape == (7, 28, 4, 7) and (planes.sum((-1, -2)) == 4).all()
    _, tr = jax.jit(
        lambda k: rollout.trace(
            env,
            heuristics.batch_policy(heuristics.make_policy(env, "random")),
            k,
            num_games=16,
            steps=12,
        )
    )(jax.random.key(3))
    board = np.asarray(tr.ts.observation.board).reshape(-1, 12, 7)
    nxt = np.asarray(tr.next_ts.observation.board).reshape(-1, 12, 7)
    piece = np.asarray(tr.ts.observation.piece).reshape(-1)
    action = np.asarray(tr.action).reshape(-1)
    lines = np.asarray(tr.next_ts.metrics["lines_cleared"]).reshape(-1)
    going = np.asarray(tr.going).reshape(-1) & ~np.asarray(tr.next_ts.is_terminal).reshape(-1)
    checked = 0
    for i in np.flatnonzero(going & (lines == 0)):
        new = nxt[i] & ~board[i]
        grid = np.concatenate([np.zeros((4, 7), bool), new])  # The strip above the board.
        plane = planes[piece[i], action[i]]
        shifts = [
            d for d in range(16) if (np.roll(np.pad(plane, ((0, 12), (0, 0))), d, 0) == grid).all()
        ]
        assert len(shifts) == 1, (i, piece[i], action[i])
        checked += 1
    assert checked > 50


def _play_batch(env, key, games, steps):
    """Replay-shaped batches (B, T) of random-policy games."""
    policy = heuristics.batch_policy(heuristics.make_policy(env, "random"))

    def run(key):
        r = rollout.start(env, key, games)

        def body(r, _):
            r, tr = rollout.step(env, policy, r, auto_reset=True)
            return r, (tr.ts, tr.action)

        _, (ts, action) = jax.lax.scan(body, r, None, length=steps)
        return ts, action

    ts, action = jax.jit(run)(key)
    sw = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
    batch = {k: sw(v) for k, v in _obs(ts).items()}
    batch.update(
        action=sw(action),
        reward=sw(ts.reward),
        is_last=sw(ts.is_last),
        is_terminal=sw(ts.is_terminal),
    )
    return batch


@pytest.mark.parametrize(
    "updates,threshold,row_layers,row_pool",
    [
        (100, None, 0, 0),
        (100, None, 2, 0),
        (100, None, 0, 8),
        pytest.param(1500, 0.6, 0, 0, marks=pytest.mark.slow),
        pytest.param(1500, 0.6, 2, 0, marks=pytest.mark.slow),
        pytest.param(1500, 0.6, 0, 8, marks=pytest.mark.slow),
    ],
)
def test_the_board_model_learns_the_next_board(updates, threshold, row_layers, row_pool):
    """train_step on random games of a 6x8 board: the one-step board prediction gets better
    than "the board does not change" within 100 updates; (slow) >= 60% exact within 1500
    (70.9% when written: far from issue 12's 99%). With and without row attention, and with
    the row-pooled second decoder."""
    env = Tetris(height=8, width=6, queue_size=2, reward_mode="lines_only")
    agent = _agent(env, lr=1e-3, warmup=10, board_row_layers=row_layers, board_row_pool=row_pool)
    agent = BoardAgent(
        agent.config.replace(batch_size=16, batch_length=16),
        env.observation_spec(),
        env.num_actions,
        env.action_planes(),
    )
    state = agent.init(jax.random.key(0))
    data = _play_batch(env, jax.random.key(1), 256, 16)  # 256 sequences of 16 steps.
    test = _play_batch(env, jax.random.key(2), 64, 16)
    metrics = jax.jit(lambda p, b: agent._model_loss(p, b)[1])
    first = jax.device_get(metrics(state.params, test))
    key = jax.random.key(3)
    for i in range(updates):
        key, k1, k2 = jax.random.split(key, 3)
        idx = jax.random.randint(k1, (16,), 0, 256)
        state, m = agent.train_step(state, jax.tree.map(lambda x: x[idx], data), k2)
        assert np.isfinite(float(m["loss/total"])), i
    last = jax.device_get(metrics(state.params, test))
    board, nxt = np.asarray(test["board"][:, :-1]), np.asarray(test["board"][:, 1:])
    valid = ~np.asarray(test["is_first"][:, 1:])
    copy = ((board == nxt).all((-1, -2)) & valid).sum() / valid.sum()
    assert last["model/board_exact"] > max(first["model/board_exact"], copy) + 0.02, (
        first,
        last,
        copy,
    )
    assert last["model/cell_error"] < 0.7 * first["model/cell_error"], (first, last)
    if threshold is not None:
        assert last["model/board_exact"] >= threshold, last


def test_board_features_of_the_next_board_are_the_placements_afterstate_features():
    """`Tetris.board_features` of the board a step leaves equals the env's own afterstate
    features of the placement taken (the board-only ones), on random games of two sizes."""
    from tetris_jax import afterstates

    idx = [afterstates.FEATURES.index(k) for k in afterstates.BOARD_FEATURES]
    for height, width in ((20, 10), (10, 6)):
        env = Tetris(height=height, width=width, placement_features=True)
        _, tr = jax.jit(
            lambda k, env=env: rollout.trace(
                env,
                heuristics.batch_policy(heuristics.make_policy(env, "random")),
                k,
                num_games=16,
                steps=20,
            )
        )(jax.random.key(height))
        going = np.asarray(tr.going) & ~np.asarray(tr.next_ts.is_terminal)
        after = np.asarray(env.board_features(tr.next_ts.observation.board))[going]
        feats = np.asarray(tr.ts.observation.placements, np.float32)
        taken = np.take_along_axis(feats, np.asarray(tr.action)[..., None, None], -2)[..., 0, :]
        assert going.sum() > 100
        np.testing.assert_array_equal(after, taken[going][:, idx])
    with pytest.raises(ValueError, match="board_features"):
        env.board_features(jnp.zeros((3, 20, 10), bool))


def test_the_critic_reads_board_features_when_asked():
    env = Tetris(height=8, width=6, queue_size=2, reward_mode="lines_only")
    spec = env.observation_spec()
    cfg = configs.get_config("tiny", world_model="board", imag_length=2, board_features=True)
    with pytest.raises(ValueError, match="board_features"):
        BoardAgent(cfg, spec, env.num_actions, env.action_planes())
    with pytest.raises(configs.ConfigError, match="board_features"):
        configs.get_config("tiny", board_features=True)
    agent = BoardAgent(
        cfg.replace(batch_size=4, batch_length=8, bins=31),
        spec,
        env.num_actions,
        env.action_planes(),
        board_features=env.board_features,
    )
    state = agent.init(jax.random.key(0))
    assert "out_feats" in state.params["critic"]["params"]
    # The feature readout is live: a nonzero readout changes the value of a board with holes.
    params = jax.tree.map(lambda x: x, state.params)
    w = params["critic"]["params"]["out_feats"]["kernel"]
    params["critic"]["params"]["out_feats"]["kernel"] = w.at[:, -1].set(1.0)
    holes = jnp.zeros((1, 8, 6), bool).at[0, 5:, :].set(True).at[0, 6, 2].set(False)
    piece = jnp.zeros((1,), jnp.int32)
    v0 = agent.value(state.params["critic"], holes, piece)
    v1 = agent.value(params["critic"], holes, piece)
    assert float(v1[0]) > float(v0[0]) + 1.0
    batch = _play_batch(env, jax.random.key(1), 4, 8)
    state, m = agent.train_step(state, batch, jax.random.key(2))
    assert np.isfinite(float(m["loss/total"])) and np.isfinite(float(m["loss/value"]))


def test_replay_value_loss_uses_real_rewards_within_episodes_only():
    """board_repval: the critic of the replayed real boards is trained on the lambda-returns of
    the real rewards; a reward across an episode start (the reset's) does not enter, one
    inside an episode does, and the loss reaches the total and the critic's gradient."""
    env = Tetris(height=8, width=6, queue_size=2, reward_mode="lines_only")
    agent = _agent(env, board_repval=0.5, lr=1e-3, warmup=10)
    state = agent.init(jax.random.key(0))
    # The critic's output layer starts at zero (uniform logits: every target costs the same).
    out = state.params["critic"]["params"]["out"]
    out["kernel"] = jax.random.normal(jax.random.key(5), out["kernel"].shape)
    batch = _play_batch(env, jax.random.key(1), 32, 8)
    first = np.asarray(batch["is_first"])
    imag_ret = jnp.zeros((32 * 2,))
    loss = lambda p, bt: agent._repval_loss(p, state, bt, imag_ret)  # noqa: E731
    base = float(loss(state.params, batch))
    assert np.isfinite(base) and base > 0
    # Rewards on arriving at an episode's first step (the reset) never enter a return.
    starts = first & (np.arange(8) > 0)
    assert starts.sum() > 3 and (~first[:, 1:]).sum() > 100
    across = dict(batch, reward=jnp.where(starts, 1000.0, batch["reward"]))
    assert float(loss(state.params, across)) == pytest.approx(base, rel=1e-6)
    within = dict(batch, reward=jnp.where(~first, 1000.0, batch["reward"]))
    assert abs(float(loss(state.params, within)) - base) > 0.1
    grads = jax.grad(loss)(state.params, batch)
    assert float(optax.global_norm(grads["critic"])) > 0
    assert float(optax.global_norm(grads["dyn"])) == 0
    state, m = agent.train_step(state, batch, jax.random.key(2))
    assert float(m["loss/repval"]) > 0 and np.isfinite(float(m["loss/total"]))


def test_imagination_batch_trains_the_model_on_every_sequence_the_critic_on_the_first():
    """board_imag_batch=n: the world model's loss covers all batch_size sequences; imagination
    and the replay values (the critic's losses) start from the first n only."""
    env = Tetris(height=8, width=6, queue_size=2, reward_mode="lines_only")
    with pytest.raises(configs.ConfigError, match="board_imag_batch.*batch_size"):
        _agent(env, board_imag_batch=5)
    agent = _agent(env, board_imag_batch=2, board_repval=0.5)
    state = agent.init(jax.random.key(0))
    out = state.params["critic"]["params"]["out"]
    out["kernel"] = jax.random.normal(jax.random.key(5), out["kernel"].shape)
    batch = _play_batch(env, jax.random.key(1), 4, 8)
    other = _play_batch(env, jax.random.key(2), 4, 8)
    # The last two sequences from other games.
    mixed = jax.tree.map(lambda a, b: jnp.concatenate([a[:2], b[2:]]), batch, other)
    grad = jax.jit(
        lambda bt: jax.grad(agent._loss, has_aux=True)(state.params, state, bt, jax.random.key(3))
    )
    (g0, m0), (g1, m1) = grad(batch), grad(mixed)
    diff = lambda a, b: float(optax.global_norm(jax.tree.map(jnp.subtract, a, b)))  # noqa: E731
    assert diff(g0["critic"], g1["critic"]) < 1e-6 * (1 + float(optax.global_norm(g0["critic"])))
    assert diff(g0["dyn"], g1["dyn"]) > 1e-4
    assert float(m0["loss/value"]) == pytest.approx(float(m1["loss/value"]), rel=1e-6)
    assert float(m0["loss/repval"]) == pytest.approx(float(m1["loss/repval"]), rel=1e-6)
    assert float(m0["loss/world_model"]) != pytest.approx(float(m1["loss/world_model"]))
    # Without it the critic sees every sequence.
    full = _agent(env, board_repval=0.5)
    gf = jax.jit(
        lambda bt: jax.grad(full._loss, has_aux=True)(state.params, state, bt, jax.random.key(3))[0]
    )
    assert diff(gf(batch)["critic"], gf(mixed)["critic"]) > 1e-4


def test_board_oracle_plans_with_the_real_rules_and_trains_no_model():
    """board_oracle (a diagnostic): the lookahead's next boards, rewards and continues are the
    env's real ones for every action, Q = r + c V of them; a train step moves the critic and
    gives the (unused) dynamics no gradient."""
    env = Tetris(height=8, width=6, queue_size=2, reward_mode="lines_only")
    with pytest.raises(configs.ConfigError, match="board_oracle.*world_model"):
        configs.get_config("tiny", board_oracle=True)
    with pytest.raises(ValueError, match="board_oracle.*board_step"):
        _agent(env, board_oracle=True)
    config = configs.get_config(
        "tiny",
        batch_size=4,
        batch_length=8,
        world_model="board",
        imag_length=2,
        imag_last=2,
        bins=31,
        board_oracle=True,
        board_repval=0.3,
    )
    agent = BoardAgent(
        config,
        env.observation_spec(),
        env.num_actions,
        env.action_planes(),
        true_step=env.board_step,
    )
    assert agent != _agent(env, board_repval=0.3)
    state = agent.init(jax.random.key(0))
    batch = _play_batch(env, jax.random.key(1), 4, 8)
    board, piece = batch["board"][:, 3], batch["piece"][:, 3]
    q, (nxt, rew, con) = agent.lookahead(
        state.params, state.params["critic"], board, piece, batch["queue"][:, 3, 0]
    )
    actions = jnp.arange(env.num_actions, dtype=jnp.int32)
    want = jax.vmap(lambda b, p: env.board_step(jnp.broadcast_to(b, nxt.shape[1:]), p, actions))
    real_board, real_rew, over = want(board, piece)
    np.testing.assert_array_equal(np.asarray(nxt), np.asarray(real_board))
    np.testing.assert_array_equal(np.asarray(rew), np.asarray(real_rew))
    np.testing.assert_allclose(np.asarray(con), np.where(over, 0.0, 1.0 - 1.0 / config.horizon))
    assert bool(over.any()) and bool((~over).any())
    v = agent.value(
        state.params["critic"], nxt, jnp.broadcast_to(batch["queue"][:, 3, :1], q.shape)
    )
    np.testing.assert_allclose(np.asarray(q), np.asarray(rew + con * v), rtol=1e-5, atol=1e-5)

    grads, m = jax.grad(agent._loss, has_aux=True)(state.params, state, batch, jax.random.key(2))
    assert float(optax.global_norm(grads["dyn"])) == 0
    assert float(optax.global_norm(grads["critic"])) > 0
    assert float(m["loss/world_model"]) == 0.0 and "model/board_exact" not in m
    assert float(m["loss/value"]) > 0 and float(m["loss/repval"]) > 0


def test_model_steps_train_the_model_alone_then_take_the_usual_step():
    """board_model_steps=2: one update is a model-only step on the first half of the batch
    (the critic, its slow copy and its optimizer state unchanged, the model moved), then the
    usual full step on the second half, exactly as the one-step agent takes it."""
    env = Tetris(height=8, width=6, queue_size=2, reward_mode="lines_only")
    with pytest.raises(configs.ConfigError, match="board_model_steps.*divide"):
        configs.get_config("tiny", batch_size=4, board_model_steps=3)
    with pytest.raises(configs.ConfigError, match="board_model_steps.*board_imag_batch"):
        configs.get_config("tiny", batch_size=4, board_model_steps=2, board_imag_batch=2)
    kw = {"world_model": "board", "imag_length": 2, "imag_last": 2, "bins": 31, "warmup": 0}
    two = BoardAgent(
        configs.get_config("tiny", batch_size=8, batch_length=8, board_model_steps=2, **kw),
        env.observation_spec(),
        env.num_actions,
        env.action_planes(),
    )
    one = BoardAgent(
        configs.get_config("tiny", batch_size=4, batch_length=8, **kw),
        env.observation_spec(),
        env.num_actions,
        env.action_planes(),
    )
    batch = _play_batch(env, jax.random.key(1), 8, 8)
    first, second = (jax.tree.map(lambda x, i=i: x[4 * i : 4 * i + 4], batch) for i in (0, 1))
    copy = lambda s: jax.tree.map(jnp.array, s)  # noqa: E731  (train steps donate)
    state = two.init(jax.random.key(0))

    mid, _ = jax.jit(two._model_step)(copy(state), first)
    leaves = lambda t: jax.tree.leaves(jax.tree.map(np.asarray, t))  # noqa: E731
    same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b), strict=True))  # noqa: E731
    assert same(mid.params["critic"], state.params["critic"])
    assert same(mid.slow_critic, state.slow_critic)
    assert not same(mid.params["dyn"], state.params["dyn"])
    path_has_critic = lambda p: any(getattr(k, "key", None) == "critic" for k in p)  # noqa: E731
    flat = lambda t: jax.tree_util.tree_flatten_with_path(t)[0]  # noqa: E731
    for (path, new), (_, old) in zip(flat(mid.opt_state), flat(state.opt_state), strict=True):
        if path_has_critic(path):
            np.testing.assert_array_equal(np.asarray(new), np.asarray(old))

    want, want_m = one.train_step(copy(mid), second, jax.random.key(3))
    got, got_m = two.train_step(copy(state), batch, jax.random.key(3))
    for a, b in zip(leaves(got.params), leaves(want.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert float(got_m["loss/value"]) == pytest.approx(float(want_m["loss/value"]), rel=1e-5)
    assert np.isfinite(float(got_m["model/extra_steps_loss"]))


def test_clear_weight_scales_the_board_loss_of_clearing_steps_only():
    """board_clear_weight w: the next-board loss is the other steps' part plus w times the
    part of steps that clear lines (reward > 0); the reward and continue losses are unchanged.
    With no clear in the batch every weight gives the same loss."""
    env = Tetris(height=8, width=6, queue_size=2, reward_mode="lines_only")
    with pytest.raises(configs.ConfigError, match="board_clear_weight"):
        configs.get_config("tiny", board_clear_weight=-1.0)
    batch = _play_batch(env, jax.random.key(1), 4, 8)
    # Mark some steps as clears (the weighting reads only the reward) and none in `calm`.
    batch = {**batch, "reward": batch["reward"].at[:, 2:5].set(1.0)}
    calm = {**batch, "reward": jnp.zeros_like(batch["reward"])}
    agents = {w: _agent(env, board_clear_weight=w) for w in (0.0, 1.0, 3.0)}
    params = agents[1.0].init(jax.random.key(0)).params
    loss = {w: a._model_loss(params, batch)[0] for w, a in agents.items()}
    rec = {w: float(v["rec/board"]) for w, v in loss.items()}
    # Linear in w: L(w) = L(0) + w (L(1) - L(0)), and the clears' part is positive.
    assert rec[1.0] > rec[0.0] > 0
    assert rec[3.0] == pytest.approx(rec[0.0] + 3.0 * (rec[1.0] - rec[0.0]), rel=1e-5)
    for k in ("rew", "con"):
        assert float(loss[3.0][k]) == pytest.approx(float(loss[1.0][k]), rel=1e-6)
    calm_rec = {w: float(a._model_loss(params, calm)[0]["rec/board"]) for w, a in agents.items()}
    assert calm_rec[0.0] == pytest.approx(calm_rec[3.0], rel=1e-6) and calm_rec[0.0] > 0
    m = agents[1.0]._model_loss(params, batch)[1]
    assert 0.0 <= float(m["model/board_exact_when_cleared"]) <= 1.0


def test_split_linear_is_linear_on_the_concatenation_with_a_shared_input_broadcast():
    """SplitLinear has Linear's parameters and output, and a shape-1 input is broadcast."""
    from dreamer_jax import nets

    k = jax.random.split(jax.random.PRNGKey(0), 3)
    a = jax.random.normal(k[0], (2, 10, 5))
    s = jax.random.normal(k[1], (2, 1, 3))
    full = jnp.concatenate([a, jnp.broadcast_to(s, (2, 10, 3))], -1)
    lin = nets.Linear(7, name="l")
    split = nets.SplitLinear(7, name="l")
    p = lin.init(k[2], full)
    q = split.init(k[2], a, s)
    assert jax.tree.map(jnp.shape, p) == jax.tree.map(jnp.shape, q)
    np.testing.assert_array_equal(p["params"]["kernel"], q["params"]["kernel"])
    p = jax.tree.map(lambda x: x + 0.1, p)  # Nonzero bias too.
    out = split.apply(p, a, s)
    assert out.shape == (2, 10, 7)
    np.testing.assert_allclose(out, lin.apply(p, full), rtol=1e-5, atol=1e-5)
    # Each column's output depends on its own row of `a`: changing one column moves only it.
    b = a.at[:, 3].add(1.0)
    moved = np.abs(np.asarray(split.apply(p, b, s) - out)).max(-1)
    assert (moved[:, 3] > 0).all() and (moved[:, np.arange(10) != 3] == 0).all()


def _random_states(env, games=8, steps=6):
    _, tr = jax.jit(
        lambda k: rollout.trace(
            env,
            heuristics.batch_policy(heuristics.make_policy(env, "random")),
            k,
            num_games=games,
            steps=steps,
        )
    )(jax.random.key(1))
    return jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), tr.ts)


@pytest.mark.parametrize("width", [3, 1000])
def test_plan2_scores_the_best_first_placements_two_placements_deep(width):
    """plan2: the `board_plan_width` best allowed first placements (one-placement score) get
    r + c max_a' [r' + c' V(s'', piece 3)] through the model, every other one -inf; the
    policy plays the best of them. Checked against a loop over states and placements."""
    env = Tetris(height=8, width=6, queue_size=2)
    with pytest.raises(configs.ConfigError, match="board_plan_width"):
        configs.get_config("tiny", board_plan_width=0)
    agent = _agent(env, board_plan_width=width)
    params = agent.init(jax.random.key(0)).params
    ts = _random_states(env)
    obs = ts.observation
    mask = np.asarray(obs.action_mask)
    assert not mask.all()
    pieces = jnp.concatenate([obs.piece[:, None], obs.queue[:, :2]], 1)
    got, first = agent.plan2(params, params["critic"], obs.board, pieces, obs.action_mask)
    got = np.asarray(got)
    q1, (nxt, rew, con) = agent.lookahead(
        params, params["critic"], obs.board, obs.piece, obs.queue[:, 0]
    )
    q1, nxt, rew, con = (np.asarray(x) for x in (q1, nxt, rew, con))
    # It also returns the first placement's predictions, as the one-placement lookahead's.
    for a, b in zip(first, (nxt, rew, con), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    A = env.num_actions
    for n in range(obs.board.shape[0]):
        allowed = np.flatnonzero(mask[n])
        k = min(width, A, len(allowed))
        finite = np.flatnonzero(np.isfinite(got[n]))
        assert len(finite) == k and mask[n, finite].all()
        # The expanded ones are the k best by q1 (ties between duplicate placements aside).
        assert q1[n, finite].min() >= np.sort(q1[n, allowed])[-k] - 1e-6
        q2, _ = agent.lookahead(
            params,
            params["critic"],
            jnp.asarray(nxt[n, finite]),
            jnp.full((k,), pieces[n, 1]),
            jnp.full((k,), pieces[n, 2]),
        )
        want = rew[n, finite] + con[n, finite] * np.asarray(q2).max(-1)
        np.testing.assert_allclose(got[n, finite], want, rtol=1e-5, atol=1e-5)
    act, _ = agent.policy(params, agent.initial_carry(len(mask)), _obs(ts), None, "plan2")
    act = np.asarray(act)
    assert mask[np.arange(len(mask)), act].all()
    np.testing.assert_array_equal(got[np.arange(len(mask)), act], got.max(-1))
    if width >= A:  # Every allowed placement expanded.
        np.testing.assert_array_equal(np.isfinite(got), mask)
    with pytest.raises(ValueError, match="plan2"):
        short = Tetris(height=8, width=6, queue_size=1)
        one = _agent(short, imag_length=1)
        one.policy(
            one.init(jax.random.key(0)).params,
            one.initial_carry(1),
            _obs(jax.tree.map(lambda x: x[:1], _random_states(short, 1, 1))),
            None,
            "plan2",
        )


def test_act_plan2_collects_with_plan2_and_explores_as_told():
    """board_act_plan2: the training ("sample") policy plays plan2's choice, and its random
    share (board_explore) still draws from the allowed placements; off, it is the
    one-placement lookahead's."""
    env = Tetris(height=8, width=6, queue_size=2)
    with pytest.raises(configs.ConfigError, match="board_act_plan2"):
        configs.get_config("tiny", board_act_plan2=1)
    with pytest.raises(configs.ConfigError, match="board_act_plan2.*world_model"):
        configs.get_config("tiny", board_act_plan2=True)
    ts = _random_states(env)
    obs, mask = _obs(ts), np.asarray(ts.observation.action_mask)
    rows = np.arange(len(mask))
    key = jax.random.key(3)

    def act(agent, mode):
        params = _noised(agent.init(jax.random.key(0)).params)
        out, _ = agent.policy(params, agent.initial_carry(len(mask)), obs, key, mode)
        return np.asarray(out)

    kw = {"board_plan_width": 3, "board_explore": 0.0}
    planned = act(_agent(env, **kw), "plan2")
    one = act(_agent(env, **kw), "greedy")
    assert (planned != one).any()  # The two policies differ on these states.
    np.testing.assert_array_equal(act(_agent(env, board_act_plan2=True, **kw), "sample"), planned)
    np.testing.assert_array_equal(act(_agent(env, **kw), "sample"), one)
    # Greedy evaluation stays one placement deep.
    np.testing.assert_array_equal(act(_agent(env, board_act_plan2=True, **kw), "greedy"), one)
    kw["board_explore"] = 1.0
    explored = act(_agent(env, board_act_plan2=True, **kw), "sample")
    assert mask[rows, explored].all() and (explored != planned).any()


def _noised(params, scale=0.3):
    """Params with every weight perturbed: fresh reward and value heads output zero, and every
    placement would tie."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    return jax.tree.unflatten(
        tree,
        [
            x + scale * jax.random.normal(k, x.shape, x.dtype)
            for k, x in zip(keys, leaves, strict=True)
        ],
    )


def test_imag_plan2_rolls_out_plan2_choices_through_the_model():
    """board_imag_plan2: every imagined step takes plan2's choice (the replayed mask at the
    first step, every placement after), through the model, with the real queue's pieces; off,
    the one-placement lookahead's. It needs a queue of imag_length + 1 pieces."""
    env = Tetris(height=8, width=6, queue_size=3, reward_mode="lines_only")
    with pytest.raises(configs.ConfigError, match="board_imag_plan2"):
        configs.get_config("tiny", board_imag_plan2=1)
    with pytest.raises(configs.ConfigError, match="board_imag_plan2.*world_model"):
        configs.get_config("tiny", board_imag_plan2=True)
    with pytest.raises(ValueError, match="board_imag_plan2.*queue"):
        _agent(env, board_imag_plan2=True, imag_length=3)
    kw = {"board_plan_width": 3, "imag_length": 2}
    agent, plain = _agent(env, board_imag_plan2=True, **kw), _agent(env, **kw)
    state = agent.init(jax.random.key(0))
    params, slow = _noised(state.params), _noised(state.params)["critic"]
    batch = _play_batch(env, jax.random.key(1), 4, 8)
    boards, pieces, rew, con, _ = agent._imagine(params, slow, batch, jax.random.key(2))
    other, *_ = plain._imagine(params, slow, batch, jax.random.key(2))
    assert boards.shape == (8, 3, 8, 6) and pieces.shape == (8, 3)
    assert (np.asarray(boards) != np.asarray(other)).any()  # The two rollouts differ.
    last = lambda x: x[:, -2:].reshape((8, *x.shape[2:]))  # noqa: E731
    all_pieces = np.concatenate([last(batch["piece"])[:, None], last(batch["queue"])], 1)
    np.testing.assert_array_equal(pieces, all_pieces[:, :3])
    mask = np.asarray(last(batch["action_mask"]))
    for h in range(2):
        m = mask if h == 0 else np.ones_like(mask)
        q, (nxt, r, c) = agent.plan2(
            params, slow, boards[:, h], jnp.asarray(all_pieces[:, h : h + 3]), jnp.asarray(m)
        )
        act = np.asarray(jnp.argmax(jnp.where(m, q, -jnp.inf), -1))
        rows = np.arange(8)
        assert m[rows, act].all()
        np.testing.assert_array_equal(boards[:, h + 1], np.asarray(nxt)[rows, act])
        np.testing.assert_allclose(rew[:, h + 1], np.asarray(r)[rows, act], rtol=1e-6)
        np.testing.assert_allclose(con[:, h + 1], np.asarray(c)[rows, act], rtol=1e-6)
    state, m = agent.train_step(state, batch, jax.random.key(3))
    assert np.isfinite(float(m["loss/value"]))


def test_top_k_expansion_gathers_the_best_allowed_and_scatters_back():
    q = jnp.array([[3.0, 9.0, 1.0, 7.0], [5.0, 0.0, 2.0, 4.0]])
    mask = jnp.array([[True, False, True, True], [False, False, True, False]])
    top_q, top_a, gather = top_k_expansion(q, mask, 2)
    np.testing.assert_array_equal(top_a[0], [3, 0])  # 9.0 is masked off
    assert top_a[1, 0] == 2 and np.isneginf(top_q[1, 1])  # one action allowed in row 1
    x = jnp.arange(8.0).reshape(2, 4) * 10
    np.testing.assert_array_equal(gather(x)[0], [30.0, 0.0])
    y = jnp.arange(16.0).reshape(2, 4, 2)
    assert gather(y).shape == (2, 2, 2)
    np.testing.assert_array_equal(gather(y)[0, 0], y[0, 3])
    out = scatter_expansion(top_q, top_a, jnp.array([[1.0, 2.0], [3.0, 4.0]]), 4)
    np.testing.assert_array_equal(out[0], [2.0, -np.inf, -np.inf, 1.0])
    # The second pick of row 1 was never allowed: -inf, whatever its score.
    np.testing.assert_array_equal(out[1], [-np.inf, -np.inf, 3.0, -np.inf])
