"""The direct-mode step (one key press per step), on one board; `Tetris.step` calls it.

Phases: move or rotate (SRS kicks), hold, gravity or hard drop, lock, line clears, next
piece. Each phase's results are passed through `board.keep_fields` before the next reads
them: every output of the step depends on the lock decision, and without these XLA's CPU
fusion recomputed the whole chain once per output array (31.9k ops after fusion against
2.4k before it; 5.3k with them, and ~3.5x the steps/s: docs/results/benchmark_env_cpu.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tetris_jax import board as bb
from tetris_jax import pieces
from tetris_jax.types import EMPTY_HOLD

NOOP, LEFT, RIGHT, CW, CCW, SOFT_DROP, HARD_DROP, HOLD = range(8)
_KICKS = pieces.KICKS.reshape(-1, 5, 2)  # [(piece * 4 + rotation) * 2 + ccw, test] -> (dx, dy)


def _move(env, s, action, cols):
    """Shift, soft drop or rotation: up to five (dx, dy) tests, the first that fits wins.

    Returns (x, y, rotation, moved)."""
    is_rot = (action == CW) | (action == CCW)
    rot = jnp.where(
        action == CW,
        (s.rotation + 1) % 4,
        jnp.where(action == CCW, (s.rotation + 3) % 4, s.rotation),
    )
    target = bb.Piece(s.piece, rot)
    kick_idx = (s.piece * 4 + s.rotation) * 2 + (action == CCW).astype(jnp.int32)
    dx = jnp.where(action == LEFT, -1, jnp.where(action == RIGHT, 1, 0))
    dy = jnp.where(action == SOFT_DROP, -1, 0)
    x, y, moved = s.x, s.y, jnp.bool_(False)
    win = bb.window(cols, s.x, -2, 6, env.rows)
    for t in range(5):
        ox = jnp.where(is_rot, bb.lookup(_KICKS[:, t, 0], kick_idx), dx)
        oy = jnp.where(is_rot, bb.lookup(_KICKS[:, t, 1], kick_idx), dy)
        ok = ~moved & bb.fits_near(win, -2, target, ox, s.y + oy)
        if t > 0:
            ok = ok & is_rot
        x, y = jnp.where(ok, s.x + ox, x), jnp.where(ok, s.y + oy, y)
        moved = moved | ok
    return x, y, jnp.where(moved, rot, s.rotation), moved


def step(env, state, action, words):
    """(new state, lines, game_over, points) of one direct-mode step; see `Tetris`."""
    s = state
    anchor = (s.steps < 0).astype(jnp.int32)  # 0, unknown to the compiler (see bb.keep).
    cols = bb.split(s.cols)
    x, y, rot, moved = _move(env, s, action, cols)
    # Hold: swap with the held piece, or stash the current one and take the next.
    do_hold = (action == HOLD) & s.can_hold
    empty_hold = s.hold == EMPTY_HOLD
    from_queue, queue_h, bag_h = env._next_piece(s.queue, s.bag, words[1])
    held_in = jnp.where(empty_hold, from_queue, s.hold)
    hx, hy = env._spawn(held_in)
    piece, rotation, x, y, do_hold, soft, take = bb.keep_fields(
        anchor,
        [
            (jnp.where(do_hold, held_in, s.piece), 4),
            (jnp.where(do_hold, 0, rot), 3),
            (jnp.where(do_hold, hx, x), 8),
            (jnp.where(do_hold, hy, y), 7),
            (do_hold, 1),
            ((action == SOFT_DROP) & moved, 1),
            (do_hold & empty_hold, 1),
        ],
    )
    s = s.replace(
        piece=piece,
        rotation=rotation,
        x=x,
        y=y,
        hold=jnp.where(do_hold, s.piece, s.hold),
        can_hold=s.can_hold & ~do_hold,
        queue=jnp.where(take, queue_h, s.queue),
        bag=jnp.where(take, bag_h, s.bag),
    )
    current = bb.Piece(piece, rotation)
    here = current.cols(x, y, env.width)
    block_out_hold = do_hold & ~(
        current.in_bounds(x, y, env.width, env.rows) & ~bb.overlaps(cols, here)
    )
    # Gravity, or the hard drop's fall; a piece that cannot fall (or hard-dropped) locks.
    fall = bb.drop_distance(cols, here)
    hard = action == HARD_DROP
    lock = (hard | (fall == 0)) & ~block_out_hold
    # A held-in piece that cannot spawn ends the game where it spawned (no gravity).
    drop = jnp.where(block_out_hold, 0, jnp.where(hard, fall, jnp.minimum(fall, 1)))
    drop, lock, block_out_hold = bb.keep_fields(anchor, [(drop, 8), (lock, 1), (block_out_hold, 1)])
    # A hard drop is never a hold, so its fall is `drop`.
    points = soft.astype(jnp.int32) + jnp.where(hard, 2 * drop, 0)
    s = s.replace(y=s.y - drop)
    landed = bb.lock(cols, [bb.shift_up(c, -drop) for c in here])
    lock_out = s.y + current.min_dy >= env.height
    full = bb.keep(bb.full_rows(landed, env.rows), anchor)
    cleared, lines = bb.clear_rows(landed, full), bb.popcount(full)
    nxt, queue, bag = env._next_piece(s.queue, s.bag, words[0])
    nx, ny = env._spawn(nxt)
    # Block out: only the columns some piece spawns in can overlap it.
    lo, hi = int(env._spawn_x.min()), min(int(env._spawn_x.max()) + 4, env.width)
    spawned = bb.Piece(nxt, 0)
    block_out = ~(
        spawned.in_bounds(nx, ny, env.width, env.rows)
        & ~bb.overlaps(cleared[lo:hi], spawned.cols(nx - lo, ny, hi - lo))
    )
    (game_over,) = bb.keep_fields(anchor, [(block_out_hold | (lock & (lock_out | block_out)), 1)])
    after_lock = s.replace(
        cols=bb.stack(cleared),
        piece=nxt,
        rotation=jnp.int32(0),
        x=nx,
        y=ny,
        queue=queue,
        bag=bag,
        can_hold=jnp.bool_(True),
        pieces_placed=s.pieces_placed + 1,
    )
    new = jax.tree.map(lambda u, v: jnp.where(lock, u, v), after_lock, s)
    lines = jnp.where(lock, lines, 0)
    return new, lines, game_over, points
