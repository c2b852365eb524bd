"""Hand-built situations on the default 20x10 board, with the expected outcome worked out by
hand from the rules (shared/TETRIS_FACTS.md) rather than by running the env."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.tetris import harness as h
from tests.tetris import reference as ref_lib
from tests.tetris.harness import CCW, CW, HARD_DROP, HOLD, LEFT, NOOP, RIGHT, I, J, L, O, S, T, Z
from tetris_jax import board as bb
from tetris_jax import pieces

KEY = jax.random.key(0)
ROWS = h.DIRECT.height + 2  # Direct mode has 2 hidden rows above the 20 visible ones.


def start(cfg: h.Config, board=None, key=KEY):
    """reset(key, board) (always with a board, so that one compiled reset serves all)."""
    reset, _ = h.single(cfg)
    if board is None:
        board = np.zeros((cfg.height, cfg.width), bool)
    return reset(key, jnp.asarray(board))


def start_with_piece(cfg: h.Config, board, piece: int):
    """A reset whose first piece is `piece` (searching over keys)."""
    for i in range(1000):
        state, ts = start(cfg, board, key=jax.random.key(i))
        if int(ts.observation.piece) == piece:
            return state, ts
    raise AssertionError(f"no key starts with piece {piece}")


def step(cfg: h.Config, state, action: int):
    _, step_fn = h.single(cfg)
    return step_fn(state, jnp.int32(action))


def grid_from(cells, rows: int = ROWS, width: int = 10) -> np.ndarray:
    grid = np.zeros((rows, width), bool)
    for r, c in cells:
        grid[r, c] = True
    return grid


def cells_of(plane) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in np.argwhere(np.asarray(plane))}


def with_grid(state, grid: np.ndarray):
    """The state with its whole grid (hidden rows included) replaced."""
    return state.replace(cols=bb.to_cols(jnp.asarray(grid)))


# ----- Line clears. -----


def test_i_piece_fills_a_four_deep_well_for_a_tetris():
    board = h.board_with(
        h.PLACEMENT,
        """
        X.........
        XXXXXXX.XX
        XXXXXXX.XX
        XXXXXXX.XX
        XXXXXXX.XX
    """,
    )
    state, _ = start(h.PLACEMENT, board)
    state = state.replace(piece=jnp.int32(I))
    state, ts = step(h.PLACEMENT, state, 1 * 10 + 7)  # Rotation R, leftmost column 7.
    assert float(ts.reward) == 4.0
    assert int(ts.metrics["lines_cleared"]) == 4 and int(ts.metrics["total_lines"]) == 4
    assert int(ts.metrics["score"]) == 800  # A Tetris at level 1.
    assert int(ts.metrics["pieces_placed"]) == 1
    assert not ts.is_last and not ts.is_terminal
    expected = np.zeros((20, 10), bool)
    expected[19, 0] = True  # The row above the well fell by four.
    np.testing.assert_array_equal(ts.observation.board, expected)
    np.testing.assert_array_equal(state.grid, ts.observation.board)
    np.testing.assert_array_equal(state.board, expected)


def test_direct_mode_tetris_with_moves_and_hard_drop():
    board = h.board_with(h.DIRECT, "X.........\n" + "XXXXXXX.XX\n" * 4)
    state, _ = start(h.DIRECT, board)
    state = h.place(state, I, 0, top=0, left=3)  # The I's spawn: row 1, columns 3-6.
    for action in (CW, RIGHT, RIGHT):  # R puts the I in column 5; gravity: 1 row a step.
        state, ts = step(h.DIRECT, state, action)
    assert cells_of(ts.observation.active) == {(r, 7) for r in range(3, 7)}
    state, ts = step(h.DIRECT, state, HARD_DROP)  # Falls 15 rows to the floor.
    assert int(ts.metrics["lines_cleared"]) == 4 and float(ts.reward) == 4.0
    assert int(ts.metrics["score"]) == 800 + 2 * 15
    assert cells_of(ts.observation.board) == {(ROWS - 1, 0)}
    assert int(ts.metrics["pieces_placed"]) == 1 and not ts.is_last


# ----- SRS rotation and wall kicks. -----

JLSTZ = (J, L, S, T, Z)
ROWS_OF_TABLE = [(f, turn) for f in range(4) for turn in (+1, -1)]  # (from state, direction)


def test_kick_tables_match_the_facts():
    """pieces.KICKS, (x, y) with y up, against the tables typed in from TETRIS_FACTS.md."""
    for piece in range(7):
        for f, turn in ROWS_OF_TABLE:
            direction = 0 if turn == 1 else 1
            key = f"{'0R2L'[f]}->{'0R2L'[(f + turn) % 4]}"
            if piece == O:
                expected = [(0, 0)] * 5
            else:
                expected = (ref_lib.KICKS_I if piece == I else ref_lib.KICKS_JLSTZ)[key]
            got = [tuple(int(v) for v in xy) for xy in pieces.KICKS[piece, f, direction]]
            assert got == list(expected), (ref_lib.NAMES[piece], key)


def test_rotation_states_match_the_srs_pictures():
    """pieces.CELLS ((dx, dy) in the box, y up) against the SRS pictures in the reference."""
    for piece, rotation in itertools.product(range(7), range(4)):
        n = ref_lib.box_size(piece)
        got = {(n - 1 - int(dy), int(dx)) for dx, dy in pieces.CELLS[piece, rotation]}
        assert got == set(ref_lib.cells(piece, rotation)), (ref_lib.NAMES[piece], rotation)


TOP, LEFT_COL = 8, 3  # Box corner for kick scenarios: every kick stays inside the grid.


def kick_situation(piece: int, start: int, turn: int, k: int):
    """A grid where kick test k (0-based) is the first that fits: one cell of each earlier
    test's target is filled (never a cell of the piece now or of test k's target). Returns
    (filled cells, test k's cells) or None if some earlier target lies inside those."""
    offsets = ref_lib.kicks(piece, start, turn)
    now = {(TOP + r, LEFT_COL + c) for r, c in ref_lib.cells(piece, start)}
    target = lambda j: {
        (TOP + r + offsets[j][0], LEFT_COL + c + offsets[j][1])
        for r, c in ref_lib.cells(piece, start + turn)
    }
    goal, filled = target(k), set()
    for j in range(k):
        spare = sorted(target(j) - now - goal)
        if not spare:
            return None
        filled.add(spare[0])
    return filled, goal


@pytest.mark.parametrize("k", range(5))
@pytest.mark.parametrize("start_state,turn", ROWS_OF_TABLE)
@pytest.mark.parametrize("kind", ["JLSTZ", "I"])
def test_each_kick_row_and_test(kind, start_state, turn, k):
    """For each row of the SRS tables and each of its 5 tests: a situation where that test is
    the first that fits; the piece must end up there (then gravity moves it down one row, or
    it locks where it is if it cannot fall)."""
    tried = 0
    for piece in JLSTZ if kind == "JLSTZ" else (I,):
        situation = kick_situation(piece, start_state, turn, k)
        if situation is None:
            continue
        tried += 1
        filled, goal = situation
        state, _ = start(h.DIRECT, grid_from(filled)[2:])
        state = h.place(state, piece, start_state, TOP, LEFT_COL)
        state, ts = step(h.DIRECT, state, CW if turn == 1 else CCW)
        where = (ref_lib.NAMES[piece], "0R2L"[start_state], turn, k)
        fallen = {(r + 1, c) for r, c in goal}
        if not fallen & filled:  # The kicked piece can fall: it is still active.
            assert cells_of(ts.observation.active) == fallen, where
            assert int(ts.observation.rotation) == (start_state + turn) % 4, where
            assert cells_of(ts.observation.board) == filled, where
        else:
            assert cells_of(ts.observation.board) == filled | goal, where
            assert int(ts.metrics["pieces_placed"]) == 1, where
    assert tried >= 1, "no piece of this class has such a situation"


def test_t_spin_double_uses_the_third_kick():
    """T in state L beside a T-slot under an overhang; rotating ccw (L->2) fails in place
    and one column left, and fits with test 3 (-1, -1): left one, down one, into the slot."""
    board = h.board_with(
        h.DIRECT,
        """
        ..........
        .X..X.....
        X...XXXXXX
        XX.XXXXXXX
    """,
    )
    state, _ = start(h.DIRECT, board)
    state = h.place(state, T, 3, top=2 + 16, left=2)  # Cells (16,3) (17,2) (17,3) (18,3).
    state, ts = step(h.DIRECT, state, CCW)
    assert int(ts.metrics["lines_cleared"]) == 2 and float(ts.reward) == 2.0
    expected = np.zeros((ROWS, 10), bool)
    expected[ROWS - 1] = h.parse(".X..X.....")[0]  # The overhang row fell by two.
    np.testing.assert_array_equal(ts.observation.board, expected)


@pytest.mark.parametrize(
    "rotation,left,action,cols",
    [
        (1, 7, CCW, range(6, 10)),  # R->0 at the right wall: tests 1 and 2 leave the grid,
        # test 3 (-1, 0) fits.
        (3, -1, CW, range(0, 4)),  # L->0 at the left wall: test 2 (+1, 0) fits.
    ],
)
def test_i_kicks_off_the_walls(rotation, left, action, cols):
    state, _ = start(h.DIRECT)
    state = h.place(state, I, rotation, top=8, left=left)
    state, ts = step(h.DIRECT, state, action)
    assert int(ts.observation.rotation) == 0
    # Horizontal in the box's row 1 (row 9), then one row down by gravity.
    assert cells_of(ts.observation.active) == {(10, c) for c in cols}


def test_o_never_moves_when_rotating():
    state, _ = start(h.DIRECT)
    state = h.place(state, O, 0, top=8, left=4)
    for turns, action in enumerate((CW, CW, CCW), start=1):
        state, ts = step(h.DIRECT, state, action)
        assert cells_of(ts.observation.active) == {
            (8 + turns + r, 4 + c) for r in (0, 1) for c in (0, 1)
        }


def test_rotation_with_no_fitting_test_keeps_the_piece():
    now = {(TOP + r, LEFT_COL + c) for r, c in ref_lib.cells(T, 0)}
    filled = {(r, c) for r in range(2, ROWS) for c in range(1, 10)} - now
    state, _ = start(h.DIRECT, grid_from(filled)[2:])
    state = h.place(state, T, 0, TOP, LEFT_COL)
    state, ts = step(h.DIRECT, state, CW)  # No test fits; it cannot fall either: it locks.
    assert cells_of(ts.observation.board) == filled | now
    assert int(ts.metrics["pieces_placed"]) == 1


# ----- Spawning and game over. -----

SPAWN_COLS = {
    I: range(3, 7),
    O: range(4, 6),
    T: range(3, 6),
    S: range(3, 6),
    Z: range(3, 6),
    J: range(3, 6),
    L: range(3, 6),
}


@pytest.mark.parametrize("cfg", [h.PLACEMENT, h.DIRECT], ids=["placement", "direct"])
def test_spawn_columns_and_rows(cfg):
    """Pieces spawn flat side down in their SRS state 0: I in columns 3-6, O in 4-5, the
    others in 3-5; direct mode: lowest cells in the hidden row just above the visible rows;
    placement mode (no hidden rows): highest cells in the top row."""
    seen = set()
    for i in range(200):
        _, ts = start(cfg, key=jax.random.key(i))
        piece = int(ts.observation.piece)
        cells = cells_of(ts.observation.active)
        assert {c for _, c in cells} == set(SPAWN_COLS[piece]), ref_lib.NAMES[piece]
        rows = sorted({r for r, _ in cells})
        assert rows[-1 if cfg.action_mode == "direct" else 0] == (1 if cfg is h.DIRECT else 0)
        # Flat side down: the widest row of the spawn state is its lowest (S and Z: equal).
        width = lambda r: sum(1 for rr, _ in cells if rr == r)
        assert width(rows[-1]) >= width(rows[0])
        seen.add(piece)
        if len(seen) == 7:
            break
    assert len(seen) == 7


def test_block_out_when_the_next_piece_overlaps_the_stack():
    # Columns 3-6 stacked up to the second visible row; a T hard-dropped onto them locks with
    # its top cell in the hidden row where every piece spawns.
    board = np.zeros((20, 10), bool)
    board[1:, 3:7] = True
    state, _ = start(h.DIRECT, board)
    state = h.place(state, T, 0, top=0, left=3)
    state, ts = step(h.DIRECT, state, HARD_DROP)
    assert bool(ts.is_terminal) and bool(ts.is_last)
    assert int(ts.metrics["pieces_placed"]) == 1
    assert {(1, 4), (2, 3), (2, 4), (2, 5)} <= cells_of(ts.observation.board)
    assert cells_of(ts.observation.active) & cells_of(ts.observation.board)  # It overlaps.
    # A finished episode stays finished.
    state2, ts2 = step(h.DIRECT, state, LEFT)
    assert bool(ts2.is_last) and float(ts2.reward) == 0.0
    np.testing.assert_array_equal(ts2.observation.board, ts.observation.board)


def test_lock_out_when_a_piece_locks_wholly_above_the_visible_rows():
    board = np.zeros((20, 10), bool)
    board[:, 0:2] = True  # Columns 0-1 full height; the spawn area (columns 3-6) is free.
    state, _ = start(h.DIRECT, board)
    state = h.place(state, O, 0, top=0, left=0)  # In the hidden rows, on top of the stack.
    state, ts = step(h.DIRECT, state, NOOP)  # It cannot fall: it locks.
    assert bool(ts.is_terminal) and bool(ts.is_last)
    assert {(0, 0), (0, 1), (1, 0), (1, 1)} <= cells_of(ts.observation.board)
    assert not cells_of(ts.observation.active) & cells_of(ts.observation.board)  # No block out.


def test_lock_partly_above_the_visible_rows_is_not_game_over():
    board = np.zeros((20, 10), bool)
    board[1:, 0:2] = True
    state, _ = start(h.DIRECT, board)
    state = h.place(state, O, 0, top=0, left=0)
    state, ts = step(h.DIRECT, state, NOOP)  # Falls one row (into the top visible row).
    assert int(ts.metrics["pieces_placed"]) == 0
    state, ts = step(h.DIRECT, state, NOOP)  # Locks, half visible.
    assert int(ts.metrics["pieces_placed"]) == 1
    assert not ts.is_last and not ts.is_terminal
    assert {(1, 0), (1, 1), (2, 0), (2, 1)} <= cells_of(ts.observation.board)


@pytest.mark.parametrize("held,ends", [(I, True), (T, False)])
def test_block_out_when_the_held_piece_does_not_fit(held, ends):
    """A locked cell in the hidden row at column 6 (left hanging there by an S, say): the I
    (columns 3-6) cannot spawn, a T (3-5) can. Swapping in a piece that cannot spawn ends the
    game with it shown at its spawn (gravity does not move it)."""
    grid = np.zeros((ROWS, 10), bool)
    grid[1, 6] = True
    state, _ = start(h.DIRECT)
    state = with_grid(state, grid)
    state = h.place(state, O, 0, top=0, left=4).replace(hold=jnp.int32(held))
    state, ts = step(h.DIRECT, state, HOLD)
    assert bool(ts.is_terminal) == ends and bool(ts.is_last) == ends
    assert int(ts.observation.piece) == held and int(ts.observation.hold) == O
    np.testing.assert_array_equal(ts.observation.board, grid)
    top, left = ref_lib.Reference(action_mode="direct").spawn(held)
    spawn = {(top + r, left + c) for r, c in ref_lib.cells(held, 0)}
    fallen = {(r + 1, c) for r, c in spawn}
    assert cells_of(ts.observation.active) == (spawn if ends else fallen)


def test_top_out_in_placement_mode():
    """Every column is full to the top (holes hidden under the surface so that no row is
    full): every placement ends the game and leaves the board as it was."""
    board = np.ones((20, 10), bool)
    board[0, 0] = False  # Column 0's surface is row 1: still too high for any piece.
    for r in range(1, 20):
        board[r, 1 + r % 9] = False  # Covered holes: no row is full.
    assert not board.all(1).any()
    state, ts = start(h.PLACEMENT, board)
    mask = np.asarray(ts.observation.action_mask)
    assert mask.any()  # Nothing survives, so the mask falls back to all distinct placements.
    for action in (0, 17, 39):
        _, ts2 = step(h.PLACEMENT, state, action)
        assert bool(ts2.is_terminal) and bool(ts2.is_last) and float(ts2.reward) == 0.0
        assert int(ts2.metrics["pieces_placed"]) == 0
        np.testing.assert_array_equal(ts2.observation.board, board)


def test_placement_mask_drops_only_topping_out_placements():
    """A tall stack in columns 0-4: placements touching it top out and are masked."""
    board = np.zeros((20, 10), bool)
    board[2:, 0:5] = True  # Height 18: only 2 free rows above columns 0-4.
    for piece in range(7):
        state, ts = start_with_piece(h.PLACEMENT, board, piece)
        ref = h.reference_of(h.PLACEMENT)
        ref.reset(piece, [0] * 5, board)
        mask = np.asarray(ts.observation.action_mask)
        np.testing.assert_array_equal(mask, ref.action_mask(), err_msg=ref_lib.NAMES[piece])
        for action in np.flatnonzero(ref.action_mask())[:3]:
            cells = ref.drop_position(piece, action // 10, action % 10)
            _, ts2 = step(h.PLACEMENT, state, int(action))
            assert not ts2.is_terminal
            assert set(map(tuple, cells)) <= cells_of(ts2.observation.board)
        # A vertical I beside the stack fits; on top of the stack it does not.
        if piece == I:
            assert mask[10 + 5] and not mask[10 + 4]


# ----- Hold. -----


def test_hold_swaps_once_per_piece_and_takes_from_the_queue_when_empty():
    state, ts = start(h.DIRECT)
    first, queue = int(ts.observation.piece), [int(p) for p in ts.observation.queue]
    assert int(ts.observation.hold) == 7 and bool(ts.observation.can_hold)
    state, ts = step(h.DIRECT, state, HOLD)  # Empty hold: the queue's head comes in.
    assert int(ts.observation.hold) == first
    assert int(ts.observation.piece) == queue[0]
    assert [int(p) for p in ts.observation.queue[:-1]] == queue[1:]
    assert not ts.observation.can_hold and not ts.observation.action_mask[HOLD]
    assert int(ts.observation.rotation) == 0
    held_state = ts
    state, ts = step(h.DIRECT, state, HOLD)  # Only once per piece: nothing happens.
    assert int(ts.observation.hold) == first and int(ts.observation.piece) == queue[0]
    np.testing.assert_array_equal(ts.observation.queue, held_state.observation.queue)
    queue = [int(p) for p in ts.observation.queue]
    state, ts = step(h.DIRECT, state, HARD_DROP)  # A lock allows hold again.
    assert bool(ts.observation.can_hold) and int(ts.observation.piece) == queue[0]
    current = int(ts.observation.piece)
    queue = [int(p) for p in ts.observation.queue]
    state, ts = step(h.DIRECT, state, HOLD)  # Swap with the held piece; the queue stays.
    assert int(ts.observation.piece) == first and int(ts.observation.hold) == current
    assert [int(p) for p in ts.observation.queue] == queue


def test_no_hold_in_placement_mode():
    state, ts = start(h.PLACEMENT)
    for action in (0, 5, 13):
        assert not ts.observation.can_hold and int(ts.observation.hold) == 7
        state, ts = step(h.PLACEMENT, state, action)


# ----- Placement actions. -----


def test_placement_columns_past_the_last_fitting_one_act_like_it():
    rng = np.random.default_rng(1)
    board = np.zeros((20, 10), bool)
    board[12:] = rng.random((8, 10)) < 0.6
    board[12:, 3] = False  # No full rows.
    state, _ = start(h.PLACEMENT, board)
    ref = h.reference_of(h.PLACEMENT)
    for piece in range(7):
        state = state.replace(piece=jnp.int32(piece))
        for rotation in range(4):
            span = max(c for _, c in ref_lib.shape(piece, rotation)) + 1
            boards = []
            for column in range(10):
                _, ts = step(h.PLACEMENT, state, rotation * 10 + column)
                boards.append(np.asarray(ts.observation.board))
                # Column = leftmost occupied column, clamped: as the reference drops it.
                ref.reset(piece, [0] * 5, board)
                expected = board.copy()
                for r, c in ref.drop_position(piece, rotation, column):
                    expected[r, c] = True
                expected, _ = ref_lib.clear_full_rows(expected)
                np.testing.assert_array_equal(boards[-1], expected)
            for column in range(10 - span + 1, 10):
                np.testing.assert_array_equal(boards[column], boards[10 - span])


@pytest.mark.parametrize(
    "cfg,wild,tame",
    [
        (h.PLACEMENT, -1, 0),
        (h.PLACEMENT, -(2**31), 0),
        (h.PLACEMENT, 40, 39),
        (h.PLACEMENT, 2**31 - 1, 39),
        (h.DIRECT, -5, NOOP),
        (h.DIRECT, 8, HOLD),
        (h.DIRECT, 2**31 - 1, HOLD),
    ],
)
def test_out_of_range_actions_are_clipped(cfg, wild, tame):
    state, _ = start(cfg)
    a = step(cfg, state, wild)
    b = step(cfg, state, tame)
    jax.tree.map(np.testing.assert_array_equal, a, b)
