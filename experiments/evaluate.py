"""Evaluate a checkpoint: `python -m experiments.evaluate --workdir=DIR [--step=N]
[--episodes=1000] [--max_pieces=10000] [--seed=12345]`, or `--checkpoint=PATH` for a
params-only export.

Other envs than Tetris (a gymnax config): the return per episode of the greedy (and/or sampled)
agent and of random play, mean, median and 95% bootstrap interval of the mean, to
eval_<step>.json and .md (`--max_pieces` caps the steps of an episode; no GIF).

Plays the games in parallel on device under the training rules (no training step limit and no
curriculum: the empty-board standard game), with the greedy and/or sampled policy, and the
baselines of tetris_jax.heuristics on the same seeds. Writes eval_<step>.json, eval_<step>.md
and eval_<step>.gif to --out (default: the workdir, or runs/eval/<name> for an export).
`--export=PATH` writes a params-only export of the chosen checkpoint (small; for committed
results).
"""

from __future__ import annotations

import os
import time
from typing import Any

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defined only when run as a program: `evaluate` is imported beside other tools' flags."""
    from experiments.lib.cli import define_checkpoint_flags

    define_checkpoint_flags()
    flags.DEFINE_integer("episodes", 1000, "Games (episodes) per policy.")
    flags.DEFINE_integer(
        "max_pieces",
        10000,
        "Piece cap per game (capped games are counted); other envs: step cap per episode.",
    )
    flags.DEFINE_list(
        "modes",
        ["greedy"],
        "Agent policies: greedy and/or sample; plan2 (a board world-model agent's greedy "
        "lookahead two placements deep through its own model: the --plan_width best first "
        "placements expanded by every placement of the next piece); true_dynamics (a board "
        "world-model agent's greedy lookahead with the real rules in place of its model: a "
        "diagnostic of its critic, not the agent's result); true_plan2 (plan2 with the real "
        "rules in place of the model: the same diagnostic two placements deep).",
    )
    flags.DEFINE_integer(
        "plan_width",
        None,
        "--modes=plan2 or true_plan2: first placements expanded (default: the run's "
        "agent.board_plan_width).",
    )
    flags.DEFINE_integer(
        "slots",
        None,
        "Games the agent plays in parallel (default: all --episodes at once). Fewer slots: a "
        "slot whose game ends starts the next unplayed one, the same games and, for the "
        "deterministic modes (all but sample), the same results, without a few long games "
        "keeping every game's batch stepping: for costly modes such as plan2.",
    )
    flags.DEFINE_list("baselines", ["random", "dellacherie", "el_tetris", "bcts"], "Baselines.")
    flags.DEFINE_integer("seed", 12345, "Seed of the games (the same for every policy).")
    flags.DEFINE_bool(
        "gif",
        True,
        "Write a GIF of one greedy game (lines and pieces on every "
        "frame; the last says whether the game ended or was cut).",
    )
    flags.DEFINE_integer("gif_frames", 300, "Most frames in the GIF (one per step).")
    flags.DEFINE_string(
        "out", None, "Output folder (default: the workdir, or runs/eval/<name> for an export)."
    )
    flags.DEFINE_string("export", None, "Also write a params-only export of the checkpoint here.")


def default_out(workdir: str | None, checkpoint: str | None) -> str:
    """Beside a training run (its workdir), or runs/eval/<export name> for an export: never
    inside an export folder, which may be a committed result."""
    if workdir:
        return workdir
    return os.path.join("runs", "eval", os.path.basename(os.path.normpath(checkpoint)))


def markdown(step: int, rows: list[dict[str, Any]], rules: str) -> str:
    lines = [
        f"Evaluation at env step {step:,}: {rules}",
        "",
        "| policy | games | lines/game mean | median | std | 95% CI of mean | pieces | score "
        "| lines/piece | capped |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        s = r["stats"]
        lines.append(
            f"| {r['policy']} | {s['games']} | {s['lines_mean']:.2f} | {s['lines_median']:.1f} | "
            f"{s['lines_std']:.2f} | [{s['lines_ci95_low']:.2f}, {s['lines_ci95_high']:.2f}] | "
            f"{s['pieces_mean']:.1f} | {s['score_mean']:.0f} | {s['lines_per_piece']:.4f} | "
            f"{100 * s['capped_share']:.1f}% |"
        )
    return "\n".join(lines) + "\n"


def evaluate(
    workdir=None,
    checkpoint=None,
    step=None,
    *,
    episodes=1000,
    max_pieces=10000,
    modes=("greedy",),
    plan_width=None,
    slots=None,
    baselines=(),
    seed=12345,
    gif=True,
    gif_frames=300,
    out=None,
    export=None,
    log=print,
) -> dict[str, Any]:
    import jax

    from experiments.lib import checkpoints as ckpt
    from experiments.lib import play, policies, runs
    from experiments.lib.errors import UserError

    allowed_modes = ("greedy", "sample", *policies.BOARD_MODES)
    for m in modes:
        if m not in allowed_modes:
            raise UserError(f"--modes: got {m!r}; allowed: {', '.join(allowed_modes)}")
    for b in baselines:
        if b not in play.BASELINES:
            raise UserError(f"--baselines: got {b!r}; allowed: {', '.join(play.BASELINES)}")
    if episodes < 1 or max_pieces < 1:
        raise UserError("--episodes and --max_pieces must be >= 1")
    if slots is not None and slots < 1:
        raise UserError(f"--slots: got {slots}; allowed: >= 1 (or unset: every game at once)")
    if plan_width is not None and (
        not any(m in policies.WIDTH_MODES for m in modes) or plan_width < 1
    ):
        raise UserError(
            f"--plan_width: got {plan_width}; needs --modes to include "
            f"{' or '.join(policies.WIDTH_MODES)} and a value >= 1"
        )
    config, env, agent, params, step = runs.load_checkpoint(workdir, checkpoint, step)
    for board_mode in policies.BOARD_MODES:
        if board_mode in modes and (
            config.agent.world_model != "board" or config.env.suite != "tetris"
        ):
            raise UserError(
                f"--modes={board_mode}: needs a Tetris run of the board world model "
                f"(agent.world_model='board'); this checkpoint has agent.world_model="
                f"{config.agent.world_model!r}, env.suite={config.env.suite!r}"
            )
    if slots is not None and config.env.suite != "tetris":
        raise UserError(f"--slots: Tetris only; this checkpoint has env.suite={config.env.suite!r}")
    if plan_width is not None:
        agent = policies.with_plan_width(agent, plan_width)
    if config.env.suite != "tetris":
        for b in baselines:
            if b != "random":
                log(f"baseline {b}: unavailable (Tetris only)")
        baselines = [b for b in baselines if b == "random"]
    out = out or default_out(workdir, checkpoint)
    os.makedirs(out, exist_ok=True)
    if export:
        ckpt.export_params(export, params, runs.to_plain(config))
        runs.dump_json(os.path.join(export, "export.json"), {"step": step})
        log(f"exported params of step {step} to {export}")
    key = jax.random.key(seed)
    if config.env.suite != "tetris":
        return _evaluate_episodes(
            env,
            agent,
            params,
            key,
            step,
            config,
            workdir,
            checkpoint,
            out,
            log,
            episodes=episodes,
            max_steps=max_pieces,
            modes=modes,
            baselines=baselines,
            seed=seed,
        )
    rows = []
    for mode in modes:
        t = time.time()
        games = play.play_agent(
            env,
            agent,
            params,
            key,
            num_games=episodes,
            max_pieces=max_pieces,
            mode=mode,
            slots=slots,
        )
        name = (
            "agent's critic, true dynamics (diagnostic)"
            if mode == policies.TRUE_DYNAMICS
            else f"agent's critic, true dynamics, plan2 width {agent.config.board_plan_width} "
            "(diagnostic)"
            if mode == policies.TRUE_PLAN2
            else f"agent (plan2, width {agent.config.board_plan_width})"
            if mode == policies.PLAN2
            else f"agent ({mode})"
        )
        rows.append(_row(name, games, t, log))
    for name in baselines:
        t = time.time()
        games = play.play_baseline(env, name, key, num_games=episodes, max_pieces=max_pieces)
        if games is None:
            log(f"baseline {name}: unavailable (heuristic baselines need placement mode)")
            continue
        rows.append(_row(name, games, t, log))
    rules = (
        f"{env!r}; {episodes} games per policy, seed {seed}, cap {max_pieces} pieces; "
        f"empty start board"
    )
    result = {
        "step": step,
        "rules": rules,
        "source": os.path.abspath(workdir or checkpoint),
        "episodes": episodes,
        "max_pieces": max_pieces,
        "seed": seed,
        "slots": slots,
        "rows": rows,
        "backend": jax.default_backend(),
        "jax": jax.__version__,
    }
    base = os.path.join(out, f"eval_{step}")
    runs.dump_json(base + ".json", result)
    with open(base + ".md", "w") as f:
        f.write(markdown(step, rows, rules))
    note = ""
    if gif:
        frames = play.record_game(env, agent, params, key, max_frames=gif_frames)
        note = play.write_gif(base + ".gif", env, frames)
        hint = "" if note == "game over" else f"; --gif_frames={gif_frames} sets the length"
        note = f" (the first greedy game: {note}{hint})"
    if workdir and os.path.abspath(out) == os.path.abspath(workdir):
        # The run's dashboard draws these baselines beside its evaluations (same piece cap).
        from experiments.lib import monitor

        metrics = monitor.read_jsonl(os.path.join(workdir, monitor.METRICS_JSONL))
        if metrics:
            monitor.write_dashboard(workdir, metrics)
    log(markdown(step, rows, rules))
    log(f"wrote {base}.json, {base}.md" + (f", {base}.gif{note}" if gif else ""))
    return result


def _row(name: str, games: Any, t: float, log: Any) -> dict[str, Any]:
    """One policy's row of a Tetris evaluation (its stats, per-game results and the seconds
    since `t`), logged with its lines/game."""
    from experiments.lib import play

    row = {
        "policy": name,
        "stats": play.stats(games),
        "games": play.per_game(games),
        "seconds": time.time() - t,
    }
    log(f"{name}: {row['stats']['lines_mean']:.2f} lines/game")
    return row


def episodes_markdown(step: int, rows: list[dict[str, Any]], rules: str) -> str:
    lines = [
        f"Evaluation at env step {step:,}: {rules}",
        "",
        "| policy | episodes | return mean | median | std | 95% CI of mean | min | max "
        "| length | capped |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        s = r["stats"]
        lines.append(
            f"| {r['policy']} | {s['episodes']} | {s['return_mean']:.2f} | "
            f"{s['return_median']:.1f} | {s['return_std']:.2f} | [{s['return_ci95_low']:.2f}, "
            f"{s['return_ci95_high']:.2f}] | {s['return_min']:.1f} | {s['return_max']:.1f} | "
            f"{s['length_mean']:.1f} | {100 * s['capped_share']:.1f}% |"
        )
    return "\n".join(lines) + "\n"


def _evaluate_episodes(
    env, agent, params, key, step, config, workdir, checkpoint, out, log, **kw
) -> dict[str, Any]:
    """`evaluate` of a non-Tetris env: the return per episode of each policy (no GIF)."""
    import jax

    from experiments.lib import episodes, runs

    rows = []
    players = [(f"agent ({m})", agent, m) for m in kw["modes"]]
    players += [("random", None, "sample") for b in kw["baselines"] if b == "random"]
    for name, who, mode in players:
        t = time.time()
        eps = episodes.play_agent(
            env,
            who,
            params,
            key,
            num_episodes=kw["episodes"],
            max_steps=kw["max_steps"],
            mode=mode,
        )
        rows.append({"policy": name, "stats": episodes.stats(eps), "seconds": time.time() - t})
        s = rows[-1]["stats"]
        log(
            f"{name}: return/episode mean {s['return_mean']:.2f}, median "
            f"{s['return_median']:.1f}, 95% CI [{s['return_ci95_low']:.2f}, "
            f"{s['return_ci95_high']:.2f}]"
        )
    rules = (
        f"{env!r}; {kw['episodes']} episodes per policy, seed {kw['seed']}, at most "
        f"{kw['max_steps']} steps each"
    )
    result = {
        "step": step,
        "rules": rules,
        "source": os.path.abspath(workdir or checkpoint),
        "episodes": kw["episodes"],
        "max_pieces": kw["max_steps"],
        "seed": kw["seed"],
        "rows": rows,
        "backend": jax.default_backend(),
        "jax": jax.__version__,
    }
    base = os.path.join(out, f"eval_{step}")
    runs.dump_json(base + ".json", result)
    with open(base + ".md", "w") as f:
        f.write(episodes_markdown(step, rows, rules))
    if workdir and os.path.abspath(out) == os.path.abspath(workdir):
        from experiments.lib import monitor

        metrics = monitor.read_jsonl(os.path.join(workdir, monitor.METRICS_JSONL))
        if metrics:
            monitor.write_dashboard(workdir, metrics)
    log(episodes_markdown(step, rows, rules))
    log(f"wrote {base}.json, {base}.md (no GIF: Tetris only)")
    return result


def main(argv: list[str]) -> None:
    from experiments.lib.cli import checkpoint_tool_main

    checkpoint_tool_main(
        argv,
        evaluate,
        "episodes",
        "max_pieces",
        "modes",
        "plan_width",
        "slots",
        "baselines",
        "seed",
        "gif",
        "gif_frames",
        "out",
        "export",
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
