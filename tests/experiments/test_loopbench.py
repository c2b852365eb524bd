"""The loop benchmark (experiments.benchmark --what=loop) runs on the debug config."""

from __future__ import annotations

from experiments import loopbench


def test_loop_benchmark_quick(debug_config):
    r = loopbench.benchmark_loop(debug_config, iterations=2, repeats=1)
    assert r["env_steps_per_s"] > 0 and r["updates_per_s"] > 0
    assert r["replayed_steps_per_s"] == r["updates_per_s"] * 4 * 16
