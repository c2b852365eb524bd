"""The world model on real games: trajectories, its predictions, and their scores.

`measure(agent, params, env, key, ...)` plays games with the agent's policy and scores the
world model on them (cheap at its defaults: 8 games of at most 200 pieces, for every training
checkpoint); `flat_metrics(report)` gives its scalars as "wm/open_loop_1/board_exact", ...
What each score means: `experiments/world_model.py` (the program).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax import model, outs, rssm
from dreamer_jax.agent import Agent
from dreamer_jax.board import BoardAgent
from experiments.lib import policies
from tetris_jax import Tetris, rollout

HORIZONS = (1, 5, 15)


class Trajectories(NamedTuple):
    """Real games, batch-major (N games, T steps); step t is the t-th observation of a game."""

    obs: dict[str, jax.Array]  # The scored fields (board, piece, queue, ...), (N, T, ...).
    action: jax.Array  # (N, T) int32 chosen on observation t.
    chosen: jax.Array  # (N, T, F) that action's real features (F = 0 without them).
    # (N, T, ...) posterior state after observation t (it chose the action); () for the board
    # world model, whose state is the observation itself.
    post: Any
    reward: jax.Array  # (N, T) received on arriving at t.
    lines: jax.Array  # (N, T) lines cleared on arriving at t.
    terminal: jax.Array  # (N, T) bool: t is a game over.
    valid: jax.Array  # (N, T) bool: t belongs to the game (a prefix of each row).
    # (N, T, ...) the env state of each step, kept for the board world model (its planning
    # scores compare every placement's prediction with the real rules); () otherwise.
    states: Any = ()


class Frame(NamedTuple):
    """The model's predictions of steps (N, T): decoded fields, reward mean, P(continue)."""

    fields: dict[str, jax.Array]
    reward: jax.Array
    cont: jax.Array


def shift(x: jax.Array, h: int) -> jax.Array:
    """y[:, s] = x[:, s + h] (zeros past the end): the target of a prediction h steps ahead."""
    if h == 0:
        return x
    N, T = x.shape[:2]
    pad = jnp.zeros((N, min(h, T), *x.shape[2:]), x.dtype)
    return jnp.concatenate([x[:, h:], pad], 1)


# ----- scores: pure functions on arrays -----


def _mean(x: jax.Array, w: jax.Array) -> jax.Array:
    """Mean of x over the entries where w; NaN where there are none."""
    w = w.astype(jnp.float32)
    return (x.astype(jnp.float32) * w).sum() / w.sum()


def field_scores(
    pred: Mapping[str, jax.Array], target: Mapping[str, jax.Array], valid: jax.Array
) -> dict[str, jax.Array]:
    """Per field of `pred`: `{name}_exact`, the share of valid entries with every element right,
    and (fields with a shape) `{name}_error`, the share of elements (cells, queue slots)
    wrong. pred[name], target[name] (*lead, *field shape); valid (*lead) bool.
    """
    out = {}
    for name, p in pred.items():
        t = target[name]
        assert p.shape == t.shape and t.shape[: valid.ndim] == valid.shape, (
            name,
            p.shape,
            t.shape,
            valid.shape,
        )
        if t.size == 0:
            continue
        wrong = p != t
        axes = tuple(range(valid.ndim, t.ndim))
        out[f"{name}_exact"] = _mean(~wrong.any(axes) if axes else ~wrong, valid)
        if axes:
            out[f"{name}_error"] = _mean(wrong.mean(axes), valid)
    return out


def event_scores(
    pred_reward: jax.Array,
    pred_lines: jax.Array,
    pred_continue: jax.Array,
    reward: jax.Array,
    lines: jax.Array,
    terminal: jax.Array,
    valid: jax.Array,
) -> dict[str, jax.Array]:
    """Reward, lines and game-over scores of predictions against the real steps, all (...)."""
    cleared, over = valid & (lines > 0), valid & terminal
    return {
        "reward_abs_error": _mean(jnp.abs(pred_reward - reward), valid),
        "lines_exact": _mean(pred_lines == lines, valid),
        "lines_exact_when_cleared": _mean(pred_lines == lines, cleared),
        "continue_accuracy": _mean(pred_continue == ~terminal, valid),
        "terminal_accuracy": _mean(~pred_continue, over),
        "steps": valid.sum(),
        "cleared_steps": cleared.sum(),
        "terminal_steps": over.sum(),
    }


def frame_scores(pred: Frame, traj: Trajectories, h: int) -> dict[str, jax.Array]:
    """Field and event scores of predictions of the steps h after each step (h = 0: posterior)."""
    valid, reward, lines = shift(traj.valid, h), shift(traj.reward, h), shift(traj.lines, h)
    target = {k: shift(v, h) for k, v in traj.obs.items()}
    # The model's implied lines: its reward less the real non-line part of the reward.
    pred_lines = jnp.round(pred.reward - (reward - lines.astype(jnp.float32))).astype(lines.dtype)
    events = (pred.reward, pred_lines, pred.cont > 0.5, reward, lines, shift(traj.terminal, h))
    out = {**field_scores(pred.fields, target, valid), **event_scores(*events, valid)}
    if "board" in pred.fields:
        # Where the board errors are: steps whose last transition (the one into the predicted
        # step) cleared lines, and the others.
        board = ({"board": pred.fields["board"]}, {"board": target["board"]})
        for name, where in (("cleared", lines > 0), ("not_cleared", lines == 0)):
            exact = field_scores(*board, valid & where)["board_exact"]
            out[f"board_exact_when_{name}"] = exact
    return out


def score(
    traj: Trajectories,
    preds: Mapping[str, Frame],
    *,
    horizons: Sequence[int],
    split_queue: bool,
) -> dict[str, Any]:
    """The report's numbers (as arrays) from predictions `preds` ({"posterior": Frame, "1":
    Frame, ...}: entry s of horizon h predicts step s + h) and the real trajectories.

    split_queue (placement mode): also score the queue slots the start observation showed
    ("queue_known") apart from the others ("queue_unknown").
    """
    empty = {k: jnp.zeros_like(v) for k, v in traj.obs.items() if v.dtype == jnp.bool_}
    valid = traj.valid
    report = {"posterior": frame_scores(preds["posterior"], traj, 0), "open_loop": {}}
    base = {"copy_start": {}, "copy_posterior": {}, "all_empty": {}, "no_event": {}}
    base["all_empty"]["posterior"] = field_scores(empty, traj.obs, valid)
    base["no_event"]["posterior"] = _no_event(traj, 0)
    for h in horizons:
        pred = preds[str(h)]
        scores = frame_scores(pred, traj, h)
        target, target_valid = {k: shift(v, h) for k, v in traj.obs.items()}, shift(valid, h)
        if split_queue and "queue" in pred.fields:
            q = traj.obs["queue"].shape[-1]
            known = max(q - h, 0)
            parts = {"queue_known": (slice(0, known)), "queue_unknown": slice(known, q)}
            scores.update(
                field_scores(
                    {k: pred.fields["queue"][..., s] for k, s in parts.items()},
                    {k: target["queue"][..., s] for k, s in parts.items()},
                    target_valid,
                )
            )
        report["open_loop"][str(h)] = scores
        base["copy_start"][str(h)] = field_scores(traj.obs, target, target_valid)
        # The model's own reconstruction of the start, unchanged: what the dynamics add.
        post = preds["posterior"].fields
        base["copy_posterior"][str(h)] = field_scores(post, target, target_valid)
        base["all_empty"][str(h)] = field_scores(empty, target, target_valid)
        base["no_event"][str(h)] = _no_event(traj, h)
    report["baselines"] = base
    return report


def _no_event(traj: Trajectories, h: int) -> dict[str, jax.Array]:
    """The "no lines, the game goes on" baseline's event scores at horizon h."""
    lines, term = shift(traj.lines, h), shift(traj.terminal, h)
    zero = jnp.zeros_like(traj.reward)
    scores = event_scores(
        zero,
        jnp.zeros_like(lines),
        jnp.ones_like(term),
        shift(traj.reward, h),
        lines,
        term,
        shift(traj.valid, h),
    )
    keys = ("lines_exact", "lines_exact_when_cleared", "continue_accuracy", "terminal_accuracy")
    return {k: scores[k] for k in keys}


# Steps per pass of `plan_scores`: each step evaluates the model on every placement, so one pass
# over all steps of long games (16 games x 2,000 steps x 40 placements) runs out of memory.
PLAN_CHUNK = 1024


def chunked(fn, xs: Any, chunk: int) -> Any:
    """`fn` over the leading axis of `xs` in passes of `chunk` (`jax.lax.map`), the same as
    `fn(xs)` for a function that treats rows independently; the last pass is padded with
    copies of the last row, whose outputs are dropped."""
    M = jax.tree.leaves(xs)[0].shape[0]
    if M <= chunk:
        return fn(xs)
    n = -(-M // chunk)
    pad = lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], n * chunk - M, 0)])  # noqa: E731
    parts = jax.tree.map(lambda x: pad(x).reshape((n, chunk, *x.shape[1:])), xs)
    out = jax.lax.map(fn, parts)
    return jax.tree.map(lambda x: x.reshape((n * chunk, *x.shape[2:]))[:M], out)


def plan_scores(
    agent: BoardAgent, params: Any, env: Tetris, traj: Trajectories, chunk: int | None = None
) -> dict:
    """How well the board model plans, on the real states of the games: the model's prediction
    of *every* allowed placement (not only the one played) against the real rules, and the
    lookahead's choice against the one the same critic makes on the real next boards.

    placements_board_exact / _lines_exact / _continue_accuracy: shares over (valid step, allowed
    placement) pairs. choice_agreement: share of steps where the argmax of the model's
    Q = r + c V(board') is also the argmax of Q computed with the real r, game over and board'
    (`policies.true_dynamics_policy`'s ranking); regret: the mean real-Q gap between the real
    best placement and the model's choice (value units, lines for `lines_only`). Computed
    `chunk` steps at a time (default `PLAN_CHUNK`)."""
    N, T = traj.action.shape
    flat = lambda x: x.reshape((N * T, *x.shape[2:]))  # noqa: E731
    states = jax.tree.map(flat, traj.states)
    board, piece, queue = (flat(traj.obs[k]) for k in ("board", "piece", "queue"))
    valid = flat(traj.valid) & ~flat(traj.terminal)  # Steps with a decision to make.
    critic = params["critic"]

    def per_step(x):
        states, board, piece, nxt_piece = x
        q_model, (nxt, rew, con) = agent.lookahead(params, critic, board, piece, nxt_piece)
        q_real, nts = policies.true_lookahead(env, agent, critic, states, nxt_piece)
        lines = nts.metrics["lines_cleared"]
        mask = jax.vmap(env.action_mask)(states)
        pred_lines = jnp.round(rew - (nts.reward - lines.astype(jnp.float32)))
        masked = lambda q: jnp.where(mask, q, -jnp.inf)  # noqa: E731
        best_real, choice = jnp.argmax(masked(q_real), -1), jnp.argmax(masked(q_model), -1)
        pick = lambda q, a: jnp.take_along_axis(q, a[:, None], 1)[:, 0]  # noqa: E731
        return {
            "board_exact": (nxt == nts.observation.board).all((-1, -2)),
            "lines_exact": pred_lines.astype(lines.dtype) == lines,
            "cleared": lines > 0,
            "continue_right": (con > 0.5) == ~nts.is_terminal,
            "mask": mask,
            "agree": choice == best_real,
            "regret": pick(q_real, best_real) - pick(q_real, choice),
        }

    s = chunked(per_step, (states, board, piece, queue[:, 0]), chunk or PLAN_CHUNK)
    pairs = valid[:, None] & s["mask"]
    return {
        "placements_board_exact": _mean(s["board_exact"], pairs),
        "placements_lines_exact": _mean(s["lines_exact"], pairs),
        "placements_lines_exact_when_cleared": _mean(s["lines_exact"], pairs & s["cleared"]),
        "placements_board_exact_when_cleared": _mean(s["board_exact"], pairs & s["cleared"]),
        "placements_continue_accuracy": _mean(s["continue_right"], pairs),
        "choice_agreement": _mean(s["agree"], valid),
        "regret": _mean(s["regret"], valid),
        "steps": valid.sum(),
        "placements": pairs.sum(),
    }


# ----- playing and predicting -----


def scored_fields(env: Tetris) -> tuple[str, ...]:
    """The fields scored: the board, the current piece and the queue; in direct mode also the
    falling piece's cells (in placement mode they only show the piece at its spawn)."""
    return ("board", "piece", "queue") + (("active",) if env.action_mode == "direct" else ())


@functools.lru_cache(maxsize=8)
def _collect_fn(env: Tetris, agent: Agent, games: int, steps: int, mode: str):
    fields = scored_fields(env)

    def run(params, key):
        # tetris_jax.rollout's key use: the same seed gives the games `evaluate` plays.
        act = policies.agent_policy(agent, params, mode)
        _, tr = rollout.trace(
            env, act, key, num_games=games, steps=steps, carry=agent.initial_carry(games)
        )
        ts, carry = tr.ts, tr.info  # The time step acted on, the carry after acting on it.
        # A game's steps are those it was going at, and the frozen game-over step after them.
        after = jnp.concatenate([jnp.zeros_like(tr.going[:1]), tr.going[:-1]], 0)
        board_model = isinstance(agent, BoardAgent)
        none = jnp.zeros((*tr.action.shape, 0), jnp.float32)
        rows = Trajectories(
            {f: getattr(ts.observation, f) for f in fields},
            tr.action,
            none if board_model else carry.prev_features,
            () if board_model else carry.state,
            ts.reward,
            ts.metrics["lines_cleared"],
            ts.is_terminal,
            tr.going | after,
            tr.states if board_model else (),
        )
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), rows)

    return jax.jit(run)


def collect(
    env: Tetris,
    agent: Agent,
    params: Any,
    key: jax.Array,
    *,
    episodes: int,
    max_pieces: int,
    mode: str = "greedy",
) -> Trajectories:
    """`episodes` games from the empty board, at most `max_pieces` steps each, on device."""
    return _collect_fn(env, agent, episodes, max_pieces, mode)(params, key)


def decode(agent: Agent, params: Any, state: rssm.State, fields: Sequence[str]) -> Frame:
    """The model's predictions from latent states (...): fields at their mode, reward, continue."""
    nets, spec = agent.nets, dict(agent.obs_spec)
    feat = rssm.features(state)
    logits = nets.dec.apply(params["dec"], feat)
    mode = lambda k: (  # noqa: E731
        logits[k] > 0 if spec[k].kind == "binary" else jnp.argmax(logits[k], -1).astype(jnp.int32)
    )
    decoded = {k: mode(k) for k in fields}
    bins = outs.twohot_bins(agent.config.bins)
    reward = outs.twohot_mean(nets.rew.apply(params["rew"], feat), bins)
    cont = jax.nn.sigmoid(nets.con.apply(params["con"], feat)[..., 0])
    return Frame(decoded, reward, cont)


def action_inputs(agent: Agent, traj: Trajectories) -> jax.Array:
    """The RSSM action input of each real action (N, T, A + F), as the agent acts."""
    onehot = jax.nn.one_hot(traj.action, agent.num_actions, dtype=jnp.float32)
    return model.action_input(onehot, traj.chosen)


def imagine_real(
    agent: Agent, params: Any, start: rssm.State, act: jax.Array, key: jax.Array, offsets: jax.Array
) -> rssm.State:
    """Prior steps from `start` (N, T, ...) with the real actions: the step at offset k takes
    act[:, s + k] at start s (act (N, T + pad, A + F)). Returns the last state (N, T, ...)."""
    N, T = start.deter.shape[:2]
    flat = lambda x: x.reshape((N * T, *x.shape[2:]))  # noqa: E731

    def step(state, inp):
        k, sub = inp
        a = jax.lax.dynamic_slice_in_dim(act, k, T, axis=1)
        nxt, _ = agent.nets.rssm.apply(
            params["rssm"], state, flat(a), sub, method=rssm.RSSM.img_step
        )
        return nxt, None

    keys = jax.random.split(key, offsets.shape[0])
    last, _ = jax.lax.scan(step, jax.tree.map(flat, start), (offsets, keys))
    return jax.tree.map(lambda x: x.reshape((N, T, *x.shape[1:])), last)


def board_open_loop(
    agent: BoardAgent, params: Any, traj: Trajectories, horizon: int
) -> list[tuple[jax.Array, jax.Array, jax.Array]]:
    """The board model's open loop from every real board with the real actions and pieces:
    [(boards (N, T, H, W), reward (N, T), P(continue) (N, T)) h steps after each step, for
    h = 1..horizon]. Within the queue (h <= queue size) every piece placed was shown at the
    start; beyond it the real pieces are given (the board model does not predict pieces)."""
    N, T = traj.action.shape
    pad = (
        lambda x: jnp.concatenate(  # noqa: E731
            [x, jnp.zeros((N, horizon, *x.shape[2:]), x.dtype)], 1
        )
    )
    act, piece = pad(traj.action), pad(traj.obs["piece"])
    board, out = traj.obs["board"], []
    for k in range(horizon):
        a, p = act[:, k : k + T], piece[:, k : k + T]
        plane = jnp.asarray(agent.action_planes)[p, a]
        board, _, rew, con = agent.predict(params, board, plane)
        out.append((board, rew, con))
    return out


def predict_board(
    agent: BoardAgent, params: Any, traj: Trajectories, *, horizons: Sequence[int]
) -> dict[str, Frame]:
    """`predict` for the board world model: its state is the observation, so the "posterior"
    board is the real one; its reward and continue are the one-step predictions of arriving at
    each step."""
    steps = board_open_loop(agent, params, traj, max(horizons))
    _, rew1, con1 = steps[0]
    first = lambda x, v: jnp.concatenate([jnp.full_like(x[:, :1], v), x[:, :-1]], 1)  # noqa: E731
    preds = {"posterior": Frame({"board": traj.obs["board"]}, first(rew1, 0.0), first(con1, 1.0))}
    for h in horizons:
        board, rew, con = steps[h - 1]
        preds[str(h)] = Frame({"board": board}, rew, con)
    return preds


def predict(
    agent: Agent, params: Any, traj: Trajectories, key: jax.Array, *, horizons: Sequence[int]
) -> dict[str, Frame]:
    """{"posterior": Frame of every step, "h": Frame of the prior h steps after every step}."""
    if isinstance(agent, BoardAgent):
        return predict_board(agent, params, traj, horizons=horizons)
    fields = tuple(traj.obs)
    preds = {"posterior": decode(agent, params, traj.post, fields)}
    act = action_inputs(agent, traj)
    act = jnp.concatenate([act, jnp.zeros_like(act[:, : max(horizons)])], 1)
    state, done = traj.post, 0
    for h in sorted(horizons):  # One rollout, decoded at each horizon on the way.
        key, sub = jax.random.split(key)
        state = imagine_real(agent, params, state, act, sub, jnp.arange(done, h))
        preds[str(h)], done = decode(agent, params, state, fields), h
    return preds


@functools.lru_cache(maxsize=8)
def _report_fn(agent: Agent, horizons: tuple[int, ...], split_queue: bool, env: Tetris | None):
    def run(params, traj, key):
        preds = predict(agent, params, traj, key, horizons=horizons)
        out = score(traj, preds, horizons=horizons, split_queue=split_queue)
        if env is not None:
            out["planning"] = plan_scores(agent, params, env, traj)
        return out

    return jax.jit(run)


def _python(tree: Any) -> Any:
    """Arrays to floats/ints; NaN (nothing to average) to None."""
    if isinstance(tree, dict):
        return {k: _python(v) for k, v in tree.items()}
    x = np.asarray(tree)
    if np.issubdtype(x.dtype, np.integer):
        return int(x)
    return None if np.isnan(x) else float(x)


def report(
    agent: Agent,
    params: Any,
    env: Tetris,
    traj: Trajectories,
    key: jax.Array,
    *,
    horizons: Sequence[int] = HORIZONS,
) -> dict[str, Any]:
    """The report of `measure` on given trajectories."""
    horizons = tuple(sorted(set(int(h) for h in horizons)))
    placement = env.action_mode == "placement"
    # The planning scores need the env states of the steps (kept for the board world model).
    plan_env = env if isinstance(agent, BoardAgent) and jax.tree.leaves(traj.states) else None
    out = _python(_report_fn(agent, horizons, placement, plan_env)(params, traj, key))
    valid = np.asarray(traj.valid)
    ended = np.asarray(traj.terminal & traj.valid).any(1)
    q = env.queue_size
    info = {
        "steps": int(valid.sum()),
        "episodes": int(valid.shape[0]),
        "max_pieces": valid.shape[1],
        "horizons": list(horizons),
        "reward_mode": env.reward_mode,
        "queue_size": q,
        "action_features": traj.chosen.shape[-1] > 0,
        "games": {
            "steps_mean": float(valid.sum(1).mean()),
            "ended": int(ended.sum()),
            "lines_mean": float((np.asarray(traj.lines) * valid).sum(1).mean()),
        },
        # What the start observation (and the real actions) determine h steps on.
        "determined": {
            str(h): {
                "board": placement and h <= q + 1,
                "piece": placement and h <= q,
                "queue_slots": max(q - h, 0) if placement else 0,
            }
            for h in horizons
        },
    }
    # In horizon order (jit returns dicts with sorted keys).
    order = lambda d: {k: d[k] for k in ["posterior", *map(str, horizons)] if k in d}  # noqa: E731
    base = {
        k: order(out["baselines"][k])
        for k in ("copy_start", "copy_posterior", "all_empty", "no_event")
    }
    result = {
        **info,
        "posterior": out["posterior"],
        "open_loop": order(out["open_loop"]),
        "baselines": base,
    }
    if "planning" in out:
        result["planning"] = out["planning"]
    return result


def measure(
    agent: Agent,
    params: Any,
    env: Tetris,
    key: jax.Array,
    *,
    episodes: int = 8,
    max_pieces: int = 200,
    horizons: Sequence[int] = HORIZONS,
    mode: str = "greedy",
) -> dict[str, Any]:
    """Plays `episodes` games with the agent's policy and scores its world model on them (see
    the module docstring). Everything is jitted and batched over games; the compiled functions
    are cached per (env, agent, sizes), so calling it at every checkpoint compiles once."""
    if not horizons or min(horizons) < 1:
        raise ValueError(f"horizons: got {horizons!r}; need integers >= 1")
    if episodes < 1 or max_pieces <= max(horizons):
        raise ValueError(
            f"episodes: got {episodes}, need >= 1; max_pieces: got {max_pieces}, "
            f"need > the longest horizon {max(horizons)}"
        )
    k_play, k_model = jax.random.split(key)
    traj = collect(env, agent, params, k_play, episodes=episodes, max_pieces=max_pieces, mode=mode)
    return report(agent, params, env, traj, k_model, horizons=horizons)


def flat_metrics(report: Mapping[str, Any], prefix: str = "wm") -> dict[str, float]:
    """The report's scores as flat scalars: "wm/posterior/board_exact",
    "wm/open_loop_1/board_exact", "wm/copy_start_1/board_exact", ...; missing ones (None:
    nothing to average, e.g. no terminal step) are left out."""
    groups = {"posterior": report["posterior"]}
    if "planning" in report:
        groups["planning"] = report["planning"]
    groups.update({f"open_loop_{h}": v for h, v in report["open_loop"].items()})
    for name, by in report["baselines"].items():
        groups.update({f"{name}_{h}": v for h, v in by.items()})
    return {
        f"{prefix}/{g}/{k}": float(v)
        for g, d in groups.items()
        for k, v in d.items()
        if v is not None
    }
