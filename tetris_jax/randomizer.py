"""Piece randomizers (7-bag, uniform) and the counter-based hash stream that feeds them.

`step` draws its random words from a hash of (episode seed, counter) instead of `jax.random`:
threefry compiles to loops that cost more than the rest of a step on the CPU, and pieces only
need well-mixed bits. The seed itself comes from `jax.random` in `reset`, so games are
reproducible from the key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tetris_jax import board as bb
from tetris_jax import pieces

FULL_BAG = 0x7F  # Bit p set: piece p is still in the current bag.
RESET_COUNTER = 0x80000000  # Stream positions used by reset and by the next episode's seed;
NEXT_COUNTER = 0xFFFFFFF0  # steps use 2 * step and 2 * step + 1, far below these.


def mix32(x: jax.Array) -> jax.Array:
    """A 32-bit integer hash with good avalanche (Wellons' lowbias32)."""
    x = (x ^ (x >> 16)) * jnp.uint32(0x7FEB352D)
    x = (x ^ (x >> 15)) * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def words(seed: jax.Array, counter: jax.Array, n: int) -> list[jax.Array]:
    """n uniform uint32 words at positions counter .. counter+n-1 of the (2,) seed's stream."""
    base = mix32(seed[..., 0] ^ jnp.uint32(0x9E3779B9))
    return [mix32(mix32(base ^ (counter + jnp.uint32(i))) ^ seed[..., 1]) for i in range(n)]


def draw(bag: jax.Array, word: jax.Array, randomizer: str) -> tuple[jax.Array, jax.Array]:
    """Next piece given one uniform uint32 word: (piece, bag).

    "7bag" deals each piece of a shuffled set of seven once before refilling (the k-th piece
    still in the bag, k uniform); "uniform" draws i.i.d. pieces and leaves the bag alone.
    """
    if randomizer == "uniform":
        return ((word >> 16) * 7 >> 16).astype(jnp.int32), bag
    count = bb.popcount(bag.astype(jnp.uint32))
    k = ((word >> 16) * count.astype(jnp.uint32) >> 16).astype(jnp.int32)  # In [0, count).
    piece, seen = jnp.int32(0), jnp.int32(0)
    for p in range(pieces.NUM_PIECES):
        present = (bag >> p) & 1
        piece = jnp.where((present == 1) & (seen == k), p, piece)
        seen = seen + present
    bag = bag & ~(1 << piece)
    return piece, jnp.where(bag == 0, FULL_BAG, bag)


def next_piece(queue: jax.Array, bag: jax.Array, word: jax.Array, randomizer: str):
    """Pops the queue's head (or draws directly with no queue) and refills its tail:
    (piece, queue, bag)."""
    new, bag = draw(bag, word, randomizer)
    if queue.shape[-1] == 0:
        return new, queue, bag
    return queue[0], jnp.concatenate([queue[1:], new[None]]), bag
