"""Bitboard operations on one board.

A board is a list of `width` uint32 scalars, one per column; bit k of column c is the cell of
row k counted from the floor (row 0 is the bottom). Columns as bits make Tetris a handful of
integer ops: a column's height is 32 - clz, a full row is the AND of all columns, a piece
collides when its column bits AND the board's.

Why a Python list of scalars and not a (width,) array: under `jax.vmap` each column becomes a
contiguous (batch,) vector, so XLA's CPU backend vectorises every op across the batch. Ops over
a (batch, width) array loop over the short width axis instead and ran ~3-5x slower (measured
while building it; docs/results/README.md has the benchmarks). The same code runs unbatched or
on any batch shape (ops are elementwise).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tetris_jax import pieces

U32 = jnp.uint32
ALL = 0xFFFFFFFF
Cols = list  # list[jax.Array] of uint32 columns.
_BIG = 1 << 20


def split(cols: jax.Array) -> Cols:
    """(..., width) uint32 array -> list of width columns."""
    return [cols[..., c] for c in range(cols.shape[-1])]


def stack(cols: Cols) -> jax.Array:
    return jnp.stack(cols, axis=-1)


def row_mask(rows: int) -> int:
    """Bits of the rows [0, rows)."""
    return (1 << rows) - 1 if rows < 32 else ALL


def to_cols(board: jax.Array) -> jax.Array:
    """(rows, width) bool/int board, row 0 at the TOP -> (width,) uint32 columns."""
    rows = board.shape[0]
    weights = (U32(1) << jnp.arange(rows - 1, -1, -1, dtype=U32))[:, None]
    return jnp.sum(jnp.where(board.astype(bool), weights, U32(0)), axis=0, dtype=U32)


def to_board(cols: jax.Array, rows: int) -> jax.Array:
    """(..., width) uint32 columns -> (..., rows, width) bool board, row 0 at the TOP. Leading
    axes are kept, so a batched `State`'s `board` works without a vmap."""
    shifts = jnp.arange(rows - 1, -1, -1, dtype=U32)[:, None]
    return ((cols[..., None, :] >> shifts) & U32(1)).astype(bool)


def lookup(table: np.ndarray, index) -> jax.Array:
    """table[index] for a small static table.

    Tables of up to 8 entries become a chain of selects, which fuse with their neighbours and
    vectorise across a vmapped batch on the CPU; longer ones are a gather.
    """
    table = np.asarray(table)
    if len(table) > 8:
        return jnp.asarray(table)[index]
    out = jnp.full(jnp.shape(index), table[0], dtype=table.dtype)
    for i in range(1, len(table)):
        out = jnp.where(index == i, table[i], out)
    return out


def lookup2(table: np.ndarray, piece, rotation) -> jax.Array:
    """table[piece, rotation] for a (7, 4) table; `rotation` may be a static int.

    With a static rotation it is a 7-way select chain; otherwise one gather (a 28-way chain
    would multiply the ops XLA has to compile).
    """
    if isinstance(rotation, int):
        return lookup(table[:, rotation], piece)
    return jnp.asarray(table.reshape(-1))[piece * 4 + rotation]


def keep(value: jax.Array, anchor: jax.Array) -> jax.Array:
    """`value`, computed once and stored, for a step whose later parts all read it.

    Why: XLA's CPU fusion copies a chain of cheap elementwise ops into every fusion that
    reads its result, so a value that many outputs depend on (the piece's position after
    the move, the lock decision) is recomputed once per output array of the step: the
    direct step ran ~13x its own op count that way. A gather counts as expensive and is
    never duplicated, so passing the value through a one-element gather makes XLA compute
    its inputs once, in the gather's (vectorised) loop, and later fusions load the result.
    `anchor` is any int32 that is 0 at run time but not a constant XLA could fold (a
    constant index turns the gather into a slice, which fuses like any other op).
    """
    return jnp.stack([value])[anchor]


def keep_fields(anchor: jax.Array, fields: list[tuple[jax.Array, int]]) -> list[jax.Array]:
    """`keep` for several small ints at once, bit-packed into as few uint32 words as fit.

    fields: (value, bits): a bool (bits=1), or an int32 in [-2**(bits-1), 2**(bits-1)).
    One word is one gather, and one copy of the chain that computes its fields (values
    computed from shared intermediates, such as x, y and rotation after a move, should
    share a word). Returns the values with their dtypes.
    """
    words, spans, used = [], [], 32
    for value, bits in fields:
        if used + bits > 32:
            words.append(U32(0))
            used = 0
        part = jnp.asarray(value).astype(jnp.int32).astype(U32) & U32((1 << bits) - 1)
        words[-1] = words[-1] | (part << U32(used))
        spans.append((len(words) - 1, used, bits))
        used += bits
    words = [keep(w, anchor) for w in words]
    out = []
    for (value, _), (w, lo, bits) in zip(fields, spans, strict=True):
        raw = (words[w] << U32(32 - lo - bits)).astype(jnp.int32)
        v = raw >> (32 - bits)  # Arithmetic: sign-extends.
        out.append((v & 1).astype(bool) if jnp.asarray(value).dtype == bool else v)
    return out


def height(col: jax.Array) -> jax.Array:
    """1 + the row of the highest filled cell, 0 for an empty column (int32)."""
    return 32 - jax.lax.clz(col).astype(jnp.int32)


def popcount(x: jax.Array) -> jax.Array:
    return jax.lax.population_count(x).astype(jnp.int32)


def shift_up(bits: jax.Array, y: jax.Array) -> jax.Array:
    """bits << y for y of either sign (a negative y shifts down)."""
    y = jnp.asarray(y, jnp.int32)
    return (bits << jnp.maximum(y, 0).astype(U32)) >> jnp.maximum(-y, 0).astype(U32)


class Piece:
    """Static data of a piece in one rotation, looked up once and reused across tests."""

    def __init__(self, piece, rotation):
        get = lambda table: lookup2(table, piece, rotation)
        self.bits = [get(pieces.COL_BITS[:, :, dx]) for dx in range(4)]
        self.low = [get(pieces.COL_LOW[:, :, dx]) for dx in range(4)]
        self.min_dx, self.max_dx = get(pieces.MIN_DX), get(pieces.MAX_DX)
        self.min_dy, self.max_dy = get(pieces.MIN_DY), get(pieces.MAX_DY)

    def cols(self, x, y, width: int) -> Cols:
        """The piece's cells with its box corner at (x, y); box columns off the grid vanish."""
        out = []
        for c in range(width):
            d = c - x
            col = jnp.where(d == 0, self.bits[0], U32(0))
            for dx in range(1, 4):
                col = jnp.where(d == dx, self.bits[dx], col)
            out.append(shift_up(col, y))
        return out

    def in_bounds(self, x, y, width: int, rows: int) -> jax.Array:
        return (
            (x + self.min_dx >= 0)
            & (x + self.max_dx < width)
            & (y + self.min_dy >= 0)
            & (y + self.max_dy < rows)
        )


def overlaps(cols: Cols, piece_cols: Cols) -> jax.Array:
    hit = cols[0] & piece_cols[0]
    for a, b in zip(cols[1:], piece_cols[1:], strict=True):
        hit = hit | (a & b)
    return hit != 0


def fits(cols: Cols, piece: Piece, x, y, rows: int) -> jax.Array:
    """Whether the piece at (x, y) is inside the grid and overlaps no locked cell."""
    width = len(cols)
    return piece.in_bounds(x, y, width, rows) & ~overlaps(cols, piece.cols(x, y, width))


def window(cols: Cols, x, lo: int, hi: int, rows: int) -> Cols:
    """Board columns x+lo .. x+hi-1 with the walls and the ceiling (rows >= `rows`) filled.

    Collision tests of a piece near column x then read these few columns instead of building
    the piece across the whole width: side and top bounds come for free.
    """
    ceiling = U32(ALL ^ row_mask(rows))
    out = []
    for k in range(lo, hi):
        col = U32(ALL)  # Outside the board: a wall.
        for c, board_col in enumerate(cols):
            col = jnp.where(x + k == c, board_col | ceiling, col)
        out.append(col)
    return out


def fits_near(win: Cols, lo: int, piece: Piece, dx_offset, y) -> jax.Array:
    """`fits` for the piece with its box at column x + dx_offset (|dx_offset| <= 2, x the
    window's anchor, `lo` its first offset) and row y, reading only the window."""
    hit = jnp.bool_(False)
    for dx in range(4):
        col = U32(0)
        for o in range(-2, 3):
            k = o + dx - lo
            if 0 <= k < len(win):
                col = jnp.where(dx_offset == o, win[k], col)
        hit = hit | ((col & shift_up(piece.bits[dx], y)) != 0)
    return (y + piece.min_dy >= 0) & ~hit


def drop_distance(cols: Cols, piece_cols: Cols) -> jax.Array:
    """Rows the piece (given by its cells, which must not overlap) can fall straight down."""
    dist = jnp.int32(_BIG)
    for col, p in zip(cols, piece_cols, strict=True):
        bottom = 31 - jax.lax.clz(p & (~p + U32(1))).astype(jnp.int32)  # Lowest piece cell.
        below = col & ((U32(1) << jnp.clip(bottom, 0, 31).astype(U32)) - U32(1))
        dist = jnp.where(p != 0, jnp.minimum(dist, bottom - height(below)), dist)
    return dist


def lock(cols: Cols, piece_cols: Cols) -> Cols:
    return [a | b for a, b in zip(cols, piece_cols, strict=True)]


def full_rows(cols: Cols, rows: int) -> jax.Array:
    full = cols[0]
    for col in cols[1:]:
        full = full & col
    return full & U32(row_mask(rows))


def clear_lines(cols: Cols, rows: int) -> tuple[Cols, jax.Array]:
    """Removes full rows (among the lowest `rows`) and lets the rows above fall.

    Returns (new cols, number of rows cleared). At most 4 rows can be full after one lock.
    """
    full = full_rows(cols, rows)
    return clear_rows(cols, full), popcount(full)


def clear_rows(cols: Cols, full: jax.Array) -> Cols:
    """Removes the rows set in `full` (at most 4) and lets the rows above fall."""
    for _ in range(4):  # Remove the highest full row each time; lower rows keep their index.
        has = full != 0
        k = (31 - jax.lax.clz(full).astype(jnp.int32)).astype(U32)
        below = (U32(1) << k) - U32(1)
        cols = [jnp.where(has, (c & below) | ((c >> U32(1)) & ~below), c) for c in cols]
        full = jnp.where(has, full & ~(U32(1) << k), full)
    return cols


def landing_row(cols: Cols, piece: Piece, x) -> jax.Array:
    """Box row at which the piece, its box at column x (it must fit the width), comes to rest
    when dropped straight down from above: on the highest cell of each of its columns."""
    y = jnp.int32(-_BIG)
    for dx in range(4):
        h = jnp.int32(0)
        for c, col in enumerate(cols):
            h = jnp.where(x + dx == c, height(col), h)
        y = jnp.maximum(y, jnp.where(piece.low[dx] < 99, h - piece.low[dx], -_BIG))
    return y


def placement_landing(cols: Cols, piece) -> list[list[jax.Array]]:
    """Box row y at which each straight-drop placement of `piece` lands.

    Returns y[rotation][column] (4 x width int32 scalars) with column the leftmost occupied
    column of the piece, clamped so the piece fits (as the placement action does). The piece
    falls from above the board, so it rests on the highest cell of each of its columns (no
    sliding under overhangs).
    """
    width = len(cols)
    big = jnp.int32(-_BIG)
    h_pad = [big] * 3 + [height(c) for c in cols] + [big] * 3  # Index i is column i - 3.
    table = []
    for r in range(4):
        p = Piece(piece, r)
        low, min_dx, span = p.low, p.min_dx, p.max_dx - p.min_dx
        by_box = []  # Landing row for the box at column x = i - 3.
        for i in range(width + 3):
            y = big
            for dx in range(4):
                y = jnp.maximum(y, jnp.where(low[dx] < 99, h_pad[i + dx] - low[dx], big))
            by_box.append(y)
        # Leftmost occupied column c has its box at x = c - min_dx (index c + 3 - min_dx).
        ys = []
        for c in range(width):
            y = by_box[c + 3]
            for m in (1, 2):
                y = jnp.where(min_dx == m, by_box[c + 3 - m], y)
            ys.append(y)
        # Columns past the last one that fits take the last one's value.
        last = width - 1 - span
        y_last = ys[width - 1]
        for c in range(width - 2, -1, -1):
            y_last = jnp.where(last == c, ys[c], y_last)
        table.append([jnp.where(c > last, y_last, ys[c]) for c in range(width)])
    return table


# ----- Features of a board, for heuristic controllers and reward shaping. -----


def heights(cols: Cols) -> list[jax.Array]:
    return [height(c) for c in cols]


def below_top(col: jax.Array) -> jax.Array:
    """Bits below the column's highest filled cell."""
    h = height(col)
    return jnp.where(h >= 32, U32(ALL), (U32(1) << h.astype(U32)) - U32(1))


def holes(cols: Cols) -> jax.Array:
    """Empty cells with a filled cell somewhere above them in the same column."""
    return sum(popcount(~c & below_top(c)) for c in cols)


def bumpiness(h: list[jax.Array]) -> jax.Array:
    return sum(jnp.abs(a - b) for a, b in zip(h[:-1], h[1:], strict=True))


def row_transitions(cols: Cols, rows: int) -> jax.Array:
    """Filled<->empty changes along each row; side walls are filled and all rows count."""
    mask = U32(row_mask(rows))
    walled = [U32(ALL)] + list(cols) + [U32(ALL)]
    return sum(popcount((a ^ b) & mask) for a, b in zip(walled[:-1], walled[1:], strict=True))


def column_transitions(cols: Cols, rows: int) -> jax.Array:
    """Changes along each column from the floor (filled) up to above the board (empty)."""
    mask = U32(row_mask(rows + 1) if rows < 31 else ALL)
    return sum(popcount((c ^ ((c << U32(1)) | U32(1))) & mask) for c in cols)


def well_sums(cols: Cols, rows: int) -> jax.Array:
    """For each well cell (empty, both neighbours filled, walls filled): 1 + the number of
    consecutive empty cells directly below it."""
    walled = [U32(ALL)] + list(cols) + [U32(ALL)]
    total = jnp.int32(0)
    for c in range(len(cols)):
        empty = ~cols[c] & U32(row_mask(rows))
        well = empty & walled[c] & walled[c + 2]
        total = total + popcount(well)
        run = well
        for d in range(1, rows):  # Well cells whose d cells below are all empty.
            run = run & (empty << U32(d))
            total = total + popcount(run)
    return total


def hole_depth(cols: Cols, rows: int) -> jax.Array:
    """Sum over holes of the filled cells directly above each (BCTS).

    Every filled cell outside the run that stands on the floor belongs to exactly one unbroken
    run sitting on a hole, so the sum is the filled cells left after clearing that run:
    c & (c + 1) clears a column's lowest run of ones.
    """
    del rows  # Locked cells only exist inside the grid.
    return sum(popcount(c & (c + U32(1))) for c in cols)


def rows_with_holes(cols: Cols, rows: int) -> jax.Array:
    any_hole = U32(0)
    for c in cols:
        any_hole = any_hole | (~c & below_top(c))
    return popcount(any_hole & U32(row_mask(rows)))
