"""Where the board world model's one-step errors are: by whether the step cleared lines, by
the stack's height, and by which cells are wrong (the piece's landing cells, or cells that
should not have changed).

    PYTHONPATH=. python docs/results/scripts/board_errors/errors.py --workdir=runs/board_v4 \
        --episodes=16 --max_pieces=2000 --out=docs/results/scripts/board_errors/v4.json

Plays the checkpoint's greedy games (`experiments.lib.world_model.collect`, seed 7: not the
evaluation's 12345), predicts each next board from the real board and action, and splits the
exact-board rate and the wrong cells by kind.
"""

from __future__ import annotations

import argparse
import json

import jax
import numpy as np

from experiments.lib import runs
from experiments.lib import world_model as wm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--max_pieces", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    config, env, agent, params, step = runs.load_checkpoint(a.workdir, None, None)
    traj = wm.collect(
        env, agent, params, jax.random.key(a.seed), episodes=a.episodes, max_pieces=a.max_pieces
    )
    ((pred, rew, con),) = wm.board_open_loop(agent, params, traj, 1)
    board = np.asarray(traj.obs["board"])
    pred = np.asarray(pred)[:, :-1]  # Prediction of step t + 1 from step t.
    real = board[:, 1:]
    start = board[:, :-1]
    valid = np.asarray(traj.valid)[:, 1:] & np.asarray(traj.valid)[:, :-1]
    lines = np.asarray(traj.lines)[:, 1:]
    terminal = np.asarray(traj.terminal)[:, 1:]
    keep = valid & ~terminal  # A game over's board is the reset board: not a transition.
    exact = (pred == real).all((-1, -2))
    wrong = pred != real
    changed = real != start
    filled = start.any(-1)  # (N, T, H) rows with a cell, row 0 at the top.
    height = env.height - np.where(filled.any(-1), filled.argmax(-1), env.height)

    def rate(m):
        n = int(m.sum())
        return {
            "steps": n,
            "board_exact": float(exact[m].mean()) if n else None,
            "cells_wrong_per_step": float(wrong[m].sum((-1, -2)).mean()) if n else None,
        }

    out = {
        "workdir": a.workdir,
        "step": int(step),
        "episodes": a.episodes,
        "seed": a.seed,
        "all": rate(keep),
        "by_lines": {str(k): rate(keep & (lines == k)) for k in range(5)},
        "by_height": {
            f"{lo}-{hi}": rate(keep & (height >= lo) & (height <= hi))
            for lo, hi in ((0, 4), (5, 8), (9, 12), (13, 16), (17, 20))
        },
        # Of the wrong cells: ones that changed in the real step (the piece, the clears) vs
        # ones the model changed that should have stayed.
        "wrong_cells": {
            "should_change": int((wrong & changed)[keep].sum()),
            "should_stay": int((wrong & ~changed)[keep].sum()),
        },
        "lines_exact_one_step": float((np.round(np.asarray(rew)[:, :-1]) == lines)[keep].mean()),
    }
    text = json.dumps(out, indent=1)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
