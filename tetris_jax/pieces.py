"""Tetromino shapes and SRS rotation data, as static numpy tables.

Coordinates: x grows to the right, y grows UP (row 0 is the floor). A piece sits in its SRS
bounding box (4x4 for I, 2x2 for O, 3x3 otherwise) whose bottom-left corner is at (x, y).
"""

from __future__ import annotations

import numpy as np

NAMES = "IOTSZJL"
NUM_PIECES = 7
I, O, T, S, Z, J, L = range(NUM_PIECES)  # noqa: E741 (the pieces are named I and O)
ROTATION_NAMES = ("0", "R", "2", "L")

# Spawn state (rotation 0) as rows of the bounding box, top row first (the usual SRS pictures).
_SPAWN = {
    "I": ("....", "IIII", "....", "...."),
    "O": ("OO", "OO"),
    "T": (".T.", "TTT", "..."),
    "S": (".SS", "SS.", "..."),
    "Z": ("ZZ.", ".ZZ", "..."),
    "J": ("J..", "JJJ", "..."),
    "L": ("..L", "LLL", "..."),
}
BOX_SIZE = np.array([len(_SPAWN[n]) for n in NAMES], np.int32)


def _cells(piece: int, rotation: int) -> list[tuple[int, int]]:
    """(dx, dy) cells of `piece` in SRS state `rotation`, y up from the box bottom."""
    rows = _SPAWN[NAMES[piece]]
    n = len(rows)
    cells = [(x, r) for r, row in enumerate(rows) for x, ch in enumerate(row) if ch != "."]
    for _ in range(rotation):  # Clockwise quarter turn of the box: (x, r) -> (n-1-r, x).
        cells = [(n - 1 - r, x) for x, r in cells]
    return sorted((x, n - 1 - r) for x, r in cells)


CELLS = np.array([[_cells(p, r) for r in range(4)] for p in range(NUM_PIECES)], np.int32)
assert CELLS.shape == (NUM_PIECES, 4, 4, 2), CELLS.shape

# Per box column dx in 0..3: the column's cells as a bitmask over dy, and its lowest dy.
COL_BITS = np.zeros((NUM_PIECES, 4, 4), np.uint32)
COL_LOW = np.full((NUM_PIECES, 4, 4), 99, np.int32)  # 99: the column is empty.
for _p in range(NUM_PIECES):
    for _r in range(4):
        for _dx, _dy in CELLS[_p, _r]:
            COL_BITS[_p, _r, _dx] |= np.uint32(1 << _dy)
            COL_LOW[_p, _r, _dx] = min(COL_LOW[_p, _r, _dx], _dy)
MIN_DX = CELLS[..., 0].min(-1)
MAX_DX = CELLS[..., 0].max(-1)
MIN_DY = CELLS[..., 1].min(-1)
MAX_DY = CELLS[..., 1].max(-1)

# Rotations whose occupied cells are a horizontal translate of an earlier rotation's cells:
# straight drops of the two give the same placements (O: all four; I, S, Z: 2 = 0 and L = R).
CANONICAL_ROTATION = np.ones((NUM_PIECES, 4), bool)
for _p in range(NUM_PIECES):
    for _r in range(4):
        _shape = {(x - MIN_DX[_p, _r], y - MIN_DY[_p, _r]) for x, y in CELLS[_p, _r]}
        for _q in range(_r):
            if _shape == {(x - MIN_DX[_p, _q], y - MIN_DY[_p, _q]) for x, y in CELLS[_p, _q]}:
                CANONICAL_ROTATION[_p, _r] = False

# SRS wall kicks, (x, y) with y UP, indexed [from_rotation, direction] with direction 0 for
# clockwise (from -> from+1) and 1 for counter-clockwise (from -> from-1).
_KICKS_JLSTZ = {
    (0, 1): ((0, 0), (-1, 0), (-1, 1), (0, -2), (-1, -2)),
    (1, 0): ((0, 0), (1, 0), (1, -1), (0, 2), (1, 2)),
    (1, 2): ((0, 0), (1, 0), (1, -1), (0, 2), (1, 2)),
    (2, 1): ((0, 0), (-1, 0), (-1, 1), (0, -2), (-1, -2)),
    (2, 3): ((0, 0), (1, 0), (1, 1), (0, -2), (1, -2)),
    (3, 2): ((0, 0), (-1, 0), (-1, -1), (0, 2), (-1, 2)),
    (3, 0): ((0, 0), (-1, 0), (-1, -1), (0, 2), (-1, 2)),
    (0, 3): ((0, 0), (1, 0), (1, 1), (0, -2), (1, -2)),
}
_KICKS_I = {
    (0, 1): ((0, 0), (-2, 0), (1, 0), (-2, -1), (1, 2)),
    (1, 0): ((0, 0), (2, 0), (-1, 0), (2, 1), (-1, -2)),
    (1, 2): ((0, 0), (-1, 0), (2, 0), (-1, 2), (2, -1)),
    (2, 1): ((0, 0), (1, 0), (-2, 0), (1, -2), (-2, 1)),
    (2, 3): ((0, 0), (2, 0), (-1, 0), (2, 1), (-1, -2)),
    (3, 2): ((0, 0), (-2, 0), (1, 0), (-2, -1), (1, 2)),
    (3, 0): ((0, 0), (1, 0), (-2, 0), (1, -2), (-2, 1)),
    (0, 3): ((0, 0), (-1, 0), (2, 0), (-1, 2), (2, -1)),
}


def _kick_table(table: dict) -> np.ndarray:
    out = np.zeros((4, 2, 5, 2), np.int32)
    for (a, b), tests in table.items():
        out[a, 0 if b == (a + 1) % 4 else 1] = tests
    return out


# KICKS[piece, from_rotation, direction, test] -> (dx, dy). O never kicks: only (0, 0), and
# its four tests are the same offset, so trying them changes nothing.
KICKS = np.zeros((NUM_PIECES, 4, 2, 5, 2), np.int32)
for _p in range(NUM_PIECES):
    if NAMES[_p] == "I":
        KICKS[_p] = _kick_table(_KICKS_I)
    elif NAMES[_p] != "O":
        KICKS[_p] = _kick_table(_KICKS_JLSTZ)


def placement_planes(width: int) -> np.ndarray:
    """(7, 4 * width, 4, width) bool: placement `rotation * width + column` of each piece drawn
    in a 4-row strip, top row first; the column is clamped as the env clamps it (the piece's
    leftmost cell at `column`, or as far right as it fits)."""
    out = np.zeros((NUM_PIECES, 4 * width, 4, width), bool)
    for p in range(NUM_PIECES):
        for a in range(4 * width):
            r, c = divmod(a, width)
            x = min(c, width - 1 - (MAX_DX[p, r] - MIN_DX[p, r])) - MIN_DX[p, r]
            for dx, dy in CELLS[p, r]:
                out[p, a, 3 - dy, x + dx] = True
    return out


def spawn_x(width: int) -> np.ndarray:
    """Box column of each piece at spawn: I and O centred, J L S T Z left of centre."""
    return ((width - BOX_SIZE) // 2).astype(np.int32)
