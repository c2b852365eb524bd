"""Greedy games of every committed export (docs/results/params/*), the figures
`test_exports.py` asserts, and the script that records them into `exports_expected.json`:

    JAX_PLATFORMS=cpu python tests/experiments/exports_reference.py [NAME ...]

With names, only those exports are played and (re)recorded; the other entries stay as they are
(a new export needs its own games only, not every export's replayed again).

The figures were recorded once, by the code that trained and exported the runs, before the
configs were rewritten and the research switches retired (issue 14): an export that still
plays exactly these games loads and acts as it did then. One correction since: pieces are the
env's `pieces_placed` (a top-out places nothing); the old play loop subtracted the topping-out
piece a second time, so every game that ended before the cap had one piece fewer.
"""

from __future__ import annotations

import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORTS = os.path.join(ROOT, "docs", "results", "params")
EXPECTED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exports_expected.json")
# Changing any of these changes the games: the recorded figures are for these only.
SEED, GAMES, MAX_PIECES = 12345, 3, 300


def all_export_names() -> list[str]:
    return sorted(
        os.path.basename(os.path.dirname(p))
        for p in glob.glob(os.path.join(EXPORTS, "*", "config.json"))
    )


def export_names() -> list[str]:
    """The Tetris exports (the games recorded here); the others have their own tests."""
    out = []
    for name in all_export_names():
        with open(os.path.join(EXPORTS, name, "config.json")) as f:
            if json.load(f)["env"].get("suite", "tetris") == "tetris":
                out.append(name)
    return out


_ENVS: dict[str, object] = {}


def play(name: str) -> dict[str, list[int]]:
    """Per-game lines, pieces and score of GAMES greedy games of export `name`."""
    import jax

    from experiments.lib import play, runs

    config, env, agent, params, _ = runs.load_checkpoint(None, os.path.join(EXPORTS, name), None)
    # One env object per env config: play's compiled loop is cached per (env, agent), and a
    # Tetris compares by identity, so exports with equal configs then share one compile.
    env = _ENVS.setdefault(json.dumps(config.env.to_dict(), sort_keys=True), env)
    games = play.play_agent(
        env,
        agent,
        params,
        jax.random.key(SEED),
        num_games=GAMES,
        max_pieces=MAX_PIECES,
        mode="greedy",
    )
    return {k: [int(x) for x in getattr(games, k)] for k in ("lines", "pieces", "score")}


def main(names: list[str]) -> None:
    sys.path.insert(0, ROOT)
    known = export_names()
    unknown = sorted(set(names) - set(known))
    if unknown:
        sys.exit(f"exports_reference: no Tetris export named {unknown}; allowed: {known}")
    exports = {}
    if names:
        with open(EXPECTED) as f:
            exports = json.load(f)["exports"]
    exports.update({name: play(name) for name in names or known})
    out = {
        "seed": SEED,
        "games": GAMES,
        "max_pieces": MAX_PIECES,
        "mode": "greedy",
        "exports": dict(sorted(exports.items())),
    }
    with open(EXPECTED, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps({name: out["exports"][name] for name in names or known}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
