"""Issue 12's ablation table (item 4) from the saved evaluations and world-model reports.

    PYTHONPATH=. python docs/results/scripts/ablation_table.py docs/results/ablation/rows.json \
        [--out=docs/results/ablation/table.md] [--force]

The spec (JSON) lists the rows: each has a `row` name, the `command` that trained its runs and
`runs`, one per (seed, checkpoint): `{"seed": 0, "checkpoint": "best", "eval": PATH,
"world_model": PATH or null}`, where `eval` is an `experiments.evaluate` result (eval_N.json) or
a pooled one (`pool_evals.py`, pooled_N.json) and `world_model` an `experiments.world_model`
report (world_model.json). Every figure is read from those files; nothing is typed in. Checks
that a row names each (seed, checkpoint) once and that every evaluation of the table used the
same piece cap (the rows must be comparable), and says which rows have fewer than 3 seeds or
fewer than 256 games per run. Prints the markdown; with --out writes it (refuses to overwrite
without --force).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

AGENT = "agent (greedy)"


def _agent_stats(path: str) -> tuple[dict, dict]:
    result = json.load(open(path))
    rows = [r for r in result["rows"] if r["policy"] == AGENT]
    if not rows:
        raise ValueError(f"{path}: no {AGENT!r} row")
    return result, rows[0]["stats"]


def _model(path: str | None) -> dict | None:
    if not path:
        return None
    wm = json.load(open(path))
    one, five = wm["open_loop"]["1"], wm["open_loop"]["5"]
    return {
        "board_exact_1": one["board_exact"],
        "board_exact_5": five["board_exact"],
        "lines_exact_1": one["lines_exact"],
        "terminal_caught": round(one["terminal_accuracy"] * one["terminal_steps"]),
        "terminal_steps": one["terminal_steps"],
        "games": wm["episodes"],
        "cap": wm["max_pieces"],
    }


def collect(spec: dict) -> dict:
    """Reads every file the spec names: {"rows": [...], "cap": int, "warnings": [...]}."""
    rows, caps, warnings = [], set(), []
    for row in spec["rows"]:
        runs, seen = [], set()
        for run in row["runs"]:
            key = (run["seed"], run["checkpoint"])
            if key in seen:
                raise ValueError(f"row {row['row']!r}: seed {key[0]} {key[1]} named twice")
            seen.add(key)
            result, stats = _agent_stats(run["eval"])
            caps.add(result["max_pieces"])
            if stats["games"] < 256:
                warnings.append(
                    f"{row['row']}, seed {run['seed']} {run['checkpoint']}: "
                    f"{stats['games']} games (the issue asks for 256)"
                )
            runs.append(
                {
                    **run,
                    "step": result["step"],
                    "stats": stats,
                    "model": _model(run.get("world_model")),
                }
            )
        for checkpoint in sorted({r["checkpoint"] for r in runs}):
            n = len({r["seed"] for r in runs if r["checkpoint"] == checkpoint})
            if n < 3:
                warnings.append(f"{row['row']} ({checkpoint}): {n} seed(s) of 3")
        rows.append({"row": row["row"], "command": row["command"], "runs": runs})
    if len(caps) > 1:
        raise ValueError(f"evaluations use different piece caps {sorted(caps)}; not comparable")
    return {"rows": rows, "cap": caps.pop() if caps else None, "warnings": warnings}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def markdown(table: dict) -> str:
    out = [
        f"Greedy lines per game at a {table['cap']:,}-piece cap (`experiments.evaluate`, mean "
        "[95% bootstrap CI], games); model figures from `experiments.world_model` on the "
        "checkpoint's own games (1- and 5-step open-loop exact board, lines exact at 1 step, "
        "game-over steps caught).\n",
        "| row | checkpoint | seeds | mean over seeds "
        "| per seed: lines/game [CI] (games, env steps) "
        "| 1-step exact | 5-step exact | lines exact | game over |",
        "|---|---|---:|---:|---|---|---|---|---|",
    ]
    for row in table["rows"]:
        for checkpoint in sorted({r["checkpoint"] for r in row["runs"]}):
            runs = sorted(
                (r for r in row["runs"] if r["checkpoint"] == checkpoint), key=lambda r: r["seed"]
            )
            means = [r["stats"]["lines_mean"] for r in runs]
            per_seed = "; ".join(
                f"s{r['seed']}: {s['lines_mean']:,.2f} [{s['lines_ci95_low']:,.2f}, "
                f"{s['lines_ci95_high']:,.2f}] ({s['games']}, {r['step']:,})"
                for r, s in ((r, r["stats"]) for r in runs)
            )
            models = [r["model"] for r in runs]

            def col(key, models=models):
                return " / ".join(_pct(m[key]) if m else "-" for m in models)

            over = " / ".join(
                f"{m['terminal_caught']} of {m['terminal_steps']}" if m else "-" for m in models
            )
            out.append(
                f"| {row['row']} | {checkpoint} | {len(runs)} | {statistics.fmean(means):,.2f} "
                f"| {per_seed} | {col('board_exact_1')} | {col('board_exact_5')} "
                f"| {col('lines_exact_1')} | {over} |"
            )
    out.append("")
    out.append("Commands:\n")
    for row in table["rows"]:
        out.append(f"- {row['row']}: `{row['command']}`")
    if table["warnings"]:
        out.append("\nIncomplete (the issue asks for 3 seeds per row and 256 games per run):\n")
        out.extend(f"- {w}" for w in table["warnings"])
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec")
    parser.add_argument("--out")
    parser.add_argument("--force", action="store_true", help="Overwrite an existing table.")
    args = parser.parse_args()
    try:
        table = collect(json.load(open(args.spec)))
    except (ValueError, KeyError, OSError) as e:
        sys.exit(f"{args.spec}: {e}")
    text = markdown(table)
    print(text)
    if args.out:
        if os.path.exists(args.out) and not args.force:
            sys.exit(f"{args.out} exists; --force overwrites it")
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
