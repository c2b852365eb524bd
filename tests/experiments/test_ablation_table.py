"""The ablation-table script reads every figure from the saved files and refuses bad specs."""

from __future__ import annotations

import json
import pathlib

import pytest

from tests.experiments.conftest import load_script

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs/results/ablation/rows.json"


def _module():
    return load_script("ablation_table")


def _eval(tmp_path, name, lines, cap=10000, step=100):
    stats = {
        "games": len(lines),
        "lines_mean": sum(lines) / len(lines),
        "lines_ci95_low": min(lines),
        "lines_ci95_high": max(lines),
    }
    path = tmp_path / name
    path.write_text(
        json.dumps(
            {
                "step": step,
                "max_pieces": cap,
                "rows": [
                    {"policy": "random", "stats": {**stats, "lines_mean": 0.0}},
                    {"policy": "agent (greedy)", "stats": stats},
                ],
            }
        )
    )
    return str(path)


def test_committed_spec_reads_its_files(monkeypatch):
    monkeypatch.chdir(ROOT)
    mod = _module()
    spec = json.loads(SPEC.read_text())
    table = mod.collect(spec)
    for row, want in zip(table["rows"], spec["rows"], strict=True):
        for run, entry in zip(row["runs"], want["runs"], strict=True):
            result = json.load(open(entry["eval"]))
            agent = [r for r in result["rows"] if r["policy"] == "agent (greedy)"][0]
            assert run["stats"]["lines_mean"] == agent["stats"]["lines_mean"]
            assert run["step"] == result["step"]
    text = mod.markdown(table)
    assert f"{table['rows'][0]['runs'][0]['stats']['lines_mean']:,.2f}" in text


def _spec(*runs):
    """One row "r" with runs (seed, eval path), all of the "best" checkpoint."""
    return {
        "rows": [
            {
                "row": "r",
                "command": "cmd",
                "runs": [{"seed": seed, "checkpoint": "best", "eval": e} for seed, e in runs],
            }
        ]
    }


def test_mean_over_seeds_and_warnings(tmp_path):
    mod = _module()
    spec = _spec((0, _eval(tmp_path, "a", [10, 30])), (1, _eval(tmp_path, "b", [40, 40])))
    table = mod.collect(spec)
    text = mod.markdown(table)
    assert "| r | best | 2 | 30.00 |" in text  # mean of the seeds' means (20, 40)
    assert any("1 seed(s)" in w or "2 seed(s) of 3" in w for w in table["warnings"])
    assert any("2 games" in w for w in table["warnings"])


def test_refuses_repeated_run_and_mixed_caps(tmp_path):
    mod = _module()
    a = _eval(tmp_path, "a", [1, 2])
    with pytest.raises(ValueError, match="named twice"):
        mod.collect(_spec((0, a), (0, a)))
    with pytest.raises(ValueError, match="different piece caps"):
        mod.collect(_spec((0, a), (1, _eval(tmp_path, "b", [1, 2], cap=1000))))
