"""Breakout-MinAtar learning curves, dreamer_jax beside danijar/dreamerv3, against env steps:

    python docs/results/scripts/breakout_vs_reference.py docs/results/breakout \
        docs/results/breakout/reference_scores.jsonl docs/results/breakout/curves.png

(the first argument: a folder with our run's metrics.jsonl and evals.jsonl, e.g. the workdir;
the second: the reference logdir's scores.jsonl)

Ours: training episodes' return (metrics.jsonl `ep_return`, the mean of the episodes ended in
each logged window of 1,280 env steps) and the greedy evaluation at each checkpoint
(evals.jsonl). The reference: its training episodes' `episode/score` (scores.jsonl, one row
per episode), averaged over windows of 2,560 env steps.
"""

from __future__ import annotations

import json
import os
import sys

BIN = 2560  # Env steps per averaged window of the reference's episodes.


def rows(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(ours: str, ref: str, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = [
        (r["env_steps"], r["ep_return"]) for r in rows(f"{ours}/metrics.jsonl") if "ep_return" in r
    ]
    evals = [(r["env_steps"], r["eval/return_mean"]) for r in rows(f"{ours}/evals.jsonl")]
    bins: dict[int, list[float]] = {}
    for r in rows(ref):
        if "episode/score" in r:
            bins.setdefault(int(r["step"]) // BIN, []).append(float(r["episode/score"]))
    theirs = [((b + 1) * BIN, sum(v) / len(v)) for b, v in sorted(bins.items())]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(*zip(*mine, strict=True), lw=1, label="dreamer_jax tiny: training episodes")
    ax.plot(*zip(*evals, strict=True), "o-", label="dreamer_jax tiny: greedy evaluation")
    if theirs:
        ax.plot(*zip(*theirs, strict=True), lw=1, label="danijar/dreamerv3 (tiny sizes): training")
    ax.set_xlabel("env steps")
    ax.set_ylabel("return / episode")
    ax.set_title("Breakout-MinAtar (gymnax), 40 minutes each on the shared 2-core CPU")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    print(f"wrote {out}: ours {len(mine)} points, reference {len(theirs)}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
