"""What a user watches: progress lines, console dashboard, metrics files, TensorBoard, PNG, JSON."""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any

METRICS_JSONL, METRICS_CSV = "metrics.jsonl", "metrics.csv"
DASHBOARD_PNG, SUMMARY_JSON = "dashboard.png", "summary.json"
EVALS_JSONL = "evals.jsonl"  # One line per checkpoint evaluation (greedy games, empty board).


class MetricsLog:
    """Appends rows (one per log interval, keyed by env_steps) to jsonl, csv and TensorBoard.

    On resume from a checkpoint at `resume_step`, rows logged after it (by a run that went on
    past its last checkpoint) are dropped first, so the files have no duplicates and no gaps;
    TensorBoard is told the same with `purge_step`.
    """

    def __init__(self, workdir: str, resume_step: int | None = None):
        self.workdir = workdir
        self.jsonl = os.path.join(workdir, METRICS_JSONL)
        self.rows: list[dict[str, Any]] = []
        if os.path.exists(self.jsonl):
            with open(self.jsonl) as f:
                rows = [json.loads(line) for line in f if line.strip()]
            keep = resume_step if resume_step is not None else -1
            self.rows = [r for r in rows if r["env_steps"] <= keep]
            if len(self.rows) != len(rows):
                self._rewrite()
        from tensorboardX import SummaryWriter

        self.tb = SummaryWriter(logdir=workdir, purge_step=resume_step, flush_secs=30)

    def _rewrite(self) -> None:
        tmp = self.jsonl + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.rows)
        os.replace(tmp, self.jsonl)
        self.write_csv()

    def append(self, row: dict[str, Any]) -> None:
        row = {k: _plain(v) for k, v in row.items()}
        self.rows.append(row)
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")
        step = int(row["env_steps"])
        for k, v in row.items():
            if k != "env_steps" and isinstance(v, (int, float)) and math.isfinite(v):
                self.tb.add_scalar(k, v, global_step=step)

    def write_csv(self) -> None:
        """metrics.csv from all rows (the union of their columns, in first-seen order)."""
        columns: dict[str, None] = {}
        for r in self.rows:
            columns.update(dict.fromkeys(r))
        tmp = os.path.join(self.workdir, METRICS_CSV + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(columns))
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, os.path.join(self.workdir, METRICS_CSV))

    def flush(self) -> None:
        self.write_csv()
        self.tb.flush()

    def close(self) -> None:
        self.flush()
        self.tb.close()


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN; keep it visible.
    return v


def progress_line(row: dict[str, Any], total: int, budget_s: float = 0.0) -> str:
    """One console line. The bar follows whichever budget is further along, env steps or the
    wall-clock minutes, and the percentage says which ("37.0% of 60 min", "12.0% of 5,000,000
    env steps"). env/s and upd/s are the row's: over the last interval, compiles and
    checkpoints left out."""
    pct, of = 100.0 * row["env_steps"] / total, f"of {total:,} env steps"
    clock = ""
    if budget_s:
        minutes = f"{budget_s / 60:.4g}"
        clock = f" | {row['wall_s'] / 60:.1f}/{minutes} min"
        by_time = min(100.0, 100.0 * row["wall_s"] / budget_s)
        if by_time > pct:
            pct, of = by_time, f"of {minutes} min"
    pct = min(pct, 100.0)
    bar = "#" * int(pct // 5) + "." * (20 - int(pct // 5))
    text = (f"[{bar}] {pct:5.1f}% {of} | env {row['env_steps']:,}/{total:,}{clock} | "
            f"{row['env_steps_per_s']:,.0f} env/s {row['updates_per_s']:.2f} upd/s | "
            f"updates {row['updates']:,} episodes {row['episodes']:,}")  # fmt: skip
    if "ep_lines" in row:
        text += f" | lines/ep {row['ep_lines']:.2f}"
    if "loss/total" in row:
        text += f" | loss {row['loss/total']:.3f}"
    return text


DASH_KEYS = [
    ("ep_return", "episode reward"), ("ep_length", "episode length"), ("ep_lines", "lines/episode"),
    ("ep_pieces", "pieces/episode"), ("ep_score", "score/episode"),
    ("loss/world_model", "world-model loss"), ("loss/policy", "actor loss"),
    ("loss/value", "critic loss"), ("actor/entropy", "policy entropy"),
    ("replay_fill", "replay fill"), ("lines_total", "lines (cumulative)"),
]  # fmt: skip


def dashboard_text(row: dict[str, Any]) -> str:
    parts = [f"{label} {row[k]:.4g}" for k, label in DASH_KEYS if isinstance(row.get(k), float)]
    lines = ["-" * 100, f"dashboard @ env step {row['env_steps']:,} (recent means)"]
    for i in range(0, len(parts), 4):
        lines.append("  " + " | ".join(parts[i : i + 4]))
    lines.append("-" * 100)
    return "\n".join(lines)


PANELS = [
    ("ep_return", "Episode reward (moving avg)"), ("ep_pieces", "Pieces placed / episode"),
    ("ep_lines", "Lines cleared / episode"), ("loss/world_model", "World-model loss"),
    ("loss/policy", "Actor loss"), ("actor/entropy", "Policy entropy"),
    ("replay_fill", "Replay utilisation"), ("ep_length", "Episode length"),
    ("lines_total", "Cumulative lines"),
]  # fmt: skip


def write_dashboard(workdir: str, rows: list[dict[str, Any]]) -> str:
    """The 9-panel PNG (each curve against env steps, with a moving average)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(15, 11))
    for ax, (key, title) in zip(axes.flat, PANELS, strict=True):
        pts = [(r["env_steps"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        if not pts:
            ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
            continue
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, alpha=0.4, lw=1)
        w = max(1, len(ys) // 20)
        if w > 1:
            avg = [sum(ys[max(0, i - w + 1) : i + 1]) / len(ys[max(0, i - w + 1) : i + 1])
                   for i in range(len(ys))]  # fmt: skip
            ax.plot(xs, avg, lw=2)
    fig.tight_layout()
    path = os.path.join(workdir, DASHBOARD_PNG)
    fig.savefig(path + ".tmp.png", dpi=80)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)
    return path


def append_eval(workdir: str, row: dict[str, Any]) -> None:
    """Append one checkpoint evaluation (env_steps, updates, wall_s, eval/...) to evals.jsonl
    (the trainer does once the checkpoint has committed)."""
    with open(os.path.join(workdir, EVALS_JSONL), "a") as f:
        f.write(json.dumps({k: _plain(v) for k, v in row.items()}) + "\n")


def reconcile_evals(workdir: str, resume_step: int) -> None:
    """On resume from the checkpoint at `resume_step`: drop the evaluations of later steps
    (logged by a run killed before their checkpoint committed) and repeats of a step (the last
    is kept), as `MetricsLog` does for the metrics."""
    path = os.path.join(workdir, EVALS_JSONL)
    rows = read_jsonl(path)
    by_step = {r["env_steps"]: r for r in rows if r["env_steps"] <= resume_step}
    kept = sorted(by_step.values(), key=lambda r: r["env_steps"])
    if kept != rows:
        with open(path + ".tmp", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        os.replace(path + ".tmp", path)


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; [] if it does not exist."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_summary(workdir: str, summary: dict[str, Any]) -> None:
    tmp = os.path.join(workdir, SUMMARY_JSON + ".tmp")
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2, default=_plain)
    os.replace(tmp, os.path.join(workdir, SUMMARY_JSON))
