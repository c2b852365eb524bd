"""The board world model's networks: the column mixer, row attention, dynamics and critic.

`dreamer_jax.board.BoardAgent` builds them; they map boards (..., H, W) and the action drawn in
board coordinates to the next board's cell logits, the reward and the continue, and boards to
values (docs/DESIGN.md).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from dreamer_jax import nets, outs

sg = jax.lax.stop_gradient


class ColumnMixer(nn.Module):
    """Per-column tokens of a (rows, W) grid, mixed across columns (an MLP-mixer over columns).

    Each column's cells become one token; `layers` blocks mix the W tokens (an MLP over the
    token axis, shared by channels) and the channels (an MLP per token). Returns (..., W, dim).
    """

    dim: int
    layers: int
    extra: int = 0  # Width of a per-grid vector `ctx` added to every token.

    @nn.compact
    def __call__(self, cells: jax.Array, ctx: jax.Array | None = None) -> jax.Array:
        W = cells.shape[-1]
        cols = jnp.swapaxes(cells.astype(jnp.float32), -1, -2)  # (..., W, rows)
        pos = self.param("pos", nn.initializers.normal(0.02), (W, self.dim))
        x = nets.Linear(self.dim, name="cell_in")(cols) + pos
        if ctx is not None:
            x = x + nets.Linear(self.dim, name="ctx_in")(ctx)[..., None, :]
        x = nets.Linear(self.dim, name="token_in")(nn.silu(x))
        for i in range(self.layers):
            y = jnp.swapaxes(nets.RMSNorm(name=f"tnorm{i}")(x), -1, -2)  # (..., dim, W)
            y = nets.Linear(W, name=f"tout{i}")(nn.silu(nets.Linear(2 * W, name=f"tin{i}")(y)))
            x = x + jnp.swapaxes(y, -1, -2)
            y = nets.RMSNorm(name=f"cnorm{i}")(x)
            y = nets.Linear(self.dim, name=f"cout{i}")(
                nn.silu(nets.Linear(2 * self.dim, name=f"cin{i}")(y))
            )
            x = x + y
        return nets.RMSNorm(name="out_norm")(x)


class RowAttention(nn.Module):
    """Self-attention across the rows of a grid: (..., R, D) row tokens -> (..., R, D).

    `layers` pre-norm blocks of multi-head attention (rows attend to every row; learned row
    positions) and an MLP per token. Rows are what a line clear acts on: whether a row is full
    is in its own token, and where a row's content moves (down by the number of full rows
    below it) is a data-dependent choice of source row, which attention makes directly.
    """

    layers: int
    heads: int = 4

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        R, D = x.shape[-2:]
        x = x + self.param("pos", nn.initializers.normal(0.02), (R, D))
        for i in range(self.layers):
            y = nets.RMSNorm(name=f"anorm{i}")(x)
            y = nn.MultiHeadDotProductAttention(
                num_heads=self.heads, qkv_features=D, out_features=D, name=f"attn{i}"
            )(y, y)
            x = x + y
            y = nets.RMSNorm(name=f"mnorm{i}")(x)
            x = x + nets.Linear(D, name=f"mout{i}")(nn.silu(nets.Linear(2 * D, name=f"min{i}")(y)))
        return nets.RMSNorm(name="out_norm")(x)


class Dynamics(nn.Module):
    """(board (..., H, W) bool, plane (..., P, W) bool) -> (board logits (..., H, W),
    reward twohot logits (..., bins), continue logit (...))."""

    arch: str  # "mixer" or "mlp".
    dim: int
    layers: int
    bins: int
    # Mixer only: `row_layers` attention blocks over row tokens of width `row_dim`, built from
    # the column decoder's per-cell output, whose logits add to the column decoder's (0: none).
    row_layers: int = 0
    row_dim: int = 64
    row_cell: int = 4  # Features per cell passed from the column decoder to the row tokens.
    # Mixer only: per-row summaries of width `row_pool` (per-cell features pooled over the
    # columns: mean, max, min) given to a second column decoder, whose logits add to the
    # first's (0: none). Whether a row is full is a min over its columns, and where a column's
    # cells move in a clear depends on which rows below are full: one cheap pass across rows.
    row_pool: int = 0

    @nn.compact
    def __call__(self, board: jax.Array, plane: jax.Array):
        H, W = board.shape[-2:]
        b = board.astype(jnp.float32)
        cells = jnp.concatenate([plane.astype(jnp.float32), b], -2)
        if self.arch == "mixer":
            x = ColumnMixer(self.dim, self.layers, name="mixer")(cells)  # (..., W, dim)
            cols = jnp.swapaxes(cells, -1, -2)
            h = nn.silu(nets.Linear(2 * self.dim, name="dec_in")(jnp.concatenate([x, cols], -1)))
            delta = jnp.swapaxes(nets.Linear(H, name="dec_out")(h), -1, -2)  # (..., H, W)
            if self.row_layers:
                # Row tokens: each board row's cells (state, and features the column decoder
                # gives each), mixed across rows by attention, decoded to a logit per cell.
                C = self.row_cell
                f = nets.Linear(H * C, name="dec_cells")(h)  # (..., W, H * C)
                f = jnp.swapaxes(f.reshape((*f.shape[:-1], H, C)), -2, -3)  # (..., H, W, C)
                rows = jnp.concatenate([f.reshape((*f.shape[:-2], W * C)), b, delta], -1)
                r = nets.Linear(self.row_dim, name="row_in")(rows)
                r = RowAttention(self.row_layers, name="rows")(r)
                delta = delta + nets.Linear(W, 0.0, name="row_out")(r)
            if self.row_pool:
                C = self.row_cell
                f = nets.Linear(H * C, name="pool_cells")(h)  # (..., W, H * C)
                f = f.reshape((*f.shape[:-1], H, C))  # (..., W, H, C)
                d = jnp.swapaxes(delta, -1, -2)  # (..., W, H): the first decoder's logits.
                g = jnp.concatenate([f, d[..., None], cols[..., -H:, None]], -1)
                s = jnp.concatenate([g.mean(-3), g.max(-3), g.min(-3)], -1)  # (..., H, 3(C+2))
                s = nn.silu(nets.Linear(self.row_pool, name="pool_rows")(s))
                # Every row's summary, the same for each column: multiplied once per board.
                s = s.reshape((*s.shape[:-2], 1, H * self.row_pool))
                cell = jnp.concatenate([h, f.reshape((*f.shape[:-2], H * C)), d], -1)
                z = nn.silu(nets.SplitLinear(2 * self.dim, name="pool_dec_in")(cell, s))
                delta = delta + jnp.swapaxes(nets.Linear(H, 0.0, name="pool_dec_out")(z), -1, -2)
            pooled = x.reshape((*x.shape[:-2], -1))  # Every column: lines need all ten.
        else:
            flat = cells.reshape((*cells.shape[:-2], -1))
            x = nets.MLP(self.layers, self.dim, name="mlp")(flat)
            delta = nets.Linear(H * W, name="dec_out")(x).reshape((*x.shape[:-1], H, W))
            pooled = x
        # Residual in logit space: "the cell stays as it is" is the starting guess.
        logits = delta + 4.0 * (2.0 * b - 1.0)
        # The events also see how many cells the board has before and (predicted, no gradient
        # back into the board) after, per column: cleared lines show as cells gone.
        counts = jnp.stack([b.sum((-1, -2)), sg(jax.nn.sigmoid(logits)).sum((-1, -2))], -1) / W
        h = nets.MLP(1, self.dim, name="event")(jnp.concatenate([pooled, counts], -1))
        # Plus a linear readout of the counts alone: twohot logits linear in them can peak at
        # (cells before - cells after) / W + const, so the lines of a clear follow from the
        # predicted board as soon as the board is right.
        reward = nets.Linear(self.bins, 0.0, name="reward")(h) + nets.Linear(
            self.bins, 0.0, name="reward_counts"
        )(counts)
        cont = nets.Linear(1, name="cont")(h)[..., 0]
        return logits, reward, cont


class Critic(nn.Module):
    """V(board, piece[, features of the board]): twohot logits (..., bins)."""

    arch: str
    dim: int
    layers: int
    bins: int
    num_pieces: int

    @nn.compact
    def __call__(
        self, board: jax.Array, piece: jax.Array, feats: jax.Array | None = None
    ) -> jax.Array:
        onehot = jax.nn.one_hot(piece, self.num_pieces, dtype=jnp.float32)
        if self.arch == "mixer":
            x = ColumnMixer(self.dim, self.layers, name="mixer")(board, onehot).mean(-2)
        else:
            flat = board.astype(jnp.float32).reshape((*board.shape[:-2], -1))
            x = nets.MLP(self.layers, self.dim, name="mlp")(jnp.concatenate([flat, onehot], -1))
        if feats is None:
            x = nets.MLP(1, self.dim, name="head")(x)
            return nets.Linear(self.bins, 0.0, name="out")(x)
        # Features of the board (symlog): into the head, and a linear readout of them alone, so
        # a value linear in them (what the classic controllers use) is one layer away.
        f = outs.symlog(feats)
        x = nets.MLP(1, self.dim, name="head")(jnp.concatenate([x, f], -1))
        return nets.Linear(self.bins, 0.0, name="out")(x) + nets.Linear(
            self.bins, 0.0, name="out_feats"
        )(f)
