"""What `experiments.world_model` writes besides the JSON: the markdown tables and the figure
of real boards beside the model's open-loop dream of them."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax import rssm
from dreamer_jax.agent import Agent
from dreamer_jax.board import BoardAgent
from experiments.lib.world_model import Trajectories, action_inputs, board_open_loop, decode


@functools.lru_cache(maxsize=4)
def _dream_fn(agent: Agent, length: int):
    def run(params, start, act, key):
        def step(state, inp):
            a, k = inp
            nxt, _ = agent.nets.rssm.apply(params["rssm"], state, a, k, method=rssm.RSSM.img_step)
            return nxt, decode(agent, params, nxt, ("board",)).fields["board"]

        first = decode(agent, params, start, ("board",)).fields["board"]
        xs = (jnp.swapaxes(act, 0, 1), jax.random.split(key, length))
        _, boards = jax.lax.scan(step, start, xs)
        return jnp.concatenate([first[:, None], jnp.swapaxes(boards, 0, 1)], 1)

    return jax.jit(run)


def dream_boards(
    agent: Agent,
    params: Any,
    traj: Trajectories,
    key: jax.Array,
    *,
    games: int,
    length: int,
    start: int = 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For the first `games` games, from step `start` (earlier in short games): the real and
    the dreamed boards (games, length + 1, rows, cols), valid (games, length + 1) and the start
    steps. The dream decodes the posterior at the start, then the prior with the real actions."""
    T = traj.valid.shape[1]
    assert length < T, (length, T)
    n = np.asarray(traj.valid[:games]).sum(1)
    starts = np.clip(np.minimum(start, n - length - 1), 0, T - length - 1)
    idx = starts[:, None] + np.arange(length + 1)
    sub = jax.tree.map(lambda x: x[np.arange(games)[:, None], idx], traj)
    if isinstance(agent, BoardAgent):  # Its state is the board: the open loop from the real one.
        steps = board_open_loop(agent, params, sub, length)  # From every step; keep step 0's.
        dreamed = jnp.concatenate([sub.obs["board"][:, :1]] + [b[:, :1] for b, _, _ in steps], 1)
        return np.asarray(sub.obs["board"]), np.asarray(dreamed), np.asarray(sub.valid), starts
    begin = jax.tree.map(lambda x: x[:, 0], sub.post)
    dreamed = _dream_fn(agent, length)(params, begin, action_inputs(agent, sub)[:, :-1], key)
    return np.asarray(sub.obs["board"]), np.asarray(dreamed), np.asarray(sub.valid), starts


def draw(
    path: str,
    real: np.ndarray,
    dreamed: np.ndarray,
    valid: np.ndarray,
    starts: np.ndarray,
    known: int,
) -> None:
    """Real boards over the dreamed ones, step by step; wrong cells in red (predicted filled,
    really empty) and blue (really filled, missed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    G, L = real.shape[:2]
    fig, axes = plt.subplots(2 * G, L, figsize=(0.75 * L, 1.55 * 2 * G + 0.6), squeeze=False)
    colours = {
        "empty": (1, 1, 1),
        "filled": (0.35, 0.35, 0.35),
        "extra": (0.9, 0.1, 0.1),
        "missed": (0.1, 0.35, 0.95),
    }
    for g in range(G):
        for k in range(L):
            r, d = real[g, k], dreamed[g, k]
            img_r = np.where(r[..., None], colours["filled"], colours["empty"])
            img_d = np.select(
                [(d & r)[..., None], (d & ~r)[..., None], (~d & r)[..., None]],
                [colours["filled"], colours["extra"], colours["missed"]],
                colours["empty"],
            )
            top, bottom = axes[2 * g, k], axes[2 * g + 1, k]
            for ax, img in ((top, img_r), (bottom, img_d)):
                ax.imshow(img if valid[g, k] else np.ones_like(img) * 0.9, interpolation="nearest")
                ax.set_xticks([]), ax.set_yticks([])
            label = "post" if k == 0 else f"+{k}" + ("" if k <= known else "*")
            top.set_title(f"t={starts[g] + k}" if k == 0 else label, fontsize=7)
            if valid[g, k]:
                bottom.set_title(f"{int((d != r).sum())} wrong", fontsize=6)
        axes[2 * g, 0].set_ylabel(f"game {g}\nreal", fontsize=7)
        axes[2 * g + 1, 0].set_ylabel("dreamed", fontsize=7)
    fig.suptitle(
        "Real boards (grey) over the world model's open-loop dream with the real actions "
        "(red: predicted filled but empty; blue: missed);\n"
        "+k: k steps ahead of the posterior; *: beyond the queue (pieces unknown)",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(r: Mapping[str, Any]) -> str:
    """Three tables: boards, pieces, reward and game over; each beside its baselines; and for the
    board world model, its planning scores (`world_model.plan_scores`)."""
    b = r["baselines"]
    rows = [("posterior", r["posterior"], "posterior")]
    rows += [(f"open loop {h}", r["open_loop"][h], h) for h in map(str, r["horizons"])]
    det = lambda h: "" if h == "posterior" or r["determined"][h]["board"] else " *"  # noqa: E731
    head = (
        f"World model of {r.get('checkpoint', '?')} (step {r.get('step', '?')}): "
        f"{r['episodes']} games ({r.get('mode', 'greedy')}, seed {r.get('seed', '?')}), "
        f"{r['steps']} steps, {r['games']['ended']} games ended, "
        f"{r['games']['lines_mean']:.1f} lines/game within the cap of {r['max_pieces']}. "
        "* = beyond the queue (not every placed piece is known at the start)."
    )
    pair = lambda d: f"{_pct(d.get('board_exact'))} · {_pct(d.get('board_error'))}"  # noqa: E731
    out = [
        head,
        "",
        "Boards, as exact boards · cells wrong:",
        "",
        "| prediction | steps | model | copy start | copy posterior | all empty | model exact, "
        "the step clears lines · does not |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s, h in rows:
        cs, cp = b["copy_start"].get(h, {}), b["copy_posterior"].get(h, {})
        split = (
            f"{_pct(s.get('board_exact_when_cleared'))} · "
            f"{_pct(s.get('board_exact_when_not_cleared'))}"
        )
        out.append(
            f"| {name}{det(h)} | {s['steps']} | {pair(s)} | {pair(cs)} | {pair(cp)} | "
            f"{pair(b['all_empty'][h])} | {split} |"
        )
    out += [
        "",
        "| prediction | piece exact (copy start) | queue exact (copy start) | queue slots "
        "wrong | known slots wrong | unknown slots wrong |",
        "|---|" + "---:|" * 5,
    ]
    for name, s, h in rows:
        cs = b["copy_start"].get(h, {})
        out.append(
            f"| {name}{det(h)} | {_pct(s.get('piece_exact'))} ({_pct(cs.get('piece_exact'))}) | "
            f"{_pct(s.get('queue_exact'))} ({_pct(cs.get('queue_exact'))}) | "
            f"{_pct(s.get('queue_error'))} | {_pct(s.get('queue_known_error'))} | "
            f"{_pct(s.get('queue_unknown_error'))} |"
        )
    out += [
        "",
        "| prediction | lines exact (none) | when cleared (none) | cleared steps | reward "
        "abs error | continue right (never ends) | game over caught | terminal steps |",
        "|---|" + "---:|" * 7,
    ]
    for name, s, h in rows:
        ne = b["no_event"][h]
        out.append(
            f"| {name}{det(h)} | {_pct(s['lines_exact'])} ({_pct(ne['lines_exact'])}) | "
            f"{_pct(s['lines_exact_when_cleared'])} "
            f"({_pct(ne['lines_exact_when_cleared'])}) | {s['cleared_steps']} | "
            f"{s['reward_abs_error']:.3f} | {_pct(s['continue_accuracy'])} "
            f"({_pct(ne['continue_accuracy'])}) | {_pct(s['terminal_accuracy'])} | "
            f"{s['terminal_steps']} |"
        )
    lines_note = (
        "lines = round(reward mean)"
        if r["reward_mode"] == "lines_only"
        else "lines = round(reward mean - the real shaping and penalty of the step)"
    )
    out += [
        "",
        f"Binary cells thresholded at 0.5, categorical fields at their mode; {lines_note}; "
        "continue = continue head > 0.5. Copy posterior: the model's reconstruction of the "
        "start board, unchanged.",
    ]
    if r.get("action_features"):
        out[-1] += (
            " The RSSM's action input holds the real placement's afterstate features "
            "(among them the lines it clears)."
        )
    if "planning" in r:
        p = r["planning"]
        regret = "-" if p["regret"] is None else f"{p['regret']:.3f}"
        out += [
            "",
            "Planning: every allowed placement of every step, the model's prediction against the "
            "real rules; and the lookahead's choice against the one its critic makes on the real "
            "next boards:",
            "",
            "| steps | placements | next board exact | when clearing | lines exact | when "
            "clearing | continue right | same choice as with the real rules | regret (real Q) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {p['steps']} | {p['placements']} | {_pct(p['placements_board_exact'])} | "
            f"{_pct(p.get('placements_board_exact_when_cleared'))} | "
            f"{_pct(p['placements_lines_exact'])} | "
            f"{_pct(p['placements_lines_exact_when_cleared'])} | "
            f"{_pct(p['placements_continue_accuracy'])} | {_pct(p['choice_agreement'])} | "
            f"{regret} |",
        ]
    return "\n".join(out) + "\n"
