"""A slow, plain numpy Tetris with the rules of `tetris_jax.Tetris`, for parity tests.

Written from the rules as documented (the `Tetris` docstring, shared/TETRIS_FACTS.md), not from
the JAX code: the board is a 2-D bool grid with row 0 at the TOP (like `State.grid`), the piece
pictures and the SRS kick table are typed in below, and nothing is imported from tetris_jax.

Pieces are not drawn here: `reset` takes the first piece and the queue, and `step` takes a
`draw()` callable that returns each new piece in turn (a parity test feeds the JAX env's own
draws), so the randomizer is tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

NAMES = "IOTSZJL"
EMPTY_HOLD = 7
NOOP, LEFT, RIGHT, CW, CCW, SOFT_DROP, HARD_DROP, HOLD = range(8)
LINE_POINTS = (0, 100, 300, 500, 800)  # Guideline, times the level.
MAX_LEVEL = 15

# SRS states 0, R, 2, L: rows of the bounding box, top row first.
PICTURES = {
    "I": (
        ("....", "IIII", "....", "...."),
        ("..I.", "..I.", "..I.", "..I."),
        ("....", "....", "IIII", "...."),
        (".I..", ".I..", ".I..", ".I.."),
    ),
    "O": (("OO", "OO"),) * 4,
    "T": (
        (".T.", "TTT", "..."),
        (".T.", ".TT", ".T."),
        ("...", "TTT", ".T."),
        (".T.", "TT.", ".T."),
    ),
    "S": (
        (".SS", "SS.", "..."),
        (".S.", ".SS", "..S"),
        ("...", ".SS", "SS."),
        ("S..", "SS.", ".S."),
    ),
    "Z": (
        ("ZZ.", ".ZZ", "..."),
        ("..Z", ".ZZ", ".Z."),
        ("...", "ZZ.", ".ZZ"),
        (".Z.", "ZZ.", "Z.."),
    ),
    "J": (
        ("J..", "JJJ", "..."),
        (".JJ", ".J.", ".J."),
        ("...", "JJJ", "..J"),
        (".J.", ".J.", "JJ."),
    ),
    "L": (
        ("..L", "LLL", "..."),
        (".L.", ".L.", ".LL"),
        ("...", "LLL", "L.."),
        ("LL.", ".L.", ".L."),
    ),
}

# SRS wall kicks from TETRIS_FACTS.md: "from->to": tests as (x, y) with +x right, +y UP.
KICKS_JLSTZ = {
    "0->R": ((0, 0), (-1, 0), (-1, +1), (0, -2), (-1, -2)),
    "R->0": ((0, 0), (+1, 0), (+1, -1), (0, +2), (+1, +2)),
    "R->2": ((0, 0), (+1, 0), (+1, -1), (0, +2), (+1, +2)),
    "2->R": ((0, 0), (-1, 0), (-1, +1), (0, -2), (-1, -2)),
    "2->L": ((0, 0), (+1, 0), (+1, +1), (0, -2), (+1, -2)),
    "L->2": ((0, 0), (-1, 0), (-1, -1), (0, +2), (-1, +2)),
    "L->0": ((0, 0), (-1, 0), (-1, -1), (0, +2), (-1, +2)),
    "0->L": ((0, 0), (+1, 0), (+1, +1), (0, -2), (+1, -2)),
}
KICKS_I = {
    "0->R": ((0, 0), (-2, 0), (+1, 0), (-2, -1), (+1, +2)),
    "R->0": ((0, 0), (+2, 0), (-1, 0), (+2, +1), (-1, -2)),
    "R->2": ((0, 0), (-1, 0), (+2, 0), (-1, +2), (+2, -1)),
    "2->R": ((0, 0), (+1, 0), (-2, 0), (+1, -2), (-2, +1)),
    "2->L": ((0, 0), (+2, 0), (-1, 0), (+2, +1), (-1, -2)),
    "L->2": ((0, 0), (-2, 0), (+1, 0), (-2, -1), (+1, +2)),
    "L->0": ((0, 0), (+1, 0), (-2, 0), (+1, -2), (-2, +1)),
    "0->L": ((0, 0), (-1, 0), (+2, 0), (-1, +2), (+2, -1)),
}
STATE_NAMES = "0R2L"


def cells(piece: int, rotation: int) -> list[tuple[int, int]]:
    """(row, col) offsets of the piece's cells inside its bounding box, row 0 at the top."""
    rows = PICTURES[NAMES[piece]][rotation % 4]
    return [(r, c) for r, line in enumerate(rows) for c, ch in enumerate(line) if ch != "."]


def box_size(piece: int) -> int:
    return len(PICTURES[NAMES[piece]][0])


def kicks(piece: int, rotation: int, turn: int) -> list[tuple[int, int]]:
    """Kick offsets as (row, col) moves (row grows DOWN) for a turn of +1 (cw) or -1 (ccw)."""
    if NAMES[piece] == "O":
        return [(0, 0)]
    key = f"{STATE_NAMES[rotation]}->{STATE_NAMES[(rotation + turn) % 4]}"
    table = KICKS_I if NAMES[piece] == "I" else KICKS_JLSTZ
    return [(-y, x) for x, y in table[key]]


def shape(piece: int, rotation: int) -> frozenset[tuple[int, int]]:
    """The cells moved to touch row 0 and column 0: equal shapes are the same placement."""
    cs = cells(piece, rotation)
    r0, c0 = min(r for r, _ in cs), min(c for _, c in cs)
    return frozenset((r - r0, c - c0) for r, c in cs)


# ----- Board features for reward_mode="standard" (column heights over the whole grid). -----


def column_heights(grid: np.ndarray) -> np.ndarray:
    rows = grid.shape[0]
    filled = grid.any(axis=0)
    return np.where(filled, rows - np.argmax(grid, axis=0), 0)


def count_holes(grid: np.ndarray) -> int:
    """Empty cells with a filled cell somewhere above them in the same column."""
    covered = np.logical_or.accumulate(grid, axis=0)
    return int((covered & ~grid).sum())


def potential(grid: np.ndarray, weights: dict[str, float]) -> float:
    h = column_heights(grid)
    return (
        weights.get("aggregate_height", 0.0) * h.sum()
        + weights.get("holes", 0.0) * count_holes(grid)
        + weights.get("bumpiness", 0.0) * np.abs(np.diff(h)).sum()
    )


def clear_full_rows(grid: np.ndarray) -> tuple[np.ndarray, int]:
    full = grid.all(axis=1)
    kept = grid[~full]
    out = np.zeros_like(grid)
    out[grid.shape[0] - len(kept) :] = kept
    return out, int(full.sum())


class Reference:
    """One game of Tetris on a numpy grid; see `tetris_jax.Tetris` for the rules."""

    def __init__(
        self,
        height: int = 20,
        width: int = 10,
        action_mode: str = "placement",
        reward_mode: str = "lines_only",
        queue_size: int = 5,
        max_steps: int | None = None,
        hidden_rows: int | None = None,
        shaping: dict[str, float] | None = None,
        shaping_gamma: float = 1.0,
        game_over_penalty: float = 1.0,
        piece_reward: float = 0.0,
    ):
        self.height, self.width = height, width
        self.action_mode, self.reward_mode = action_mode, reward_mode
        if hidden_rows is None:
            hidden_rows = 0 if action_mode == "placement" else 2
        self.hidden, self.rows = hidden_rows, height + hidden_rows
        self.queue_size, self.max_steps = queue_size, max_steps
        self.shaping = dict(shaping or {})
        self.gamma, self.penalty = shaping_gamma, game_over_penalty
        self.piece_reward = piece_reward
        self.num_actions = 4 * width if action_mode == "placement" else 8

    # ----- positions -----

    def spawn(self, piece: int) -> tuple[int, int]:
        """Box top-left (row, col) at spawn: horizontal, centred (J L S T Z left of centre);
        the lowest cells in the first hidden row (direct) or the highest in row 0 (placement).
        """
        cs = cells(piece, 0)
        left = min(c for _, c in cs)
        span = max(c for _, c in cs) - left + 1
        col = (self.width - span) // 2 - left
        if self.action_mode == "direct":
            return self.hidden - 1 - max(r for r, _ in cs), col
        return -min(r for r, _ in cs), col

    def piece_cells(self, piece=None, rotation=None, pos=None) -> list[tuple[int, int]]:
        piece = self.piece if piece is None else piece
        rotation = self.rotation if rotation is None else rotation
        r0, c0 = self.pos if pos is None else pos
        return [(r0 + r, c0 + c) for r, c in cells(piece, rotation)]

    def fits(self, grid, cs) -> bool:
        return all(0 <= r < self.rows and 0 <= c < self.width and not grid[r, c] for r, c in cs)

    # ----- game -----

    def reset(self, piece: int, queue, board=None) -> dict:
        self.grid = np.zeros((self.rows, self.width), bool)
        if board is not None:
            self.grid[self.hidden :] = np.asarray(board, bool)
        self.queue = [int(p) for p in queue]
        assert len(self.queue) == self.queue_size, (self.queue, self.queue_size)
        self._new_piece(int(piece))
        self.hold = EMPTY_HOLD
        self.can_hold = self.action_mode == "direct"
        self.steps = self.pieces_placed = self.total_lines = self.score = 0
        self.done = False
        return dict(reward=0.0, is_first=True, is_last=False, is_terminal=False, lines=0)

    def _new_piece(self, piece: int) -> None:
        self.piece, self.rotation, self.pos = piece, 0, self.spawn(piece)

    def _take_next(self, draw: Callable[[], int]) -> int:
        """The next piece: the queue's head (refilled from `draw`), or a fresh draw."""
        if not self.queue:
            return int(draw())
        head = self.queue.pop(0)
        self.queue.append(int(draw()))
        return head

    def step(self, action: int, draw: Callable[[], int]) -> dict:
        assert not self.done, "the episode has ended"
        action = int(np.clip(action, 0, self.num_actions - 1))
        before, placed = self.grid.copy(), self.pieces_placed
        if self.action_mode == "placement":
            lines, game_over, points = self._placement(action, draw)
        else:
            lines, game_over, points = self._direct(action, draw)
        level = min(1 + self.total_lines // 10, MAX_LEVEL)
        self.score += points + LINE_POINTS[lines] * level
        self.total_lines += lines
        self.steps += 1
        truncated = self.max_steps is not None and self.steps >= self.max_steps
        self.done = game_over or truncated
        reward = float(lines)
        if self.reward_mode == "standard":
            reward += self.gamma * potential(self.grid, self.shaping)
            reward -= potential(before, self.shaping) + self.penalty * game_over
            reward += self.piece_reward * (self.pieces_placed - placed)
        return dict(
            reward=reward, is_first=False, is_last=self.done, is_terminal=game_over, lines=lines
        )

    def _lock(self, cs, draw) -> tuple[int, bool]:
        """Locks cells, clears rows, spawns the next piece: (lines, block out)."""
        for r, c in cs:
            self.grid[r, c] = True
        self.grid, lines = clear_full_rows(self.grid)
        self.pieces_placed += 1
        self._new_piece(self._take_next(draw))
        self.can_hold = self.action_mode == "direct"
        return lines, not self.fits(self.grid, self.piece_cells())

    def drop_position(self, piece: int, rotation: int, column: int) -> list[tuple[int, int]]:
        """Classic straight drop from above the board: cells where the piece comes to rest,
        leftmost cell at `column` (clamped so the piece fits); rows < 0 are above the grid."""
        cs = shape(piece, rotation)
        column = min(column, self.width - 1 - max(c for _, c in cs))
        top = -4 - max(r for r, _ in cs)  # Wholly above the grid.
        free = lambda t: all(t + r < 0 or not self.grid[t + r, column + c] for r, c in cs)
        while max(top + 1 + r for r, _ in cs) < self.rows and free(top + 1):
            top += 1
        return [(top + r, column + c) for r, c in cs]

    def _placement(self, action, draw):
        rotation, column = divmod(action, self.width)
        cs = self.drop_position(self.piece, rotation, column)
        top_out = min(r for r, _ in cs) < self.hidden
        if top_out:  # The board is left as it was; the next piece is still drawn.
            self._new_piece(self._take_next(draw))
            return 0, True, 0
        lines, _ = self._lock(cs, draw)
        return lines, False, 0

    def _direct(self, action, draw):
        points = 0
        if action in (CW, CCW):
            turn = 1 if action == CW else -1
            for dr, dc in kicks(self.piece, self.rotation, turn):
                pos = (self.pos[0] + dr, self.pos[1] + dc)
                if self.fits(self.grid, self.piece_cells(rotation=self.rotation + turn, pos=pos)):
                    self.rotation, self.pos = (self.rotation + turn) % 4, pos
                    break
        elif action in (LEFT, RIGHT, SOFT_DROP):
            dr, dc = {LEFT: (0, -1), RIGHT: (0, 1), SOFT_DROP: (1, 0)}[action]
            pos = (self.pos[0] + dr, self.pos[1] + dc)
            if self.fits(self.grid, self.piece_cells(pos=pos)):
                self.pos = pos
                points += action == SOFT_DROP
        elif action == HOLD and self.can_hold:
            incoming = self._take_next(draw) if self.hold == EMPTY_HOLD else self.hold
            self.hold, self.can_hold = self.piece, False
            self._new_piece(incoming)
            if not self.fits(self.grid, self.piece_cells()):
                return 0, True, points  # Block out: the held-in piece does not fit.
        # Gravity: one row, or all the way for a hard drop; a piece that cannot fall locks.
        fall = 0
        while self.fits(self.grid, self.piece_cells(pos=(self.pos[0] + fall + 1, self.pos[1]))):
            fall += 1
        if action == HARD_DROP or fall == 0:
            if action == HARD_DROP:
                points += 2 * fall
            cs = self.piece_cells(pos=(self.pos[0] + fall, self.pos[1]))
            lock_out = all(r < self.hidden for r, _ in cs)
            lines, block_out = self._lock(cs, draw)
            return lines, lock_out or block_out, points
        self.pos = (self.pos[0] + 1, self.pos[1])
        return 0, False, points

    # ----- what the agent sees -----

    def active(self) -> np.ndarray:
        plane = np.zeros((self.rows, self.width), bool)
        for r, c in self.piece_cells():
            if 0 <= r < self.rows and 0 <= c < self.width:
                plane[r, c] = True
        return plane

    def action_mask(self) -> np.ndarray:
        if self.action_mode == "direct":
            mask = np.ones(8, bool)
            mask[HOLD] = self.can_hold
            return mask
        distinct = np.zeros(self.num_actions, bool)
        safe = np.zeros(self.num_actions, bool)
        shapes = [shape(self.piece, r) for r in range(4)]
        for a in range(self.num_actions):
            rotation, column = divmod(a, self.width)
            span = max(c for _, c in shapes[rotation]) + 1
            if shapes[rotation] in shapes[:rotation] or column > self.width - span:
                continue
            distinct[a] = True
            cs = self.drop_position(self.piece, rotation, column)
            safe[a] = min(r for r, _ in cs) >= self.hidden
        return safe if safe.any() else distinct

    def observation(self) -> dict:
        return dict(
            board=self.grid.copy(),
            active=self.active(),
            piece=self.piece,
            rotation=self.rotation,
            queue=list(self.queue),
            hold=self.hold,
            can_hold=self.can_hold,
            action_mask=self.action_mask(),
        )

    def metrics(self) -> dict:
        return dict(
            total_lines=self.total_lines,
            pieces_placed=self.pieces_placed,
            score=self.score,
            steps=self.steps,
        )
