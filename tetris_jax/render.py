"""Pictures of one game state: ASCII text, RGB frames, and GIFs of an episode.

Rendering runs in numpy on the host (one state at a time, no compiles): pass an unbatched
`State` (index a batch first, e.g. `jax.tree.map(lambda x: x[i], states)`).

    states = render.record_episode(env, heuristics.make_policy(env, "dellacherie"), key, 200)
    print(render.render_ascii(env, states[-1]))
    render.save_gif(states, "episode.gif", fps=10, env=env, show_counters=True)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import numpy as np

from tetris_jax import pieces
from tetris_jax.env import State, Tetris
from tetris_jax.types import EMPTY_HOLD

# Guideline colours, in piece order I O T S Z J L. Locked cells are grey: the board stores no
# colours.
COLORS = np.array(
    [
        (0, 240, 240),
        (240, 240, 0),
        (160, 0, 240),
        (0, 240, 0),
        (240, 0, 0),
        (0, 80, 240),
        (240, 160, 0),
    ],
    np.uint8,
)
LOCKED = np.array((140, 140, 140), np.uint8)
EMPTY = np.array((24, 24, 28), np.uint8)
HIDDEN = np.array((44, 32, 32), np.uint8)  # Empty cells of the hidden spawn rows.
PANEL = np.array((12, 12, 14), np.uint8)
GRID = np.array((36, 36, 42), np.uint8)
TEXT = (220, 220, 220)
FONT_PX, LINE_PX = 12, 15  # Caption text: Pillow's built-in font size, pixel rows per line.


def _host(state: State) -> State:
    state = jax.device_get(state)
    if np.ndim(state.cols) != 1:
        raise ValueError(
            f"render: state.cols has shape {np.shape(state.cols)}; pass one "
            "unbatched state (index the batch first)."
        )
    return state


def _grid(env: Tetris, state: State) -> tuple[np.ndarray, np.ndarray]:
    """(rows, width) locked cells and the active piece's cells, both bool, row 0 at the top."""
    rows = env.rows
    shifts = np.arange(rows - 1, -1, -1, dtype=np.uint32)[:, None]
    bits = np.asarray(state.cols, np.uint32)[None, :] >> shifts
    locked = (bits & 1).astype(bool)
    active = np.zeros_like(locked)
    for dx, dy in pieces.CELLS[int(state.piece), int(state.rotation)]:
        c, r = int(state.x) + dx, rows - 1 - (int(state.y) + dy)
        if 0 <= c < env.width and 0 <= r < rows:
            active[r, c] = True
    return locked, active


def _status(state: State) -> str:
    line = (
        f"score {int(state.score)}  lines {int(state.total_lines)}  "
        f"pieces {int(state.pieces_placed)}  steps {int(state.steps)}"
    )
    return line + ("  [episode over]" if bool(state.done) else "")


def render_ascii(env: Tetris, state: State) -> str:
    """The board as text: '#' locked, the piece's letter for the active piece (drawn over the
    stack if they overlap), '.' empty. Hidden spawn rows have ':' borders, visible rows '|'.
    Beside the board: the queue and the hold; below it: score, lines, pieces and steps."""
    state = _host(state)
    locked, active = _grid(env, state)
    letter = pieces.NAMES[int(state.piece)]
    hold = int(state.hold)
    side = [
        f"  piece {letter} (rotation {pieces.ROTATION_NAMES[int(state.rotation)]})",
        "  next  " + (" ".join(pieces.NAMES[int(p)] for p in state.queue) or "-"),
        "  hold  " + ("-" if hold == EMPTY_HOLD else pieces.NAMES[hold]),
    ]
    lines = []
    for r in range(env.rows):
        cells = "".join(
            letter if active[r, c] else "#" if locked[r, c] else "." for c in range(env.width)
        )
        edge = ":" if r < env.hidden_rows else "|"
        lines.append(edge + cells + edge + (side[r] if r < len(side) else ""))
    lines.append("+" + "-" * env.width + "+")
    lines.append(_status(state))
    return "\n".join(lines)


def _mini_piece(piece: int, size: int) -> np.ndarray:
    """A (2 * size, 4 * size, 3) picture of a piece in its spawn state, on the panel colour."""
    out = np.broadcast_to(PANEL, (2 * size, 4 * size, 3)).copy()
    cells = pieces.CELLS[piece, 0]
    top = cells[:, 1].max()
    for dx, dy in cells:
        r, c = top - dy, dx
        out[r * size : (r + 1) * size, c * size : (c + 1) * size] = COLORS[piece]
    return out


def render_rgb(env: Tetris, state: State, cell: int = 16) -> np.ndarray:
    """(height, width, 3) uint8 picture: the board (active piece coloured by type, locked cells
    grey, hidden spawn rows tinted) and a side panel with the hold slot on top and the queue
    below it. The size depends only on env and `cell`."""
    if not (isinstance(cell, int) and cell >= 2):
        raise ValueError(f"render_rgb: cell={cell!r} must be an int >= 2 (pixels per cell).")
    state = _host(state)
    locked, active = _grid(env, state)
    colors = np.where(locked[..., None], LOCKED, EMPTY)
    colors[: env.hidden_rows][~locked[: env.hidden_rows]] = HIDDEN
    colors[active] = COLORS[int(state.piece)]
    board = np.repeat(np.repeat(colors, cell, axis=0), cell, axis=1)
    for lines in (board[::cell, :], board[:, ::cell]):  # Cell edges (views into board).
        empty = (lines == EMPTY).all(-1)
        lines[:] = np.where(empty[..., None], GRID, lines // 4 * 3)
    # Panel: slots of 3 half-cells' height, each a mini piece; hold first, then the queue.
    half = max(1, cell // 2)
    slots = [int(state.hold)] + [int(p) for p in state.queue]
    panel_w, slot_h = 6 * half, 3 * half
    height = max(env.rows * cell, slot_h * len(slots) + half)
    out = np.broadcast_to(PANEL, (height, env.width * cell + panel_w, 3)).copy()
    out[: env.rows * cell, : env.width * cell] = board
    for i, p in enumerate(slots):
        top, left = half + i * slot_h, env.width * cell + half
        if p != EMPTY_HOLD:
            out[top : top + 2 * half, left : left + 4 * half] = _mini_piece(p, half)
        if i == 0:  # A line under the hold slot.
            out[top + 2 * half + half // 2, left : left + 4 * half] = LOCKED // 2
    return out


def _font():
    from PIL import ImageFont

    return ImageFont.load_default(size=FONT_PX)


def wrap(text: str, width_px: int) -> list[str]:
    """`text` split at spaces into lines at most `width_px` wide in the caption font (a word
    wider than that gets a line of its own)."""
    from PIL import Image, ImageDraw

    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    font, lines = _font(), []
    for word in text.split():
        if lines and measure(lines[-1] + " " + word, font=font) <= width_px:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def caption(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """The frame with a strip below it, as wide as the frame, holding `lines` of text (one per
    `LINE_PX` pixel rows, Pillow's built-in font; "" for an empty line)."""
    from PIL import Image, ImageDraw

    frame = np.asarray(frame, np.uint8)
    strip = Image.new(
        "RGB", (frame.shape[1], LINE_PX * len(lines) + 4), tuple(int(v) for v in PANEL)
    )
    draw, font = ImageDraw.Draw(strip), _font()
    for i, text in enumerate(lines):
        draw.text((3, 2 + i * LINE_PX), text, fill=TEXT, font=font)
    return np.concatenate([frame, np.asarray(strip)], axis=0)


def counters(state: State) -> list[str]:
    """The caption lines of a state: lines cleared and pieces placed so far."""
    return [f"lines {int(state.total_lines):,}", f"pieces {int(state.pieces_placed):,}"]


def save_gif(
    frames: Sequence,
    path: str,
    fps: float = 10,
    env: Tetris | None = None,
    cell: int = 16,
    *,
    show_counters: bool = False,
    end_note: str | None = None,
    hold_end_s: float = 0.0,
) -> None:
    """Writes an animated GIF that loops forever. `frames`: RGB arrays (H, W, 3) uint8, or
    States (rendered with `render_rgb(env, state, cell)`; `env` is then required). Pillow
    merges identical consecutive frames into one longer frame.

    With `show_counters` (States only) each frame gets a caption strip with its lines and
    pieces (`counters`), and the last one `end_note` under them (e.g. "game over", "cut at 300
    pieces"), wrapped to the frame's width; the other frames keep that many empty lines so all
    frames have one size. The last frame is shown `hold_end_s` seconds longer."""
    from PIL import Image

    if len(frames) == 0:
        raise ValueError("save_gif: frames is empty; pass at least one frame.")
    if fps <= 0:
        raise ValueError(f"save_gif: fps={fps!r} must be positive.")
    if show_counters and not all(isinstance(f, State) for f in frames):
        raise ValueError("save_gif: show_counters needs States (their counters) as frames.")
    note: list[str] = []
    images = []
    for i, f in enumerate(frames):
        if isinstance(f, State):
            if env is None:
                raise ValueError("save_gif: frames are States; pass env= to render them.")
            state, f = f, render_rgb(env, f, cell)
            if show_counters:
                if not note and end_note:
                    note = wrap(end_note, f.shape[1] - 6)
                last = i == len(frames) - 1
                f = caption(f, counters(state) + (note if last else [""] * len(note)))
        images.append(Image.fromarray(np.asarray(f, np.uint8)))
    step = max(1, round(1000 / fps))
    durations = [step] * len(images)
    durations[-1] += round(1000 * hold_end_s)
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        loop=0,
        duration=durations if hold_end_s else step,
        disposal=1,
    )


@functools.lru_cache(maxsize=16)
def _trace_fn(env: Tetris, policy: Callable, steps: int) -> Callable:
    from tetris_jax import heuristics, rollout

    act = heuristics.batch_policy(policy)

    def run(key):
        last, tr = rollout.trace(env, act, key, num_games=1, steps=steps)
        return tr.states, tr.going, last.states

    return jax.jit(run)


def record_episode(
    env: Tetris,
    policy: Callable[[State, jax.Array], jax.Array],
    key: jax.Array,
    max_steps: int = 1000,
) -> list[State]:
    """Plays one game with `policy(state, key) -> action` (e.g. `heuristics.make_policy`)
    and returns its states: the first from `env.reset`, then one per step, until the episode
    ends or after `max_steps` steps. Keys are used as in `tetris_jax.rollout` (the game is the
    first of `rollout.play`'s games for the same key). Compiled once per (env, policy, steps)."""
    if not (isinstance(max_steps, int) and max_steps >= 0):
        raise ValueError(f"record_episode: max_steps={max_steps!r} must be an int >= 0.")
    from tetris_jax import rollout

    return rollout.frames(*_trace_fn(env, policy, max_steps)(key))
