"""A world model whose state is the board: learned dynamics, and an agent that plans through it.

`BoardAgent(config, obs_spec, num_actions, action_planes)` has the interface of `Agent`
(`init`, `initial_carry`, `policy`, `train_step`) for grid games with one decision per piece
(Tetris placement mode). Its world model is

    board', reward, continue = dynamics(board, plane(piece, action))

learned from replayed real transitions (per-cell Bernoulli, twohot reward, Bernoulli continue),
where `plane(piece, action)` is the action drawn in board coordinates: the piece's cells in the
strip above its target column (a static table the env supplies; it says where an action puts
the piece before it falls, not where it lands, nor what the board becomes). The state the model
predicts is the board itself, so an open-loop prediction is a board one can compare with the
real one cell by cell.

The agent acts by lookahead through the learned model: for every action it predicts the next
board, the reward and the continue probability, and scores the action by

    Q(s, a) = r(s, a) + c(s, a) V(board'(s, a), next piece)

using the model's most likely board (every cell at its mode), not a sample. The critic V is
learned in imagination only (DreamerV3's critic loss: twohot lambda-returns with a slow-critic
regulariser), on `imag_length`-step rollouts from replayed states that follow the same lookahead
policy through the model; the pieces of those steps are the real queue's (every piece placed in
the next `queue_size` steps is known). By default no real return trains the critic and no
hand-made feature enters: the skill, if any, comes from the world model and values learned on
its predictions. With `config.board_features` the critic also reads features the env computes
from a board (Tetris: holes, transitions, wells, heights), applied to the boards it values:
the model's predicted ones, never the real afterstates. With `config.board_repval > 0` the
critic is also trained on the replayed real boards with the real rewards' lambda-returns
(DreamerV3's replay-value loss, on every replayed step); placements are still ranked by its
values of the model's predicted boards. With `config.board_imag_batch` the model trains on
every sequence of a batch and the critic on the first `board_imag_batch` only. The diagnostic
`config.board_oracle` puts the env's real rules (`true_step`) in place of the model in acting
and imagination and trains no model: what the critic's learning reaches with a perfect model.
`config.board_act_plan2` collects the data with `plan2` (two placements deep through the
model); `config.board_imag_plan2` makes the imagined rollouts follow it, so that the critic
learns the value of the search's policy.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dreamer_jax import outs, returns
from dreamer_jax.agent import TrainState, apply_gradients, fresh_state
from dreamer_jax.board_nets import Critic, Dynamics
from dreamer_jax.configs import Config, validate
from dreamer_jax.optim import make_optimizer

sg = jax.lax.stop_gradient


def top_k_expansion(q, mask, k: int):
    """The k best allowed actions of each row of q (N, A), for a search that expands them:
    (top_q (N, k), top_a (N, k), gather), gather(x) taking x (N, A, ...) at top_a -> (N, k,
    ...). top_q is -inf where fewer than k actions are allowed."""
    top_q, top_a = jax.lax.top_k(jnp.where(mask, q, -jnp.inf), k)
    n = q.shape[0]

    def gather(x):
        return jnp.take_along_axis(x, top_a.reshape((n, k) + (1,) * (x.ndim - 2)), 1)

    return top_q, top_a, gather


def scatter_expansion(top_q, top_a, score, num_actions: int):
    """The (N, A) scores of a `top_k_expansion`: score (N, k) at top_a, -inf elsewhere and
    where top_q is -inf (an action that was never allowed)."""
    score = jnp.where(jnp.isfinite(top_q), score, -jnp.inf)
    rows = jnp.arange(top_a.shape[0])[:, None]
    return jnp.full((top_a.shape[0], num_actions), -jnp.inf).at[rows, top_a].set(score)


class BoardCarry(NamedTuple):
    """Acting state per environment: the previous action (the agent itself is Markov)."""

    prev_action: jax.Array  # (N,) int32.


@dataclasses.dataclass(frozen=True)
class BoardAgent:
    """Static definition; all arrays live in `TrainState` (params {"dyn", "critic"})."""

    config: Config
    obs_spec: tuple
    num_actions: int
    action_planes: Any  # (num_pieces, num_actions, P, W) bool numpy: the action drawn.
    # board (..., H, W) -> (..., F) float32 features of a board, for `config.board_features`
    # (Tetris: `Tetris.board_features`). Domain knowledge the env supplies, as it does the
    # planes; the critic applies it to the boards it values, which are the model's predictions.
    board_features: Any = None
    # (board (..., H, W), piece (...), action (...)) -> (next board (..., H, W) bool, reward
    # (...), game over (...) bool): the real rules, for the `config.board_oracle` diagnostic
    # (Tetris: `Tetris.board_step`).
    true_step: Any = None
    traces: dict = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self):
        validate(self.config)
        if isinstance(self.obs_spec, Mapping):
            object.__setattr__(self, "obs_spec", tuple(sorted(self.obs_spec.items())))
        spec = dict(self.obs_spec)
        for name, kind in (("board", "binary"), ("piece", "categorical"), ("queue", "categorical")):
            if name not in spec or spec[name].kind != kind:
                raise ValueError(
                    f"obs_spec[{name!r}]: the board world model needs a {kind} field {name!r}"
                )
        planes = np.asarray(self.action_planes)
        want = (spec["piece"].num_classes, self.num_actions)
        if (
            planes.ndim != 4
            or planes.shape[:2] != want
            or planes.shape[3] != spec["board"].shape[1]
        ):
            raise ValueError(
                f"action_planes: got shape {planes.shape}; need (pieces, actions, rows, width) "
                f"= ({want[0]}, {want[1]}, P, {spec['board'].shape[1]})"
            )
        if self.config.imag_length > spec["queue"].shape[0]:
            raise ValueError(
                f"imag_length: got {self.config.imag_length}; the board agent imagines with "
                f"the real queue's pieces, at most queue size {spec['queue'].shape[0]} steps"
            )
        if self.config.board_imag_plan2 and self.config.imag_length + 1 > spec["queue"].shape[0]:
            raise ValueError(
                f"board_imag_plan2: imag_length {self.config.imag_length} with plan2 needs "
                f"a queue of >= imag_length + 1 pieces, got {spec['queue'].shape[0]}"
            )
        if self.config.board_features and self.board_features is None:
            raise ValueError(
                "board_features: config.board_features=True needs a board feature function "
                "(board (..., H, W) -> (..., F)); Tetris supplies Tetris.board_features"
            )
        if self.config.board_oracle and self.true_step is None:
            raise ValueError(
                "board_oracle: config.board_oracle=True needs the real rules as a function "
                "(board, piece, action) -> (next board, reward, game over); Tetris supplies "
                "Tetris.board_step"
            )
        object.__setattr__(self, "action_planes", planes.astype(bool))
        # Hash by identity of the table's contents (jit caches key on the agent).
        object.__setattr__(self, "_planes_key", planes.tobytes())

    def __hash__(self):
        feats = repr(self.board_features) if self.config.board_features else None
        oracle = repr(self.true_step) if self.config.board_oracle else None
        key = (self.config, self.obs_spec, self.num_actions, self._planes_key, feats, oracle)
        return hash(key)

    def __eq__(self, other):
        return isinstance(other, BoardAgent) and hash(self) == hash(other)

    @functools.cached_property
    def nets(self) -> tuple[Dynamics, Critic]:
        c = self.config
        num_pieces = dict(self.obs_spec)["piece"].num_classes
        return (
            Dynamics(
                c.board_arch,
                c.board_dim,
                c.board_layers,
                c.bins,
                c.board_row_layers,
                c.board_row_dim,
                row_pool=c.board_row_pool,
            ),
            Critic(c.board_arch, c.board_dim, c.board_layers, c.bins, num_pieces),
        )

    @functools.cached_property
    def optimizer(self) -> optax.GradientTransformation:
        c = self.config
        return make_optimizer(
            lr=c.lr, agc=c.agc, eps=c.eps, beta1=c.beta1, beta2=c.beta2, warmup=c.warmup
        )

    @property
    def bins(self) -> jax.Array:
        return outs.twohot_bins(self.config.bins)

    def init(self, key: jax.Array) -> TrainState:
        dyn, critic = self.nets
        spec = dict(self.obs_spec)
        board = jnp.zeros((1, *spec["board"].shape), bool)
        plane = jnp.zeros((1, *self.action_planes.shape[2:]), bool)
        k1, k2 = jax.random.split(key)
        params = {
            "dyn": dyn.init(k1, board, plane),
            "critic": critic.init(k2, board, jnp.zeros((1,), jnp.int32), self._features(board)),
        }
        return fresh_state(params, self.optimizer)

    def initial_carry(self, batch: int) -> BoardCarry:
        return BoardCarry(jnp.zeros((batch,), jnp.int32))

    # ----- the model -----

    def planes(self, piece: jax.Array) -> jax.Array:
        """(..., A, P, W) every action of `piece` (...) drawn in board coordinates."""
        return jnp.asarray(self.action_planes)[piece]

    def predict(self, params, board: jax.Array, plane: jax.Array):
        """The model's step: (next board at its mode (..., H, W) bool, logits, reward, continue
        probability)."""
        logits, rew, con = self.nets[0].apply(params["dyn"], board, plane)
        return logits > 0, logits, outs.twohot_mean(rew, self.bins), jax.nn.sigmoid(con)

    def _features(self, board: jax.Array) -> jax.Array | None:
        if not self.config.board_features:
            return None
        return sg(jnp.asarray(self.board_features(board), jnp.float32))

    def critic_logits(self, critic_params, board: jax.Array, piece: jax.Array) -> jax.Array:
        return self.nets[1].apply(critic_params, board, piece, self._features(board))

    def value(self, critic_params, board: jax.Array, piece: jax.Array) -> jax.Array:
        return outs.twohot_mean(self.critic_logits(critic_params, board, piece), self.bins)

    def lookahead(self, params, critic_params, board, piece, next_piece):
        """Q(s, a) for every action (N, A), and the predicted next boards (N, A, H, W), rewards
        and continues (N, A). board (N, H, W); piece, next_piece (N,)."""
        N, A = board.shape[0], self.num_actions
        boards = jnp.broadcast_to(board[:, None], (N, A, *board.shape[1:]))
        if self.config.board_oracle:  # The diagnostic: the real rules as the model.
            pieces = jnp.broadcast_to(piece[:, None], (N, A))
            nxt, rew, over = self.true_step(boards, pieces, jnp.arange(A, dtype=jnp.int32))
            con = (1.0 - over.astype(jnp.float32)) * (1.0 - 1.0 / self.config.horizon)
        else:
            nxt, _, rew, con = self.predict(params, boards, self.planes(piece))
        v = self.value(critic_params, nxt, jnp.broadcast_to(next_piece[:, None], (N, A)))
        return rew + con * v, (nxt, rew, con)

    # ----- acting -----

    @functools.cached_property
    def policy(self):
        """Jitted policy(params, carry, obs, key, mode) -> (action (N,) int32, carry)."""
        return jax.jit(self._policy, static_argnames="mode")

    def _choose(self, q, mask, key, explore):
        q = jnp.where(mask, q, -jnp.inf)
        greedy = jnp.argmax(q, -1).astype(jnp.int32)
        if explore is None:
            return greedy
        k1, k2 = jax.random.split(key)
        logits = jnp.where(mask, 0.0, -jnp.inf)
        rand = jax.random.categorical(k1, logits, -1).astype(jnp.int32)
        return jnp.where(jax.random.uniform(k2, greedy.shape) < explore, rand, greedy)

    def plan2(self, params, critic_params, board, pieces, mask):
        """Two placements deep through the model: (N, A) scores, -inf off the expanded set.

        The `config.board_plan_width` best allowed placements a of the one-placement score
        `lookahead` are expanded: every placement a' of the next piece on the model's predicted
        board s'(a) is scored one placement deep, and

            Q2(s, a) = r(s, a) + c(s, a) max_a' [r(s', a') + c(s', a') V(s''(a, a'), piece 3)].

        The second placement ranges over every action, as in imagination (the model has no
        mask for boards it predicts). pieces (N, 3): the current piece and the next two (the
        queue's); board (N, H, W); mask (N, A) allowed first placements. Also returns the
        first placement's predicted boards, rewards and continues (N, A, ...), as `lookahead`."""
        N, A = board.shape[0], self.num_actions
        k = min(self.config.board_plan_width, A)
        q1, (nxt, rew, con) = self.lookahead(
            params, critic_params, board, pieces[:, 0], pieces[:, 1]
        )
        top_q, top_a, pick = top_k_expansion(q1, mask, k)  # (N, k)
        rep = lambda p: jnp.repeat(p, k)  # noqa: E731
        q2, _ = self.lookahead(
            params,
            critic_params,
            pick(nxt).reshape((N * k, *board.shape[1:])),
            rep(pieces[:, 1]),
            rep(pieces[:, 2]),
        )
        score = pick(rew) + pick(con) * q2.max(-1).reshape(N, k)
        return scatter_expansion(top_q, top_a, score, A), (nxt, rew, con)

    def _policy(self, params, carry, obs, key, mode: str = "sample"):
        if mode not in ("sample", "greedy", "plan2"):
            raise ValueError(f"mode: got {mode!r}; allowed: 'sample', 'greedy', 'plan2'")
        board, piece, queue = obs["board"], obs["piece"], obs["queue"]
        mask = obs.get("action_mask")
        if mask is None:
            mask = jnp.ones((board.shape[0], self.num_actions), bool)
        explore = self.config.board_explore if mode == "sample" else None
        if mode == "plan2" or (mode == "sample" and self.config.board_act_plan2):
            if queue.shape[-1] < 2:
                raise ValueError(f"mode {mode!r}: plan2 needs a queue of at least 2 pieces")
            pieces = jnp.concatenate([piece[:, None], queue[:, :2]], 1)
            q, _ = self.plan2(params, params["critic"], board, pieces, mask)
            act = self._choose(q, mask, key, explore)
            return act, BoardCarry(act)
        q, _ = self.lookahead(params, params["critic"], board, piece, queue[:, 0])
        act = self._choose(q, mask, key, explore)
        return act, BoardCarry(act)

    # ----- training -----

    @functools.cached_property
    def train_step(self):
        """Jitted train_step(state, batch, key) -> (state, metrics); `state` is donated."""
        return jax.jit(self._train_step, donate_argnums=0)

    def _model_loss(self, params, batch):
        """Per-transition losses of the dynamics on replayed real steps t -> t + 1."""
        c = self.config
        board, nxt = batch["board"][:, :-1], batch["board"][:, 1:]
        plane = self.planes(batch["piece"][:, :-1])  # (B, T-1, A, P, W)
        plane = jnp.take_along_axis(plane, batch["action"][:, :-1, None, None, None], 2)[:, :, 0]
        logits, rew, con = self.nets[0].apply(params["dyn"], board, plane)
        valid = (~batch["is_first"][:, 1:]).astype(jnp.float32)
        rec = -outs.bernoulli_logp(logits, nxt).sum((-1, -2))
        cleared = batch["reward"][:, 1:] > 0
        if c.board_clear_weight != 1.0:  # Line clears are rare and where the model errs.
            rec = rec * jnp.where(cleared, c.board_clear_weight, 1.0)
        rew_loss = outs.twohot_loss(rew, batch["reward"][:, 1:], self.bins)
        # Steps with a reward (line clears) are rare: their reward loss counts board_event_weight
        # times as much.
        rew_loss = rew_loss * jnp.where(batch["reward"][:, 1:] != 0, c.board_event_weight, 1.0)
        con_target = (1.0 - batch["is_terminal"][:, 1:].astype(jnp.float32)) * (
            1.0 - 1.0 / c.horizon
        )
        con_loss = -outs.bernoulli_logp(con, con_target)
        pred = logits > 0
        w = valid / jnp.maximum(valid.sum(), 1.0)
        cleared = valid * cleared
        exact = (pred == nxt).all((-1, -2))
        metrics = {
            "model/board_exact": (exact * w).sum(),
            "model/board_exact_when_cleared": (exact * cleared).sum()
            / jnp.maximum(cleared.sum(), 1.0),
            "model/cell_error": ((pred != nxt).mean((-1, -2)) * w).sum(),
            "model/reward_abs_error": (
                jnp.abs(outs.twohot_mean(rew, self.bins) - batch["reward"][:, 1:]) * w
            ).sum(),
            "model/lines_exact_when_cleared": (
                (jnp.round(outs.twohot_mean(rew, self.bins)) == batch["reward"][:, 1:]) * cleared
            ).sum()
            / jnp.maximum(cleared.sum(), 1.0),
            "model/continue_accuracy": (((con > 0) == ~batch["is_terminal"][:, 1:]) * w).sum(),
        }
        losses = {"rec/board": rec, "rew": rew_loss, "con": con_loss}
        return {k: (v * w).sum() for k, v in losses.items()}, metrics

    def _world_loss(self, losses):
        """The world model's weighted loss from `_model_loss`'s terms."""
        c = self.config
        return (
            c.scale_rec * losses["rec/board"]
            + c.scale_rew * losses["rew"]
            + (c.scale_con * losses["con"])
        )

    def _imagine(self, params, slow, batch, key):
        """Lookahead rollouts through the model from the last K replayed states of each
        sequence, pieces from the real queue. Returns boards (N, H+1, ...), pieces (N, H+1),
        rewards and continues (N, H+1) (index 0 unused), and the start weights (N,)."""
        c = self.config
        B, T = batch["is_first"].shape
        K = min(c.imag_last or T, T)
        N, H = B * K, c.imag_length
        take = lambda x: sg(x[:, -K:]).reshape((N, *x.shape[2:]))  # noqa: E731
        board, piece, queue = take(batch["board"]), take(batch["piece"]), take(batch["queue"])
        mask = take(batch["action_mask"]) if "action_mask" in batch else None
        start_w = 1.0 - take(batch["is_terminal"]).astype(jnp.float32)
        wm = sg(params)
        pieces = jnp.concatenate([piece[:, None], queue], 1)  # (N, Q + 1)
        boards, rews, cons = [board], [jnp.zeros((N,))], [jnp.ones((N,))]
        for h in range(H):
            m = mask if (h == 0 and mask is not None) else jnp.ones((N, self.num_actions), bool)
            if c.board_imag_plan2:  # The two-deep search's choice; the step is its first.
                q, (nxt, rew, con) = self.plan2(wm, slow, boards[-1], pieces[:, h : h + 3], m)
            else:
                q, (nxt, rew, con) = self.lookahead(
                    wm, slow, boards[-1], pieces[:, h], pieces[:, h + 1]
                )
            key, sub = jax.random.split(key)
            act = self._choose(q, m, sub, c.board_imag_explore)
            pick = lambda x: jnp.take_along_axis(  # noqa: E731
                x, act.reshape((N, 1) + (1,) * (x.ndim - 2)), 1
            )[:, 0]
            boards.append(pick(nxt))
            rews.append(pick(rew))
            cons.append(pick(con))
        return (
            jnp.stack(boards, 1),
            pieces[:, : H + 1],
            jnp.stack(rews, 1),
            jnp.stack(cons, 1),
            start_w,
        )

    def _loss(self, params, state: TrainState, batch, key):
        c = self.config
        if c.board_oracle:  # The real rules plan; no model is trained.
            model_losses, metrics = {"rec/board": 0.0, "rew": 0.0, "con": 0.0}, {}
        else:
            model_losses, metrics = self._model_loss(params, batch)
        # Imagination and the replay values start from the first board_imag_batch sequences.
        n = c.board_imag_batch or batch["is_first"].shape[0]
        batch = jax.tree.map(lambda x: x[:n], batch)
        boards, pieces, rew, con, start_w = self._imagine(params, state.slow_critic, batch, key)
        logits = self.critic_logits(params["critic"], boards, pieces)  # (N, H+1, bins)
        value = sg(outs.twohot_mean(logits, self.bins))
        slow = self.value(state.slow_critic, boards, pieces)
        ret = jax.vmap(returns.lambda_return, (0, 0, 0, 0, None))(
            rew, con, value, jnp.zeros_like(con), c.lam
        )  # (N, H)
        weight = sg(jnp.cumprod(con, 1))[:, :-1] * start_w[:, None]
        value_loss = weight * (
            outs.twohot_loss(logits[:, :-1], sg(ret), self.bins)
            + c.slowreg * outs.twohot_loss(logits[:, :-1], sg(slow[:, :-1]), self.bins)
        )
        value_loss = value_loss.sum() / jnp.maximum(weight.sum(), 1.0)
        repval_loss = self._repval_loss(params, state, batch, ret[:, 0]) if c.board_repval else 0.0
        world = self._world_loss(model_losses)
        total = world + c.scale_value * value_loss + c.board_repval * repval_loss
        metrics.update({f"loss/{k}": v for k, v in model_losses.items()})
        metrics.update(
            {
                "loss/world_model": world,
                "loss/value": value_loss,
                "loss/repval": repval_loss,
                "loss/total": total,
                "imag/return": ret.mean(),
                "imag/reward": rew[:, 1:].mean(),
                "imag/continue": con[:, 1:].mean(),
                "imag/value": value.mean(),
                "imag/weight": weight.mean(),
            }
        )
        return total, metrics

    def _repval_loss(self, params, state: TrainState, batch, imag_ret):
        """DreamerV3's replay-value loss, on every replayed step: the critic of the real board
        and piece is trained on the lambda-return of the real rewards of the sequence,

            R_t = r_{t+1} + gamma (1 - term_{t+1}) [(1 - lam) B_{t+1} + lam R_{t+1}],

        bootstrapped (B) from the imagination return where imagination started (the last K
        steps) and from the critic's own value (no gradient) elsewhere; cut at episode starts.
        Plus the slow-critic regulariser. `imag_ret` (B * K,) is the imagination return at each
        start. The critic still ranks placements by the model's predicted boards."""
        c = self.config
        B, T = batch["is_first"].shape
        K = imag_ret.shape[0] // B
        board, piece = sg(batch["board"]), batch["piece"]
        logits = self.critic_logits(params["critic"], board, piece)  # (B, T, bins)
        value = sg(outs.twohot_mean(logits, self.bins))
        boot = value.at[:, -K:].set(sg(imag_ret).reshape(B, K))
        cont = (1.0 - batch["is_terminal"].astype(jnp.float32)) * (1.0 - 1.0 / c.horizon)
        # Step t is the last of its episode in this window when t + 1 starts a new one.
        last = jnp.concatenate([batch["is_first"][:, 1:], jnp.zeros((B, 1), bool)], 1)
        ret = jax.vmap(returns.lambda_return, (0, 0, 0, 0, None))(
            batch["reward"].astype(jnp.float32), cont, boot, last, c.lam
        )  # (B, T - 1)
        slow = self.value(state.slow_critic, board, piece)
        weight = 1.0 - last[:, :-1].astype(jnp.float32)
        loss = weight * (
            outs.twohot_loss(logits[:, :-1], sg(ret), self.bins)
            + c.slowreg * outs.twohot_loss(logits[:, :-1], sg(slow[:, :-1]), self.bins)
        )
        return loss.sum() / jnp.maximum(weight.sum(), 1.0)

    def _train_step(self, state: TrainState, batch, key):
        self.traces["train_step"] = self.traces.get("train_step", 0) + 1
        n = self.config.board_model_steps
        if n > 1:  # Model-only steps on the first n - 1 parts, the full step on the last.
            parts = jax.tree.map(lambda x: x.reshape((n, x.shape[0] // n, *x.shape[1:])), batch)
            state, model_metrics = jax.lax.scan(
                self._model_step, state, jax.tree.map(lambda x: x[:-1], parts)
            )
            batch = jax.tree.map(lambda x: x[-1], parts)
        grads, metrics = jax.grad(self._loss, has_aux=True)(state.params, state, batch, key)
        if n > 1:
            metrics["model/extra_steps_loss"] = model_metrics["loss"].mean()
        return apply_gradients(state, grads, state.retnorm, metrics, self.optimizer, self.config)

    def _model_step(self, state: TrainState, batch):
        """One optimizer step of the world model alone (`config.board_model_steps`): the critic,
        its slow copy and the critic's optimizer state stay as they were, so its updates are
        only those of full steps; the schedule's step count advances."""

        def loss(params):
            return self._world_loss(self._model_loss(params, batch)[0])

        value, grads = jax.value_and_grad(loss)(state.params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = {**state.params, "dyn": optax.apply_updates(state.params["dyn"], updates["dyn"])}
        critic = lambda path: any(getattr(k, "key", None) == "critic" for k in path)  # noqa: E731
        opt_state = jax.tree_util.tree_map_with_path(
            lambda path, new, old: old if critic(path) else new, opt_state, state.opt_state
        )
        return state.replace(params=params, opt_state=opt_state), {"loss": value}
