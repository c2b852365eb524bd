"""`board.keep` / `keep_fields`: identities that only change how XLA fuses the step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tetris_jax import board as bb


def _round_trip(values, bits):
    anchor = jnp.int32(0)
    fields = [(jnp.asarray(v), b) for v, b in zip(values, bits, strict=True)]
    return bb.keep_fields(anchor, fields)


def test_keep_fields_round_trips_signed_ints_and_bools_across_words():
    # 8 + 8 + 7 + 1 + 4 + 8 = 36 bits: the last fields spill into a second word.
    values = [-128, 127, -1, True, 6, 0]
    bits = [8, 8, 7, 1, 4, 8]
    out = jax.jit(lambda: _round_trip(values, bits))()
    for v, o in zip(values, out, strict=True):
        assert o.dtype == (jnp.bool_ if isinstance(v, bool) else jnp.int32)
        assert o.item() == v


def test_keep_fields_under_vmap_matches_inputs():
    rng = np.random.default_rng(0)
    xs = rng.integers(-64, 64, size=64).astype(np.int32)
    flags = rng.random(64) < 0.5
    words = rng.integers(0, 2**32, size=64, dtype=np.uint64).astype(np.uint32)

    def f(x, flag, word, steps):
        anchor = (steps < 0).astype(jnp.int32)
        a, b = bb.keep_fields(anchor, [(x, 7), (flag, 1)])
        return a, b, bb.keep(word, anchor)

    a, b, w = jax.jit(jax.vmap(f))(xs, flags, words, jnp.arange(64, dtype=jnp.int32))
    np.testing.assert_array_equal(a, xs)
    np.testing.assert_array_equal(b, flags)
    np.testing.assert_array_equal(w, words)
