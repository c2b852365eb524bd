"""Pool several `experiments.evaluate` results of one checkpoint on different game seeds.

    PYTHONPATH=. python docs/results/scripts/pool_evals.py --out=DIR A/eval_N.json B/eval_N.json ...

Long games make one big lockstep evaluation slow to finish in one sitting (its time goes with
the longest game); chunks of games on other seeds can run one after another and be pooled
here. Checks that every file scored the same step of the same source under the same rules
apart from the seed, and that no seed repeats (the same seed is the same games); then writes
DIR/pooled_<step>.json and .md with each policy's statistics over all the games
(`play.pooled`: mean, median, bootstrap interval of the mean, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from experiments.lib import play

EXPORTS = "docs/results/params/"


def same_source(source: str) -> str:
    """A committed export is the same checkpoint from any clone of the repository: the path
    from docs/results/params/ on; any other source is its full path."""
    at = source.replace(os.sep, "/").rfind("/" + EXPORTS)
    return source if at < 0 else source[at + 1 :]


def pool(paths: list[str]) -> dict:
    evals = [json.load(open(p)) for p in paths]
    first = evals[0]
    for p, e in zip(paths, evals, strict=True):
        for key in ("step", "source", "max_pieces"):
            a, b = e[key], first[key]
            if key == "source":
                a, b = same_source(a), same_source(b)
            if a != b:
                sys.exit(f"{p}: {key} is {e[key]!r}, {paths[0]} has {first[key]!r}")
        for row in e["rows"]:
            if "games" not in row:
                sys.exit(f"{p}: row {row['policy']!r} has no per-game record (older evaluate)")
    seeds = [e["seed"] for e in evals]
    if len(set(seeds)) != len(seeds):
        sys.exit(f"seeds repeat: {seeds} (the same seed plays the same games)")
    policies = [r["policy"] for r in first["rows"]]
    rows = []
    for name in policies:
        records = []
        for p, e in zip(paths, evals, strict=True):
            found = [r for r in e["rows"] if r["policy"] == name]
            if not found:
                sys.exit(f"{p}: no row for policy {name!r}")
            records.append(found[0]["games"])
        rows.append({"policy": name, "stats": play.pooled(records)})
    return {
        "step": first["step"],
        "source": first["source"],
        "sources": sorted({e["source"] for e in evals}),
        "max_pieces": first["max_pieces"],
        "seeds": seeds,
        "episodes": [e["episodes"] for e in evals],
        "files": paths,
        "rows": rows,
        "backend": first["backend"],
        "jax": first["jax"],
    }


def markdown(result: dict) -> str:
    head = (
        f"Pooled evaluation at env step {result['step']:,} of {result['source']}: games on seeds "
        f"{', '.join(map(str, result['seeds']))} ({' + '.join(map(str, result['episodes']))} "
        f"games), cap {result['max_pieces']} pieces\n\n"
        "| policy | games | lines/game mean | median | std | 95% CI of mean | pieces "
        "| lines/piece | capped |\n|---|---:|---:|---:|---:|---|---:|---:|---:|\n"
    )
    lines = []
    for r in result["rows"]:
        s = r["stats"]
        lines.append(
            f"| {r['policy']} | {s['games']} | {s['lines_mean']:.2f} | {s['lines_median']:.1f} "
            f"| {s['lines_std']:.2f} | [{s['lines_ci95_low']:.2f}, {s['lines_ci95_high']:.2f}] "
            f"| {s['pieces_mean']:.1f} | {s['lines_per_piece']:.4f} "
            f"| {100 * s['capped_share']:.1f}% |"
        )
    return head + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", required=True)
    parser.add_argument("--force", action="store_true", help="Overwrite an existing result.")
    args = parser.parse_args()
    result = pool(args.files)
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, f"pooled_{result['step']}")
    if os.path.exists(base + ".json") and not args.force:
        sys.exit(f"{base}.json exists; --force overwrites it")
    with open(base + ".json", "w") as f:
        json.dump(result, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(markdown(result))
    print(markdown(result))
    print(f"wrote {base}.json, {base}.md")


if __name__ == "__main__":
    main()
