"""Features of the board each placement of the current piece would leave (its afterstate).

Shared by the heuristic controllers (which score placements by weighted sums of them) and by
the environment's optional `placements` observation field (placement mode,
`Tetris(placement_features=True)`), which lets a learning agent compare placements the way
learned Tetris agents usually do: by the afterstates the known rules give, not by a board it
has to simulate in its head. Definitions follow `shared/TETRIS_FACTS.md` (MdpTetris
conventions); board features count the visible rows.

All placements are computed at once: per-placement quantities are (num_actions,) arrays, and
the board features run on `board.Cols` whose columns are those arrays, so under `vmap` every op
is one elementwise kernel over (batch, num_actions) values.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tetris_jax import board as bb
from tetris_jax import pieces

# Heuristic features (Dellacherie, El-Tetris, BCTS) and, last, the three of the standard
# reward's potential plus the stack's maximum height.
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


def placement_features(
    cols: jax.Array, piece: jax.Array, width: int, height: int, rows: int
) -> tuple[dict[str, jax.Array], jax.Array]:
    """Features of every placement `a = rotation * width + column` of `piece` on `cols`.

    cols: (width,) uint32 locked cells (bit k = row k from the floor); rows: rows of the grid
    (height plus hidden rows). Returns ({feature: (4 * width,) float32}, valid (4 * width,)
    bool): valid = a distinct placement (canonical rotation, unclamped column) that does not top
    out. Features of invalid placements are meaningless.
    """
    num = 4 * width
    cl = bb.split(cols)
    table = bb.placement_landing(cl, piece)
    y = jnp.stack([table[r][c] for r in range(4) for c in range(width)])
    rotation, column = np.arange(num) // width, np.arange(num) % width
    p = bb.Piece(piece, jnp.asarray(rotation, jnp.int32))
    last = width - 1 - (p.max_dx - p.min_dx)  # Last column at which the piece fits.
    x = jnp.minimum(column, last) - p.min_dx
    canonical = bb.lookup2(pieces.CANONICAL_ROTATION, piece, jnp.asarray(rotation))
    valid = canonical & (column <= last) & (y + p.max_dy < height)

    piece_cols = p.cols(x, y, width)
    locked = bb.lock(cl, piece_cols)
    full = bb.full_rows(locked, rows)
    lines = bb.popcount(full)
    in_full = sum(bb.popcount(c & full) for c in piece_cols)
    after, _ = bb.clear_lines(locked, rows)
    features = {
        # Lowest cell's row from the floor plus half the piece's height minus one.
        "landing_height": (2 * (y + p.min_dy) + p.max_dy - p.min_dy) * 0.5,
        "eroded_cells": lines * in_full,
        "lines": lines,
        **_board_features(after, height),
    }
    return {k: jnp.asarray(v, jnp.float32) for k, v in features.items()}, valid


def _board_features(cols: bb.Cols, height: int) -> dict[str, jax.Array]:
    """BOARD_FEATURES of a board's columns (any batch shape; elementwise)."""
    h = bb.heights(cols)
    return {
        "row_transitions": bb.row_transitions(cols, height),
        "column_transitions": bb.column_transitions(cols, height),
        "holes": bb.holes(cols),
        "well_sums": bb.well_sums(cols, height),
        "hole_depth": bb.hole_depth(cols, height),
        "rows_with_holes": bb.rows_with_holes(cols, height),
        "aggregate_height": sum(h),
        "bumpiness": bb.bumpiness(h),
        "max_height": jnp.max(jnp.stack(h), 0),
    }


# Features of a board alone (no placement): the afterstate features that do not depend on how
# the board was reached, for value functions over boards (`board_features`).
BOARD_FEATURES = FEATURES[3:]


def board_features(board: jax.Array, height: int) -> jax.Array:
    """(..., BOARD_FEATURES) float32 features of boards (..., rows, width), row 0 at the top,
    nonzero = filled; `height` visible rows count (as in `placement_features`). Works on any
    board, including one a model predicted (floating cells and all)."""
    rows, width = board.shape[-2:]
    if rows > 32:
        raise ValueError(f"board_features: got {rows} rows; at most 32 (uint32 columns)")
    weights = (jnp.uint32(1) << jnp.arange(rows - 1, -1, -1, dtype=jnp.uint32))[:, None]
    cols = jnp.sum(jnp.where(board.astype(bool), weights, jnp.uint32(0)), axis=-2, dtype=jnp.uint32)
    features = _board_features(bb.split(cols), height)
    return jnp.stack([jnp.asarray(features[k], jnp.float32) for k in BOARD_FEATURES], -1)


def feature_matrix(
    cols: jax.Array, piece: jax.Array, width: int, height: int, rows: int
) -> jax.Array:
    """(4 * width, len(FEATURES)) float32 features, zero where the placement is not valid."""
    features, valid = placement_features(cols, piece, width, height, rows)
    x = jnp.stack([features[k] for k in FEATURES], -1)
    return jnp.where(valid[:, None], x, 0.0)
