"""Supervised probe: how fast does a board-shaped transition model become exact?

    PYTHONPATH=. python docs/results/scripts/board_probe/probe.py --model=mixer --minutes=6

Trains on 150k real transitions (Dellacherie with 10/30/100% random placements) and prints
exact next boards, lines and top-out accuracy on held-out games every 30 s (session 7).

    PYTHONPATH=. python docs/results/scripts/board_probe/probe.py --model=dyn --row_layers=2

`--model=dyn` trains `dreamer_jax.board_nets.Dynamics` itself (what the board agent trains;
`--row_layers` adds its row attention) and also reports exact boards on steps that clear
lines (`exact_clear`) and two or more (`exact_multi`) (session 9: dyn_mixer.json,
dyn_rows2.json).
"""

import argparse
import json
import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402


class Mixer(nn.Module):
    """Column tokens (cells of one column + the piece strip above it), mixed across columns."""

    dim: int = 64
    layers: int = 3
    tok_hidden: int = 32

    @nn.compact
    def __call__(self, board, plane):
        W = board.shape[-1]
        cells = jnp.concatenate([plane, board], -2).astype(jnp.float32)  # (B, 24, W)
        cols = jnp.swapaxes(cells, -1, -2)  # (B, W, 24)
        pos = self.param("pos", nn.initializers.normal(0.02), (W, self.dim))
        x = nn.Dense(self.dim)(cols) + pos
        x = nn.Dense(self.dim)(nn.silu(x))
        for _ in range(self.layers):
            y = nn.RMSNorm()(x)
            y = jnp.swapaxes(y, -1, -2)  # (B, D, W)
            y = nn.Dense(W)(nn.silu(nn.Dense(self.tok_hidden)(y)))
            x = x + jnp.swapaxes(y, -1, -2)
            y = nn.RMSNorm()(x)
            x = x + nn.Dense(self.dim)(nn.silu(nn.Dense(2 * self.dim)(y)))
        h = nn.silu(nn.Dense(2 * self.dim)(jnp.concatenate([nn.RMSNorm()(x), cols], -1)))
        out = nn.Dense(board.shape[-2])(h)  # (B, W, 20)
        logits = jnp.swapaxes(out, -1, -2) + 4.0 * (2 * board.astype(jnp.float32) - 1)
        pooled = x.mean(-2)
        lines = nn.Dense(5)(nn.silu(nn.Dense(self.dim)(pooled)))
        top = nn.Dense(1)(nn.silu(nn.Dense(self.dim)(pooled)))[..., 0]
        return logits, lines, top


class Flat(nn.Module):
    units: int = 512
    layers: int = 3

    @nn.compact
    def __call__(self, board, plane):
        x = jnp.concatenate(
            [board.reshape(board.shape[0], -1), plane.reshape(plane.shape[0], -1)], -1
        )
        x = x.astype(jnp.float32)
        for _ in range(self.layers):
            x = nn.silu(nn.RMSNorm()(nn.Dense(self.units)(x)))
        logits = nn.Dense(200)(x).reshape(board.shape) + 4.0 * (2 * board.astype(jnp.float32) - 1)
        return logits, nn.Dense(5)(x), nn.Dense(1)(x)[..., 0]


class Dyn(nn.Module):
    """dreamer_jax.board_nets.Dynamics itself (what the board agent trains), built with 5 reward
    bins whose logits serve as the probe's 5-way lines head."""

    dim: int = 64
    layers: int = 3
    row_layers: int = 0
    row_dim: int = 64
    row_pool: int = 0

    @nn.compact
    def __call__(self, board, plane):
        from dreamer_jax.board_nets import Dynamics

        logits, rew, con = Dynamics(
            "mixer", self.dim, self.layers, 5, self.row_layers, self.row_dim, row_pool=self.row_pool
        )(board, plane)
        return logits, rew, con


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mixer")
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--row_layers", type=int, default=0)
    ap.add_argument("--row_dim", type=int, default=64)
    ap.add_argument("--row_pool", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    planes = jnp.asarray(data.piece_planes(10))
    train = [data.make(s, 256, 200, e) for s, e in ((1, 0.1), (2, 0.3), (3, 1.0))]
    train = {k: np.concatenate([t[k] for t in train]) for k in train[0]}
    test = {e: data.make(100 + i, 64, 200, e) for i, e in enumerate((0.0, 0.1, 0.3, 1.0))}
    n = len(train["action"])
    print("train transitions", n, flush=True)
    if a.model == "dyn":
        model = Dyn(a.dim, a.layers, a.row_layers, a.row_dim, a.row_pool)
    else:
        model = Mixer(a.dim, a.layers) if a.model == "mixer" else Flat(layers=a.layers)

    def fwd(params, b):
        plane = planes[b["piece"], b["action"]]
        return model.apply(params, b["board"], plane)

    params = model.init(jax.random.key(0), train["board"][:2], np.zeros((2, 4, 10), bool))
    print("params", sum(x.size for x in jax.tree.leaves(params)), flush=True)
    opt = optax.adam(a.lr)
    ost = opt.init(params)

    def loss_fn(params, b):
        logits, lines, top = fwd(params, b)
        t = b["next_board"].astype(jnp.float32)
        rec = optax.sigmoid_binary_cross_entropy(logits, t).sum((-1, -2))
        lce = optax.softmax_cross_entropy_with_integer_labels(lines, b["lines"])
        tce = optax.sigmoid_binary_cross_entropy(top, b["top_out"].astype(jnp.float32))
        return (rec + lce + tce).mean()

    @jax.jit
    def update(params, ost, b):
        loss, g = jax.value_and_grad(loss_fn)(params, b)
        u, ost = opt.update(g, ost, params)
        return optax.apply_updates(params, u), ost, loss

    @jax.jit
    def metrics(params, b):
        logits, lines, top = fwd(params, b)
        pred = logits > 0
        exact = (pred == b["next_board"]).all((-1, -2))
        return dict(
            exact=exact.mean(),
            cell_err=(pred != b["next_board"]).mean(),
            lines=(lines.argmax(-1) == b["lines"]).mean(),
            top=((top > 0) == b["top_out"]).mean(),
            copy_exact=(b["board"] == b["next_board"]).all((-1, -2)).mean(),
            exact_clear=(exact * (b["lines"] > 0)).sum() / jnp.maximum((b["lines"] > 0).sum(), 1),
            exact_multi=(exact * (b["lines"] > 1)).sum() / jnp.maximum((b["lines"] > 1).sum(), 1),
        )

    rng = np.random.default_rng(0)
    t0 = time.time()
    step, hist, next_eval = 0, [], 0.0
    while True:
        el = time.time() - t0
        if el >= next_eval or el > a.minutes * 60:
            row = {"step": step, "sec": round(el)}
            for e, d in test.items():
                m = jax.device_get(metrics(params, {k: v[:8192] for k, v in d.items()}))
                row[str(e)] = {k: round(float(v), 4) for k, v in m.items()}
            print(json.dumps(row), flush=True)
            hist.append(row)
            next_eval += 30
            if el > a.minutes * 60:
                break
        idx = rng.integers(0, n, a.batch)
        b = {k: v[idx] for k, v in train.items()}
        params, ost, loss = update(params, ost, b)
        step += 1
    if a.out:
        json.dump(hist, open(a.out, "w"))


if __name__ == "__main__":
    main()
