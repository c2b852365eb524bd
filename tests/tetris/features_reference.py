"""A slow, plain numpy reference for the heuristic features and controllers.

Written from the definitions in shared/TETRIS_FACTS.md, independently of tetris_jax's bitboards:
a board is a 2-D bool grid (rows, width) with row 0 at the TOP; every function also takes a
stack of grids (..., rows, width). Only the tetromino cell tables come from tetris_jax.pieces.
"""

from __future__ import annotations

import numpy as np

from tetris_jax import pieces

FEATURES = (
    "landing_height",
    "eroded_cells",
    "lines",
    "row_transitions",
    "column_transitions",
    "holes",
    "well_sums",
    "hole_depth",
    "rows_with_holes",
    "aggregate_height",
    "bumpiness",
    "max_height",
)


def _filled_above(grid: np.ndarray) -> np.ndarray:
    """Cells with a filled cell anywhere above them in the same column."""
    above = np.zeros_like(grid)
    above[..., 1:, :] = np.logical_or.accumulate(grid, axis=-2)[..., :-1, :]
    return above


def hole_mask(grid: np.ndarray) -> np.ndarray:
    return ~grid & _filled_above(grid)


def holes(grid: np.ndarray) -> np.ndarray:
    return hole_mask(grid).sum((-2, -1))


def row_transitions(grid: np.ndarray) -> np.ndarray:
    """Filled<->empty changes along each row, side walls filled; empty rows count 2."""
    wall = np.ones(grid.shape[:-1] + (1,), bool)
    padded = np.concatenate([wall, grid, wall], axis=-1)
    return (padded[..., 1:] != padded[..., :-1]).sum((-2, -1))


def column_transitions(grid: np.ndarray) -> np.ndarray:
    """Changes along each column from the floor (filled) to above the board (empty)."""
    row = grid.shape[:-2] + (1, grid.shape[-1])
    padded = np.concatenate([np.zeros(row, bool), grid, np.ones(row, bool)], axis=-2)
    return (padded[..., 1:, :] != padded[..., :-1, :]).sum((-2, -1))


def well_sums(grid: np.ndarray) -> np.ndarray:
    """Per well cell (empty, left and right filled, walls filled): 1 + the consecutive empty
    cells directly below it."""
    wall = np.ones(grid.shape[:-1] + (1,), bool)
    padded = np.concatenate([wall, grid, wall], axis=-1)
    well = ~grid & padded[..., :-2] & padded[..., 2:]
    rows = grid.shape[-2]
    empty_below = np.zeros(grid.shape, np.int64)  # Consecutive empty cells under each cell.
    for r in range(rows - 2, -1, -1):
        empty_below[..., r, :] = np.where(grid[..., r + 1, :], 0, 1 + empty_below[..., r + 1, :])
    return np.where(well, 1 + empty_below, 0).sum((-2, -1))


def hole_depth(grid: np.ndarray) -> np.ndarray:
    """Per hole: the consecutive filled cells directly above it."""
    filled_above = np.zeros(grid.shape, np.int64)
    for r in range(1, grid.shape[-2]):
        filled_above[..., r, :] = np.where(grid[..., r - 1, :], 1 + filled_above[..., r - 1, :], 0)
    return np.where(hole_mask(grid), filled_above, 0).sum((-2, -1))


def rows_with_holes(grid: np.ndarray) -> np.ndarray:
    return hole_mask(grid).any(-1).sum(-1)


def column_heights(grid: np.ndarray) -> np.ndarray:
    """(..., width) rows from the floor up to and including each column's highest cell."""
    rows = grid.shape[-2]
    any_filled = grid.any(axis=-2)
    return np.where(any_filled, rows - np.argmax(grid, axis=-2), 0)


def aggregate_height(grid: np.ndarray) -> np.ndarray:
    return column_heights(grid).sum(-1)


def bumpiness(grid: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(column_heights(grid), axis=-1)).sum(-1)


def max_height(grid: np.ndarray) -> np.ndarray:
    return column_heights(grid).max(-1)


BOARD_FEATURES = {
    "row_transitions": row_transitions,
    "column_transitions": column_transitions,
    "holes": holes,
    "well_sums": well_sums,
    "hole_depth": hole_depth,
    "rows_with_holes": rows_with_holes,
    "aggregate_height": aggregate_height,
    "bumpiness": bumpiness,
    "max_height": max_height,
}


# ----- Placements (classic rules: straight drop from above the board, no sliding). -----


def _shape(piece: int, rotation: int) -> list[tuple[int, int]]:
    """Cells (dx, dy) of the piece, y UP, shifted so the lowest and leftmost cells are at 0."""
    cells = pieces.CELLS[piece, rotation]
    x0, y0 = cells[:, 0].min(), cells[:, 1].min()
    return [(int(x - x0), int(y - y0)) for x, y in cells]


def placement(grid: np.ndarray, piece: int, action: int):
    """Drops the piece for `action = rotation * width + column` (column = leftmost cell,
    clamped so the piece fits). Returns (cells as (row_from_top, col) list, or None if any cell
    rests above the board (top-out); the shape's key for spotting duplicate placements)."""
    rows, width = grid.shape
    rotation, column = divmod(action, width)
    shape = _shape(piece, rotation)
    left = min(column, width - 1 - max(dx for dx, _ in shape))
    y = rows  # Bottom row of the shape, counted from the floor; start above the board.

    def fits(y):
        for dx, dy in shape:
            if y + dy < 0:
                return False
            if y + dy < rows and grid[rows - 1 - (y + dy), left + dx]:
                return False
        return True

    while fits(y - 1):
        y -= 1
    key = (tuple(sorted(shape)), left)
    if any(y + dy >= rows for _, dy in shape):
        return None, key
    return [(rows - 1 - (y + dy), left + dx) for dx, dy in shape], key


def placement_features(grid: np.ndarray, piece: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features of every placement ((num_actions,) arrays) and which are valid: not topping out
    and not a duplicate of a lower-numbered action."""
    rows, width = grid.shape
    num = 4 * width
    valid = np.zeros(num, bool)
    after = np.zeros((num, rows, width), bool)
    out = {k: np.zeros(num) for k in FEATURES}
    seen = set()
    for a in range(num):
        cells, key = placement(grid, piece, a)
        if key in seen or cells is None:
            seen.add(key)
            continue
        seen.add(key)
        valid[a] = True
        locked = grid.copy()
        for r, c in cells:
            locked[r, c] = True
        full = locked.all(axis=1)
        lines = int(full.sum())
        out["lines"][a] = lines
        out["eroded_cells"][a] = lines * sum(bool(full[r]) for r, _ in cells)
        lowest = max(r for r, _ in cells)  # Row from the top of the piece's lowest cell.
        piece_height = lowest - min(r for r, _ in cells) + 1
        out["landing_height"][a] = (rows - 1 - lowest) + (piece_height - 1) / 2
        kept = locked[~full]
        after[a, rows - len(kept) :] = kept
    for name, fn in BOARD_FEATURES.items():
        out[name] = np.where(valid, fn(after), 0).astype(np.float64)
    return out, valid


def scores(grid: np.ndarray, piece: int, weights: dict[str, float]) -> np.ndarray:
    """(num_actions,) float64 weighted sums, -inf where the placement is not valid."""
    features, valid = placement_features(grid, piece)
    total = sum(w * features[k] for k, w in weights.items())
    return np.where(valid, total, -np.inf)


def choose(grid: np.ndarray, piece: int, weights: dict[str, float]) -> int:
    """The first action of highest score (action 0 when every placement tops out)."""
    return int(np.argmax(scores(grid, piece, weights)))


def play(rows: int, width: int, piece_sequence, choose_action, max_pieces: int):
    """One classic game on the given pieces; `choose_action(grid, piece) -> action`.

    Returns (lines, pieces locked, capped): the game ends when the chosen placement tops out,
    or is capped after max_pieces decisions.
    """
    grid = np.zeros((rows, width), bool)
    lines = 0
    for t in range(max_pieces):
        piece = int(piece_sequence[t])
        cells, _ = placement(grid, piece, choose_action(grid, piece))
        if cells is None:
            return lines, t, False
        for r, c in cells:
            grid[r, c] = True
        full = grid.all(axis=1)
        lines += int(full.sum())
        kept = grid[~full]
        grid = np.zeros_like(grid)
        grid[rows - len(kept) :] = kept
    return lines, max_pieces, True


def heuristic(weights: dict[str, float]):
    """A one-piece controller for `play`."""
    return lambda grid, piece: choose(grid, piece, weights)


def random_controller(rng: np.random.Generator):
    """Uniform over valid placements (action 0 when every placement tops out)."""

    def choose_action(grid, piece):
        _, valid = placement_features(grid, piece)
        return int(rng.choice(np.flatnonzero(valid))) if valid.any() else 0

    return choose_action
