"""experiments.watch (one game in the terminal) and the evaluation GIF's counters, on an
untrained agent of the debug config (small: compiles in seconds)."""

from __future__ import annotations

import io

import jax
import numpy as np
import pytest
from PIL import Image

from experiments import watch
from experiments.lib import build, play, runs
from experiments.lib import checkpoints as ckpt
from tetris_jax import Tetris, heuristics, render


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    from experiments import debug

    config = debug.get_config()
    env = build.make_env(config, evaluation=True)
    agent = build.make_agent(config, env)
    path = str(tmp_path_factory.mktemp("watch") / "untrained")
    ckpt.export_params(path, agent.init(jax.random.key(0)).params, runs.to_plain(config))
    return path


def test_plain_frames_then_the_end(export):
    out = io.StringIO()
    result = watch.watch(checkpoint=export, max_pieces=4, fps=0, out=out)
    text = out.getvalue()
    assert "\x1b[" not in text  # Not a terminal: no ANSI codes, frames one after another.
    frames = text.split("untrained (step 0, standard, greedy policy), seed 12345, cap 4 pieces")
    assert len(frames) - 1 == result["steps"] + 1  # The start and every step.
    assert "lines 0  pieces 0  steps 0" in frames[1]
    assert result["end"] in ("game over", "cut at 4 pieces (the piece cap)"), result
    assert text.splitlines()[-1].startswith(f"{result['end']}: {result['lines']} line")


def test_terminal_redraws_in_place(export):
    out = io.StringIO()
    result = watch.watch(checkpoint=export, max_pieces=3, fps=0, out=out, tty=True)
    text = out.getvalue()
    assert text.startswith(watch.HOME + watch.CLEAR_SCREEN)
    assert text.count(watch.HOME) == result["steps"] + 2 and watch.CLEAR_BELOW in text
    assert "|" + watch.CLEAR_LINE + "\n" in text  # Each line's end cleared (the board's edge).


def test_watched_game_is_evaluations_first(export):
    """game_states steps the same game as play_agent's first for the same key, to its end."""
    config, env, agent, params, _ = runs.load_checkpoint(None, export, None)
    key = jax.random.key(3)
    states = list(play.game_states(env, agent, params, key, max_pieces=30))
    games = play.play_agent(env, agent, params, key, num_games=2, max_pieces=30)
    assert int(states[-1].total_lines) == games.lines[0]
    assert int(states[-1].pieces_placed) == games.pieces[0]
    assert bool(states[-1].done) != bool(games.capped[0])
    assert [int(s.steps) for s in states] == list(range(len(states)))


def test_gif_counters_and_end_note(tmp_path):
    env = Tetris(height=6, width=5, randomizer="uniform", queue_size=2)
    policy = heuristics.make_policy(env, "random")
    whole = render.record_episode(env, policy, jax.random.key(0), max_steps=200)
    assert play.end_note(whole[-1]) == "game over"
    cut = whole[:3]
    assert play.end_note(cut[-1]) == "cut at 2 pieces"
    assert play.end_note(cut[-1], max_pieces=2) == "cut at 2 pieces (the piece cap)"

    path = str(tmp_path / "cut.gif")
    assert play.write_gif(path, env, cut) == "cut at 2 pieces"
    board = render.render_rgb(env, cut[0], cell=12)
    with Image.open(path) as gif:
        # A caption strip under the board (lines, pieces, and the wrapped note's lines).
        width = board.shape[1]
        note = render.wrap("cut at 2 pieces", width - 6)
        assert gif.size == (width, board.shape[0] + render.LINE_PX * (2 + len(note)) + 4)
        assert gif.n_frames == 3
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
            frame = np.asarray(gif.convert("RGB"))
            np.testing.assert_array_equal(
                frame[: board.shape[0]], render.render_rgb(env, cut[i], cell=12)
            )
            strip = frame[board.shape[0] :]
            assert (strip != render.PANEL).any(-1).sum() > 20  # Text is drawn.
        assert durations[0] == durations[1] == durations[2] - 2000  # The last held 2 s longer.
    # The counters are the state's; frames must be States to have them.
    assert render.counters(whole[-1]) == [
        f"lines {int(whole[-1].total_lines)}",
        f"pieces {int(whole[-1].pieces_placed)}",
    ]
    with pytest.raises(ValueError, match="show_counters needs States"):
        render.save_gif([board], path, show_counters=True)
