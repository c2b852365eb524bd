"""Learning curves of training runs: `python -m experiments.curves --workdirs=A,B --out=F.png`.

One figure, two panels: lines per game against env steps and against wall-clock minutes. Each
run draws its training episodes (`ep_lines` in metrics.jsonl: the training rules, so curriculum
boards where enabled, and sampled actions) as a thin line and its checkpoint evaluations
(`eval/lines_mean` in evals.jsonl: greedy policy, empty board, no step limit) as markers.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from experiments.lib import monitor

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defined only when run as a program: `plot` is imported beside other tools' flags."""
    flags.DEFINE_list("workdirs", None, "Training run folders.")
    flags.DEFINE_list("labels", None, "Legend labels (default: the folder names).")
    flags.DEFINE_string("out", "curves.png", "Output PNG.")


def plot(workdirs: list[str], out: str, labels: list[str] | None = None) -> str:
    """Write the two-panel PNG to `out`; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or [os.path.basename(os.path.normpath(w)) for w in workdirs]
    if len(labels) != len(workdirs):
        raise ValueError(f"--labels: got {len(labels)} labels for {len(workdirs)} workdirs")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for i, (workdir, label) in enumerate(zip(workdirs, labels, strict=True)):
        color = f"C{i}"
        rows = monitor.read_jsonl(os.path.join(workdir, monitor.METRICS_JSONL))
        evals = monitor.read_jsonl(os.path.join(workdir, monitor.EVALS_JSONL))
        if not rows:
            raise ValueError(f"{workdir}: no {monitor.METRICS_JSONL}")
        train = [r for r in rows if "ep_lines" in r]
        for ax, key, scale in ((axes[0], "env_steps", 1.0), (axes[1], "wall_s", 1 / 60)):
            ax.plot(
                [r[key] * scale for r in train],
                [r["ep_lines"] for r in train],
                color=color,
                alpha=0.5,
                lw=1,
                label=f"{label}: training episodes",
            )
            if evals:
                ax.plot(
                    [e[key] * scale for e in evals],
                    [e["eval/lines_mean"] for e in evals],
                    "o-",
                    color=color,
                    lw=2,
                    label=f"{label}: greedy eval",
                )
    for ax, xlabel in zip(axes, ("env steps (pieces)", "wall-clock minutes"), strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("lines per game")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.workdirs:
        raise app.UsageError("--workdirs is required")
    try:
        print(plot(FLAGS.workdirs, FLAGS.out, FLAGS.labels))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    define_flags()
    app.run(main)
