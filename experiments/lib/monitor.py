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
    text = (
        f"[{bar}] {pct:5.1f}% {of} | env {row['env_steps']:,}/{total:,}{clock} | "
        f"{row['env_steps_per_s']:,.0f} env/s {row['updates_per_s']:.2f} upd/s | "
        f"updates {row['updates']:,} episodes {row['episodes']:,}"
    )
    if "ep_lines" in row:
        text += f" | lines/ep {row['ep_lines']:.2f}"
    elif "ep_return" in row:
        text += f" | return/ep {row['ep_return']:.1f}"
    if "loss/total" in row:
        text += f" | loss {row['loss/total']:.3f}"
    return text


DASH_KEYS = [
    ("ep_return", "episode reward"),
    ("ep_length", "episode length"),
    ("ep_lines", "lines/episode"),
    ("ep_pieces", "pieces/episode"),
    ("ep_score", "score/episode"),
    ("loss/world_model", "world-model loss"),
    ("loss/policy", "actor loss"),
    ("loss/value", "critic loss"),
    ("actor/entropy", "policy entropy"),
    ("replay_fill", "replay fill"),
    ("lines_total", "lines (cumulative)"),
]


def dashboard_text(row: dict[str, Any]) -> str:
    parts = [f"{label} {row[k]:.4g}" for k, label in DASH_KEYS if isinstance(row.get(k), float)]
    lines = ["-" * 100, f"dashboard @ env step {row['env_steps']:,} (recent means)"]
    for i in range(0, len(parts), 4):
        lines.append("  " + " | ".join(parts[i : i + 4]))
    lines.append("-" * 100)
    return "\n".join(lines)


EVAL_PANEL, RATES_PANEL = "eval", "rates"  # Panels drawn from evals.jsonl and two columns.


def is_tetris(config: dict[str, Any] | None) -> bool:
    """Whether a run's config is a Tetris one (configs saved before `env.suite` are)."""
    return (config or {}).get("env", {}).get("suite", "tetris") == "tetris"


def eval_metric(config: dict[str, Any] | None) -> str:
    """The per-episode quantity the greedy evaluation reports: lines (Tetris) or return."""
    return "lines" if is_tetris(config) else "return"


def dashboard_panels(
    config: dict[str, Any] | None, rows: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    """(metric key, title) of the dashboard's panels, none repeating another: the episode
    reward only when it is not the line count (lines_only reward), the episode length in steps
    only when it is not the piece count (placement mode), the Q-head loss and the curriculum
    only when logged."""
    env = (config or {}).get("env", {})
    logged = set().union(*rows) if rows else set()
    if not is_tetris(config):
        return [
            (EVAL_PANEL, "Greedy evaluation: return / episode"),
            ("ep_return", "Training episodes: return / episode"),
            ("ep_length", "Training episodes: steps / episode"),
            ("loss/world_model", "World-model loss"),
            ("loss/policy", "Actor loss"),
            ("loss/value", "Critic loss"),
            ("actor/entropy", "Policy entropy"),
            ("replay_fill", "Replay fill"),
            (RATES_PANEL, "Throughput (compiles and checkpoints left out)"),
        ]
    panels = [
        (EVAL_PANEL, "Greedy evaluation: lines / game"),
        ("ep_lines", "Training episodes: lines / episode"),
    ]
    if env.get("reward_mode") != "lines_only":
        panels.append(("ep_return", "Training episodes: reward / episode"))
    panels.append(("ep_pieces", "Training episodes: pieces / episode"))
    if env.get("action_mode") != "placement":
        panels.append(("ep_length", "Training episodes: steps / episode"))
    panels += [
        ("loss/world_model", "World-model loss"),
        ("loss/policy", "Actor loss"),
        ("loss/value", "Critic loss"),
    ]
    if "loss/qval" in logged:
        panels.append(("loss/qval", "Q-head loss (replayed returns)"))
    panels += [("actor/entropy", "Policy entropy"), ("replay_fill", "Replay fill")]
    if "curriculum_rows" in logged:
        panels.append(("curriculum_rows", "Curriculum: most pre-filled rows"))
    panels.append((RATES_PANEL, "Throughput (compiles and checkpoints left out)"))
    return panels


def dashboard_title(
    workdir: str,
    config: dict[str, Any] | None,
    rows: list[dict[str, Any]],
    evals: list[dict[str, Any]],
) -> str:
    """Two lines: the run's name and its config's key fields; where it stands."""
    name = os.path.basename(os.path.normpath(os.path.abspath(workdir)))
    head = name
    if config and not is_tetris(config):
        env = config.get("env", {})
        head += (
            f": {env.get('suite')} {env.get('name')}; agent {config.get('agent_preset')}, "
            f"seed {config.get('seed')}"
        )
    elif config:
        env, agent = config.get("env", {}), config.get("agent", {})
        qhead = " + Q head" if agent.get("qhead") else ""
        curriculum = ", curriculum" if config.get("curriculum", {}).get("enabled") else ""
        head += (
            f": {env.get('reward_mode')} reward, {env.get('action_mode')} mode, "
            f"{env.get('width')}x{env.get('height')} board, {env.get('randomizer')}"
            f"{curriculum}; agent {config.get('agent_preset')}{qhead}, "
            f"seed {config.get('seed')}"
        )
    if not rows:
        return head
    last = rows[-1]
    where = (
        f"env step {last['env_steps']:,}, {last.get('updates', 0):,} updates, "
        f"{last.get('wall_s', 0.0) / 60:.1f} min"
    )
    metric = eval_metric(config)
    scores = [e[f"eval/{metric}_mean"] for e in evals if f"eval/{metric}_mean" in e]
    unit = "lines/game" if metric == "lines" else "return/episode"
    if scores:
        where += f"; last evaluation {scores[-1]:.4g} {unit}, best {max(scores):.4g}"
    return head + "\n" + where


def reference_lines(workdir: str, config: dict[str, Any] | None) -> list[tuple[str, float]]:
    """(label, lines/game) to draw on the evaluation panel: the most lines any policy can clear
    under the evaluation's piece cap (each piece adds 4 cells, each line removes `width`), and
    the baselines of the latest `experiments.evaluate` result in the workdir (eval_<step>.json)
    played under the same cap. Random play (~0.1 lines/game on 10x20) is drawn only from such
    a file."""
    refs: list[tuple[str, float]] = []
    cap = (config or {}).get("eval_max_pieces")
    width = (config or {}).get("env", {}).get("width")
    metric = eval_metric(config)
    if not cap:
        return refs
    if width and metric == "lines":
        refs.append((f"most possible in {cap:,} pieces", float(4 * cap // width)))
    results = []
    for f in os.listdir(workdir) if os.path.isdir(workdir) else []:
        stem, ext = os.path.splitext(f)
        if ext == ".json" and stem.startswith("eval_") and stem[5:].isdigit():
            results.append((int(stem[5:]), os.path.join(workdir, f)))
    for _, path in sorted(results, reverse=True):
        try:
            with open(path) as fh:
                result = json.load(fh)
        except (OSError, ValueError):
            continue
        if result.get("max_pieces") != cap:
            continue
        for r in result.get("rows", []):
            if not str(r.get("policy", "agent")).startswith("agent"):
                games = r["stats"].get("games", result.get("episodes"))
                value = r["stats"].get(f"{metric}_mean")
                if value is not None:
                    refs.append((f"{r['policy']} ({games} games)", float(value)))
        break
    return refs


def _series(ax, xs, ys, label: str | None = None, color: str | None = None) -> None:
    """A curve and, with enough points, its moving average."""
    (line,) = ax.plot(xs, ys, alpha=0.4, lw=1, color=color, label=label)
    w = max(1, len(ys) // 20)
    if w > 1:
        avg = [
            sum(ys[max(0, i - w + 1) : i + 1]) / len(ys[max(0, i - w + 1) : i + 1])
            for i in range(len(ys))
        ]
        ax.plot(xs, avg, lw=2, color=line.get_color())


def _eval_panel(
    ax, evals: list[dict[str, Any]], refs: list[tuple[str, float]], config: dict[str, Any] | None
) -> bool:
    """Greedy lines/game (other envs: return/episode) at each checkpoint, its 95% interval, the
    best, the references."""
    m = eval_metric(config)
    if config and config.get("eval_episodes"):
        if m == "lines":
            ax.set_title(
                f"Greedy evaluation: lines / game ({config['eval_episodes']} games, "
                f"cap {config['eval_max_pieces']:,} pieces)"
            )
        else:
            ax.set_title(
                f"Greedy evaluation: return / episode ({config['eval_episodes']} episodes)"
            )
    pts = [e for e in evals if isinstance(e.get(f"eval/{m}_mean"), (int, float))]
    if not pts:
        return False
    xs = [e["env_steps"] for e in pts]
    ys = [e[f"eval/{m}_mean"] for e in pts]
    ax.plot(xs, ys, "o-", lw=2, color="C0", label="agent (greedy), each checkpoint")
    if all(f"eval/{m}_ci95_low" in e and f"eval/{m}_ci95_high" in e for e in pts):
        low = [y - e[f"eval/{m}_ci95_low"] for y, e in zip(ys, pts, strict=True)]
        high = [e[f"eval/{m}_ci95_high"] - y for y, e in zip(ys, pts, strict=True)]
        ax.errorbar(
            xs,
            ys,
            yerr=[low, high],
            fmt="none",
            ecolor="C0",
            alpha=0.5,
            capsize=3,
            label="95% interval of the mean",
        )
    best = max(range(len(ys)), key=ys.__getitem__)
    ax.plot([xs[best]], [ys[best]], "*", ms=14, color="C1", label=f"best: {ys[best]:.4g}")
    for i, (label, value) in enumerate(refs):
        ax.axhline(value, ls="--", lw=1, color=f"C{i + 2}", label=f"{label}: {value:.4g}")
    top = max([*ys, *(v for _, v in refs)])
    if refs and top > 20 * max(1.0, max(ys)):  # References far above: keep the curve readable.
        ax.set_yscale("symlog", linthresh=1.0)
    ax.legend(fontsize=7, loc="best")
    return True


def _rates_panel(ax, rows: list[dict[str, Any]]) -> bool:
    pts = [
        (r["env_steps"], r["env_steps_per_s"], r.get("updates_per_s"))
        for r in rows
        if isinstance(r.get("env_steps_per_s"), (int, float))
    ]
    if not pts:
        return False
    xs = [p[0] for p in pts]
    _series(ax, xs, [p[1] for p in pts], color="C0")
    ax.set_ylabel("env steps / s", color="C0")
    ups = [(x, p[2]) for x, p in zip(xs, pts, strict=True) if isinstance(p[2], (int, float))]
    if ups:
        twin = ax.twinx()
        _series(twin, [u[0] for u in ups], [u[1] for u in ups], color="C3")
        twin.set_ylabel("updates / s", color="C3")
    return True


def write_dashboard(workdir: str, rows: list[dict[str, Any]]) -> str:
    """dashboard.png: a title with the run's name (the workdir's) and config (its config.json),
    then one panel per metric against env steps (with a moving average), the first the greedy
    evaluation at each checkpoint (evals.jsonl) with reference lines (`reference_lines`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config_path = os.path.join(workdir, "config.json")  # runs.CONFIG_JSON
    config = None
    if os.path.exists(config_path):
        with open(config_path) as f:
            config = json.load(f)
    evals = read_jsonl(os.path.join(workdir, EVALS_JSONL))
    panels = dashboard_panels(config, rows)
    ncols = 3
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(15, 3.6 * nrows + 0.8), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (key, title) in zip(axes.flat, panels, strict=False):
        ax.set_title(title)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        if key == EVAL_PANEL:
            drawn = _eval_panel(ax, evals, reference_lines(workdir, config), config)
            last = max([r["env_steps"] for r in rows] + [e["env_steps"] for e in evals] + [1])
            ax.set_xlim(0, 1.03 * last)  # The other panels' range, even with one checkpoint.
        elif key == RATES_PANEL:
            drawn = _rates_panel(ax, rows)
        else:
            pts = [(r["env_steps"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
            if pts:
                _series(ax, *zip(*pts, strict=True))
            drawn = bool(pts)
        if not drawn:
            ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(dashboard_title(workdir, config, rows, evals), fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.8 / fig.get_figheight()))  # Room for the title.
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
