"""The agent and the random baseline as `tetris_jax.rollout` policies, and the env-to-agent
adapter (`policy_obs`) that acting and training share."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dreamer_jax import codec, envs
from dreamer_jax.agent import Agent
from dreamer_jax.board import scatter_expansion, top_k_expansion

# The observation's fields as a dict (a dict, or a NamedTuple without the optional fields the
# env does not emit).
observation_fields = envs.observation_fields


def policy_obs(ts: Any) -> dict[str, jax.Array]:
    """What `Agent.policy` reads: the observation fields and `is_first` (resets the carry)."""
    return {**observation_fields(ts.observation), "is_first": ts.is_first}


def agent_policy(agent: Agent, params: Any, mode: str):
    """The agent acting with `mode` ("greedy" or "sample"); its carry is a `PolicyCarry`
    (start from `agent.initial_carry(N)`), its info the carry after the step."""

    def act(carry, states, ts, key):
        del states
        action, carry = agent.policy(params, carry, policy_obs(ts), key, mode)
        return action, carry, carry

    return act


def random_policy(carry, states, ts, key):
    """Uniformly random over the allowed actions (any Tetris action mode)."""
    del states
    logits = jnp.where(ts.observation.action_mask, 0.0, -jnp.inf)
    return jax.random.categorical(key, logits, -1).astype(jnp.int32), carry, ()


def make_random_policy(env):
    """Uniformly random over the allowed actions of any env (all of them without a mask)."""
    mask = codec.mask_field(dict(env.observation_spec()))

    def act(carry, states, ts, key):
        del states
        if mask is None:
            logits = jnp.zeros((*ts.reward.shape, env.num_actions))
        else:
            logits = jnp.where(observation_fields(ts.observation)[mask], 0.0, -jnp.inf)
        return jax.random.categorical(key, logits, -1).astype(jnp.int32), carry, ()

    return act


# The mode `play.play_agent` and `experiments.evaluate --modes` accept for the diagnostic below.
TRUE_DYNAMICS = "true_dynamics"
# A board world-model agent's policy mode that plans two placements deep through its model
# (`dreamer_jax.board.BoardAgent.plan2`); the width is its config's `board_plan_width`.
PLAN2 = "plan2"
# plan2's diagnostic: the same two-placement search with the real rules in place of the model.
TRUE_PLAN2 = "true_plan2"
# The modes that plan through a board world-model agent's lookahead (and need one).
BOARD_MODES = (PLAN2, TRUE_DYNAMICS, TRUE_PLAN2)
# The modes whose width is the agent config's `board_plan_width`.
WIDTH_MODES = (PLAN2, TRUE_PLAN2)


def with_plan_width(agent, width: int):
    """The board agent with `board_plan_width=width` (no parameter depends on it)."""
    import dataclasses

    return dataclasses.replace(
        agent, config=dataclasses.replace(agent.config, board_plan_width=width)
    )


def _true_lookahead(env, agent, critic_params, states, next_piece):
    """`true_lookahead`, with the real next states (N, A) as well."""
    actions = jnp.arange(env.num_actions, dtype=jnp.int32)
    nstates, nts = jax.vmap(jax.vmap(env.step, (None, 0)), (0, None))(states, actions)
    board = nts.observation.board  # (N, A, H, W)
    v = agent.value(critic_params, board, jnp.broadcast_to(next_piece[:, None], board.shape[:2]))
    keep = 1.0 - 1.0 / agent.config.horizon
    return nts.reward + (1.0 - nts.is_terminal.astype(jnp.float32)) * keep * v, nts, nstates


def true_lookahead(env, agent, critic_params, states, next_piece):
    """Q(s, a) of every action with the real rules as the model: (q (N, A), the real next
    time steps (N, A)), where q = r + (1 - game over)(1 - 1 / horizon) V(real next board,
    next piece), r, the game over and the board from `env.step` of each action of each
    state (N,), V the agent's critic. The board agent's `lookahead` with its model replaced."""
    q, nts, _ = _true_lookahead(env, agent, critic_params, states, next_piece)
    return q, nts


def true_plan2(env, agent, critic_params, states, next_piece, mask):
    """`BoardAgent.plan2` with the real rules in place of the model: (N, A) scores, -inf off
    the expanded set. The `agent.config.board_plan_width` best allowed first placements a by
    `true_lookahead` are each followed by every allowed placement a' of the next piece on
    the real next state:

        Q2(s, a) = r + (1 - game over) k max_a' [r' + (1 - game over') k V(s'', piece 3)],

    k = 1 - 1 / horizon, every r, game over and board from `env.step`, V the agent's critic.
    Unlike plan2 (whose model has no mask for the boards it predicts), the second placement
    ranges over the real rules' allowed ones. next_piece (N,): the queue's first piece; mask
    (N, A): allowed first placements."""
    N, A = mask.shape
    k = min(agent.config.board_plan_width, A)
    q1, nts, nstates = _true_lookahead(env, agent, critic_params, states, next_piece)
    top_q, top_a, pick = top_k_expansion(q1, mask, k)  # (N, k)
    after = jax.tree.map(lambda x: pick(x).reshape((N * k, *x.shape[2:])), nstates)
    ats = jax.tree.map(lambda x: pick(x).reshape((N * k, *x.shape[2:])), nts)
    q2, _, _ = _true_lookahead(env, agent, critic_params, after, ats.observation.queue[:, 0])
    best2 = jnp.where(ats.observation.action_mask, q2, -jnp.inf).max(-1).reshape(N, k)
    over = pick(nts.is_terminal)
    keep = 1.0 - 1.0 / agent.config.horizon
    score = pick(nts.reward) + jnp.where(over | ~jnp.isfinite(best2), 0.0, keep * best2)
    return scatter_expansion(top_q, top_a, score, A)


def true_dynamics_policy(env, agent, params):
    """A board world-model agent's greedy lookahead with the env's true transition in place of
    its learned model: every allowed placement is scored by `true_lookahead` (the real next
    board, reward and game over, valued by the agent's own critic). A diagnostic, not the
    agent: it separates what the critic knows from what the model's errors cost (the agent
    itself ranks by the model's predictions). Needs an agent with `value` and `_choose`
    (`dreamer_jax.board.BoardAgent`)."""
    from dreamer_jax.board import BoardCarry

    def act(carry, states, ts, key):
        del carry, key
        obs = ts.observation
        q, _ = true_lookahead(env, agent, params["critic"], states, obs.queue[:, 0])
        action = agent._choose(q, obs.action_mask, None, None)
        carry = BoardCarry(action)
        return action, carry, carry

    return act


def true_plan2_policy(env, agent, params):
    """plan2's diagnostic: the two-placement search (`true_plan2`) with the env's real rules
    in place of the agent's model, ranked by the agent's own critic; what plan2 would play
    with a perfect model. Not the agent's result."""
    from dreamer_jax.board import BoardCarry

    def act(carry, states, ts, key):
        del carry, key
        mask = ts.observation.action_mask
        q = true_plan2(env, agent, params["critic"], states, ts.observation.queue[:, 0], mask)
        action = jnp.argmax(jnp.where(mask, q, -jnp.inf), -1).astype(jnp.int32)
        carry = BoardCarry(action)
        return action, carry, carry

    return act
