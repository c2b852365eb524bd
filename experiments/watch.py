"""Watch a trained agent play one game in the terminal:
`python -m experiments.watch --checkpoint=docs/results/params/board_features_pool8_s0_best` (a
params-only export) or `--workdir=DIR [--step=N]` (a training run's checkpoint).

Each step is drawn by `tetris_jax.render.render_ascii` (the board, the queue and hold, and the
score, lines and pieces so far) under a line naming the agent. On a terminal the picture is
redrawn in place (ANSI cursor codes); piped to a file or another program, the frames are
printed one after another. The game is played one step at a time, so it may be as long as
it lasts: it ends at a top-out, at --max_pieces, or on Ctrl-C, with a line saying which.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from absl import app, flags

FLAGS = flags.FLAGS
# ANSI codes: cursor to the top left, clear to the end of the line / screen, clear the screen.
HOME, CLEAR_LINE, CLEAR_BELOW, CLEAR_SCREEN = "\x1b[H", "\x1b[K", "\x1b[J", "\x1b[2J"


def define_flags() -> None:
    """Defined only when run as a program."""
    from experiments.lib.cli import define_checkpoint_flags

    define_checkpoint_flags()
    flags.DEFINE_integer(
        "seed",
        12345,
        "Seed of the game (12345: the first game of experiments.evaluate's default seed).",
    )
    flags.DEFINE_integer("max_pieces", 1000, "Stop after this many pieces.")
    flags.DEFINE_float("fps", 10.0, "Frames (steps) per second; 0 = as fast as possible.")
    flags.DEFINE_enum("mode", "greedy", ["greedy", "sample"], "The agent's policy.")
    flags.DEFINE_string(
        "compile_cache",
        "~/.cache/tetris-dreamer-jax/xla",
        "Persistent XLA compilation cache ('' = off).",
    )


def watch(
    workdir: str | None = None,
    checkpoint: str | None = None,
    step: int | None = None,
    *,
    seed: int = 12345,
    max_pieces: int = 1000,
    fps: float = 10.0,
    mode: str = "greedy",
    out: TextIO = sys.stdout,
    tty: bool | None = None,
) -> dict[str, Any]:
    """Play and draw one game; returns {"lines", "pieces", "steps", "end"}. `tty` (default:
    whether `out` is a terminal) redraws in place instead of printing frames in sequence."""
    import jax

    from experiments.lib import play, runs
    from experiments.lib.errors import UserError
    from tetris_jax import render

    if mode not in ("greedy", "sample"):
        raise UserError(f"--mode: got {mode!r}; allowed: greedy, sample")
    if max_pieces < 1 or fps < 0:
        raise UserError("--max_pieces must be >= 1 and --fps >= 0")
    config, env, agent, params, step = runs.load_checkpoint(
        workdir, checkpoint, step, tetris_only="experiments.watch"
    )
    tty = out.isatty() if tty is None else tty
    name = os.path.basename(os.path.normpath(workdir or checkpoint))
    head = (
        f"{name} (step {step:,}, {config.env.reward_mode}, {mode} policy), seed {seed}, "
        f"cap {max_pieces:,} pieces"
    )
    games = play.game_states(
        env, agent, params, jax.random.key(seed), max_pieces=max_pieces, mode=mode
    )
    if tty:
        out.write(HOME + CLEAR_SCREEN)
    state, end, next_frame = None, "stopped (Ctrl-C)", time.monotonic()
    try:
        for state in games:
            frame = head + "\n" + render.render_ascii(env, state) + "\n"
            if tty:  # Over the last frame; its longer lines' ends cleared.
                out.write(HOME + frame.replace("\n", CLEAR_LINE + "\n") + CLEAR_BELOW)
            else:
                out.write(frame + "\n")
            out.flush()
            if fps:
                next_frame += 1.0 / fps
                time.sleep(max(0.0, next_frame - time.monotonic()))
        end = play.end_note(state, max_pieces)
    except KeyboardInterrupt:
        pass
    result = {
        "lines": int(state.total_lines),
        "pieces": int(state.pieces_placed),
        "steps": int(state.steps),
        "end": end,
    }
    plural = lambda n, word: f"{n:,} {word}" + ("" if n == 1 else "s")  # noqa: E731
    out.write(f"{end}: {plural(result['lines'], 'line')}, {plural(result['pieces'], 'piece')}\n")
    out.flush()
    return result


def main(argv: list[str]) -> None:
    from experiments.lib.cli import checkpoint_tool_main

    if FLAGS.compile_cache:  # As experiments.train: a second run loads its compiles.
        import jax

        jax.config.update("jax_compilation_cache_dir", os.path.expanduser(FLAGS.compile_cache))
    if not (FLAGS.checkpoint or FLAGS.workdir):
        raise app.UsageError(
            "give --checkpoint=EXPORT (e.g. docs/results/params/"
            "board_features_pool8_s0_best) or --workdir=RUN"
        )
    checkpoint_tool_main(argv, watch, "seed", "max_pieces", "fps", "mode")


if __name__ == "__main__":
    define_flags()
    app.run(main)
