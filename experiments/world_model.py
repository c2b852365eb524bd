"""How well does the world model predict real games? `python -m experiments.world_model
--checkpoint=DIR` (or `--workdir=DIR [--step=N]`) `[--episodes=16] [--seed=S] [--out=DIR]`.

Plays `--episodes` games from the empty board with the checkpoint's own policy (greedy by
default) and scores the world model on those real trajectories:
- posterior: the decoder on the posterior state that chose each action, against that step's
  observation (binary cells thresholded at probability 0.5, categorical fields at their mode);
- open loop h: the prior rolled h steps from each posterior state with the real actions (and
  the real chosen-action features, which the RSSM takes as action input), against the
  observation h steps later. In placement mode the start observation shows the current piece
  and `queue_size` more, so the board h steps on is determined by it (and the actions) for
  h <= queue_size + 1, the current piece for h <= queue_size, and queue slot j for
  j < queue_size - h ("queue_known"); beyond that the pieces cannot be known;
- reward: lines per step, the reward head's mean minus the real non-line part of the reward
  (0 for lines_only without a piece reward; the real shaping and penalty for 'standard'),
  rounded; continue: continue head > 0.5 against `not is_terminal`, also on terminal steps alone.
Beside each: "copy_start" (the start observation unchanged), "copy_posterior" (the model's
reconstruction of the start, unchanged), "all_empty" (binary fields all 0) and "no_event" (no
lines, the game goes on). For the board world model also "planning": its prediction of every
allowed placement of every step (not only the one played) against the real rules, and how often
its lookahead's choice is the one its own critic makes on the real next boards (with the
real-Q regret of its choice). Writes world_model.json, .md and .png to `--out`
(default runs/world_model/<export name>, or <workdir>/world_model).

The measuring code is `experiments.lib.world_model` (`measure`, also run at every training
checkpoint), the tables and the figure `experiments.lib.world_model_report`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
from absl import app, flags

from experiments.lib import runs
from experiments.lib import world_model_report as output
from experiments.lib.errors import UserError
from experiments.lib.world_model import HORIZONS, collect, report

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defined only when run as a program (`evaluate` defines the same names)."""
    from experiments.lib.cli import define_checkpoint_flags

    define_checkpoint_flags()
    flags.DEFINE_integer("episodes", 16, "Games played (in parallel).")
    flags.DEFINE_integer(
        "max_pieces", 1000, "Steps recorded per game at most (pieces in placement mode)."
    )
    flags.DEFINE_list("horizons", [str(h) for h in HORIZONS], "Open-loop horizons (steps).")
    flags.DEFINE_enum("mode", "greedy", ["greedy", "sample"], "The agent's policy.")
    flags.DEFINE_integer("seed", 12345, "Seed of the games and the model's latent samples.")
    flags.DEFINE_integer("figure_games", 3, "Games drawn in world_model.png.")
    flags.DEFINE_string(
        "out",
        None,
        "Output folder (default: runs/world_model/<export name>, or <workdir>/world_model).",
    )


# ----- the program -----


def default_out(workdir: str | None, checkpoint: str | None) -> str:
    if checkpoint:
        return os.path.join("runs", "world_model", os.path.basename(os.path.normpath(checkpoint)))
    return os.path.join(workdir, "world_model")


def run(
    workdir=None,
    checkpoint=None,
    step=None,
    *,
    episodes=16,
    max_pieces=1000,
    horizons=HORIZONS,
    mode="greedy",
    seed=12345,
    figure_games=3,
    out=None,
    log=print,
) -> dict[str, Any]:
    """The program: check the arguments, load, measure, write the three files to `out`."""
    try:
        horizons = sorted({int(h) for h in horizons})
    except ValueError:
        raise UserError(f"--horizons: got {horizons!r}; need integers >= 1") from None
    if not horizons or horizons[0] < 1:
        raise UserError(f"--horizons: got {horizons!r}; need integers >= 1")
    if episodes < 1 or figure_games < 0:
        raise UserError("--episodes must be >= 1 and --figure_games >= 0")
    if max_pieces <= horizons[-1]:
        raise UserError(
            f"--max_pieces: got {max_pieces}; must exceed the longest horizon {horizons[-1]}"
        )
    out = out or default_out(workdir, checkpoint)
    if checkpoint:
        inside = os.path.relpath(os.path.realpath(out), os.path.realpath(checkpoint))
        if not inside.startswith(".."):
            raise UserError(f"--out: got {out!r}; never inside --checkpoint={checkpoint}")
    _, env, agent, params, step = runs.load_checkpoint(workdir, checkpoint, step)
    os.makedirs(out, exist_ok=True)
    k_play, k_model, k_fig = jax.random.split(jax.random.key(seed), 3)
    traj = collect(env, agent, params, k_play, episodes=episodes, max_pieces=max_pieces, mode=mode)
    result = {
        "checkpoint": os.path.abspath(workdir or checkpoint),
        "step": step,
        "seed": seed,
        "mode": mode,
        "backend": jax.default_backend(),
        **report(agent, params, env, traj, k_model, horizons=horizons),
    }
    runs.dump_json(os.path.join(out, "world_model.json"), result)
    text = output.markdown(result)
    with open(os.path.join(out, "world_model.md"), "w") as f:
        f.write(text)
    games = min(figure_games, episodes)
    if games:
        length = min(horizons[-1], max_pieces - 1)
        real, dreamed, valid, starts = output.dream_boards(
            agent, params, traj, k_fig, games=games, length=length
        )
        known = env.queue_size + 1 if env.action_mode == "placement" else 0
        output.draw(os.path.join(out, "world_model.png"), real, dreamed, valid, starts, known)
    log(text)
    log(f"wrote {out}/world_model.json, .md" + (", .png" if games else ""))
    return result


def main(argv: list[str]) -> None:
    from experiments.lib.cli import checkpoint_tool_main

    checkpoint_tool_main(
        argv, run, "episodes", "max_pieces", "horizons", "mode", "seed", "figure_games", "out"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
