"""Throughput benchmarks: `python -m experiments.benchmark [--what=env,heuristics,train,loop]`.

env: environment steps/s for both action modes over a batch sweep, measured as
  `jit(lax.scan(vmap(auto_reset_step)))` with random actions (drawn before timing), the
  compile time reported apart, the median over repeated runs. With "observation built"
  the full observation (board and piece planes, queue, action mask) is written to the scan's
  carry every step, as a collector storing it would; without, XLA drops what nothing reads.
heuristics: pieces/s of the baseline controllers, each piece scoring every placement.
train: dreamer_jax `train_step` updates/s per preset and batch.
loop: experiments.train's device loop (collect + train steps at the config's train ratio):
  env steps/s and updates/s of `--loop_config`, and of each `--loop_variant` of it (fields
  changed, e.g. `--loop_variant=batch_size=32,train_ratio=64,agent.board_imag_batch=16`), one
  after the other in the same run.
The measuring code is in `experiments.lib.bench`.

Results are printed as a table and written to `--out` as JSON and markdown with the command,
machine, backend and jax version.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import statistics

import jax
from absl import app, flags

import tetris_jax
from experiments.lib import bench, runs

FLAGS = flags.FLAGS
ENV_MODES = ("placement", "placement+features", "direct")
flags.DEFINE_list("what", ["env", "heuristics", "train", "loop"], "Benchmarks to run.")
flags.DEFINE_string("loop_config", "experiments/qhead.py", "Config file of --what=loop.")
flags.DEFINE_multi_string(
    "loop_variant",
    [],
    "--what=loop: also time --loop_config with these fields changed, one variant per flag, "
    "as FIELD=VALUE[,FIELD=VALUE...] (e.g. batch_size=32,agent.board_imag_batch=16); the "
    "config as it is is timed first, so the ratios come from one run.",
)
flags.DEFINE_list("batches", ["1", "16", "256", "1024", "4096", "16384"], "Env batch sizes.")
flags.DEFINE_list("env_modes", list(ENV_MODES), "Env action modes of --what=env.")
flags.DEFINE_list("presets", ["tiny", "1m"], "dreamer_jax presets of --what=train.")
flags.DEFINE_list("shapes", ["16x64", "64x64"], "Batch x length shapes of --what=train.")
flags.DEFINE_list("dtypes", ["float32"], "Compute dtypes of --what=train: float32, bfloat16.")
flags.DEFINE_integer("repeats", 5, "Timed runs per measurement (the median is reported).")
flags.DEFINE_integer("target_steps", 1 << 21, "Env steps per timed run (scan length x batch).")
flags.DEFINE_bool("quick", False, "Tiny sizes and 2 repeats: checks that everything runs.")
flags.DEFINE_string(
    "out",
    "runs/benchmark",
    "Folder for the JSON and markdown results "
    "(the committed figures are in docs/results: --out=docs/results replaces "
    "them).",
)
flags.DEFINE_string("tag", "", "Suffix for the result file names (default: the backend).")


def bench_env(
    batches: list[int], repeats: int, target_steps: int, modes: tuple[str, ...] = ENV_MODES
) -> list[dict]:
    rows = []
    # "placement+features": the observation with the afterstate features of every placement
    # (Tetris(placement_features=True)), only measured with the observation built.
    for mode in modes:
        features = mode == "placement+features"
        env = tetris_jax.Tetris(action_mode=mode.split("+")[0], placement_features=features)
        for batch in batches:
            for with_obs in (False, True):
                if with_obs and batch != 4096 and len(batches) > 2:
                    continue  # The observation cost is shown at the batch size.
                if features and not with_obs:
                    continue  # Without the observation XLA drops the features.
                length = min(max(16, target_steps // batch), 1 << 14)  # ~0.1-1 s a run.
                keys = jax.random.split(jax.random.key(0), batch)
                state, ts = jax.vmap(env.reset)(keys)
                actions = jax.random.randint(jax.random.key(1), (length, batch), 0, env.num_actions)
                first, runs = bench.time_fn(
                    bench.make_env_rollout(env, with_obs),
                    state,
                    ts.observation,
                    actions,
                    repeats=repeats,
                )
                med = statistics.median(runs)
                rows.append(
                    {
                        "what": "env",
                        "action_mode": mode,
                        "batch": batch,
                        "observation": with_obs,
                        "scan_length": length,
                        "compile_s": round(first - med, 3),
                        "steps_per_s": batch * length / med,
                        "steps_per_s_runs": [batch * length / r for r in runs],
                    }
                )
                print(
                    f"env {mode:9s} batch {batch:6d} obs={with_obs!s:5s} "
                    f"{rows[-1]['steps_per_s'] / 1e6:8.3f} M steps/s "
                    f"(compile {rows[-1]['compile_s']:.1f} s)",
                    flush=True,
                )
    return rows


def bench_heuristics(batch: int, repeats: int, steps: int) -> list[dict]:
    rows = []
    for name in ("random", "dellacherie", "el_tetris", "bcts"):
        result = bench.benchmark_heuristics(name, batch=batch, steps=steps, repeats=repeats)
        rows.append({"what": "heuristics", "controller": name, "batch": batch, **result})
        print(
            f"heuristics {name:12s} batch {batch:6d} {result['pieces_per_s'] / 1e3:10.1f} "
            f"k pieces/s",
            flush=True,
        )
    return rows


def bench_train(
    presets: list[str],
    shapes: list[tuple[int, int]],
    repeats: int,
    dtypes: tuple[str, ...] = ("float32",),
) -> list[dict]:
    rows = []
    for preset in presets:
        for dtype in dtypes:
            for batch, seq_len in shapes:
                result = bench.benchmark_train_step(
                    preset, batch, seq_len, steps=repeats, compute_dtype=dtype
                )
                rows.append(
                    {
                        "what": "train",
                        "preset": preset,
                        "batch": batch,
                        "seq_len": seq_len,
                        "compute_dtype": dtype,
                        **result,
                    }
                )
                print(f"train {preset:5s} {dtype} {batch}x{seq_len} {result}", flush=True)
    return rows


def parse_variant(text: str, config) -> dict[str, object]:
    """ "a.b=1,c=x" -> {"a.b": 1, "c": "x"}, each field checked against `config` (a ConfigDict)
    before anything is timed."""
    out = {}
    for item in filter(None, text.split(",")):
        field, sep, value = item.partition("=")
        node = config
        for part in field.split(".")[:-1]:
            node = node.get(part) if hasattr(node, "get") else None
        if not sep or node is None or not hasattr(node, "get") or field.split(".")[-1] not in node:
            raise app.UsageError(
                f"--loop_variant: got {item!r}; need FIELD=VALUE with FIELD a field of the loop "
                "config (e.g. batch_size, agent.board_imag_batch)"
            )
        try:
            out[field] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[field] = value
    return out


def apply_variant(config, variant: dict[str, object]):
    """A copy of `config` with the variant's fields set (types as ConfigDict checks them)."""
    config = copy.deepcopy(config)
    for field, value in variant.items():
        *path, name = field.split(".")
        node = config
        for part in path:
            node = node[part]
        node[name] = value
    return config


def bench_loop(config_path: str, quick: bool, repeats: int, variants=()) -> list[dict]:
    if quick:
        config_path = "experiments/debug.py"
    config = runs.load_config_file(config_path)
    parsed = [("", {})] + [(v, parse_variant(v, config)) for v in variants]
    rows = []
    for text, variant in parsed:
        result = bench.benchmark_loop(
            apply_variant(config, variant), iterations=5 if quick else 20, repeats=repeats
        )
        print(f"loop {config_path} {text or '(as it is)'} {result}", flush=True)
        rows.append({"what": "loop", "config": config_path, "variant": text, **result})
    return rows


def markdown(info: dict, rows: list[dict]) -> str:
    lines = [
        f"# Benchmark ({info['backend']}, {info['date']})",
        "",
        f"- command: `{info['command']}`",
        f"- machine: {info['host_cpu']}, {info['host_cores']} cores; devices: "
        f"{', '.join(info['devices'])}",
        f"- jax {info['jax']}, python {info['python']}",
        "",
    ]
    env_rows = [r for r in rows if r["what"] == "env"]
    if env_rows:
        lines += [
            "| action mode | batch | observation built | M steps/s (median) | compile s |",
            "|---|---:|---|---:|---:|",
        ]
        for r in env_rows:
            obs = "yes" if r["observation"] else "no"
            lines.append(
                f"| {r['action_mode']} | {r['batch']} | {obs} | "
                f"{r['steps_per_s'] / 1e6:.3f} | {r['compile_s']:.1f} |"
            )
        lines.append("")
    heur = [r for r in rows if r["what"] == "heuristics"]
    if heur:
        lines += ["| controller | batch | k pieces/s (median) |", "|---|---:|---:|"]
        for r in heur:
            lines.append(f"| {r['controller']} | {r['batch']} | {r['pieces_per_s'] / 1e3:.1f} |")
        lines.append("")
    train = [r for r in rows if r["what"] == "train"]
    if train:
        lines += [
            "| preset | dtype | batch x length | updates/s | replayed steps/s | compile s |",
            "|---|---|---|---:|---:|---:|",
        ]
        for r in train:
            lines.append(
                f"| {r['preset']} | {r.get('compute_dtype', 'float32')} | "
                f"{r['batch']}x{r['seq_len']} | "
                f"{r.get('updates_per_s', float('nan')):.2f} | "
                f"{r.get('replayed_steps_per_s', float('nan')):.0f} | "
                f"{r.get('compile_s', float('nan')):.1f} |"
            )
        lines.append("")
    loops = [r for r in rows if r["what"] == "loop"]
    if loops:
        lines += [
            "| loop config | variant | envs x steps | preset | batch x length | train ratio | "
            "env steps/s | updates/s | replayed steps/s | compile s |",
            "|---|---|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in loops:
            lines.append(
                f"| {r['config']} | {r.get('variant') or '-'} | "
                f"{r['num_envs']}x{r['collect_steps']} | "
                f"{r['preset']} | {r['batch']}x{r['seq_len']} | {r['train_ratio']:g} | "
                f"{r['env_steps_per_s']:.0f} | {r['updates_per_s']:.2f} | "
                f"{r['replayed_steps_per_s']:.0f} | {r['compile_s']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def _shape(text: str) -> tuple[int, int]:
    try:
        batch, length = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise app.UsageError(f"--shapes: got {text!r}; allowed: BxT, e.g. 16x64") from None
    return batch, length


def main(argv):
    del argv
    info = bench.machine_info()
    quick = FLAGS.quick
    repeats = 2 if quick else FLAGS.repeats
    rows: list[dict] = []
    what = set(FLAGS.what)
    unknown = what - {"env", "heuristics", "train", "loop"}
    if unknown:
        raise app.UsageError(
            f"--what: unknown {sorted(unknown)}; allowed env,heuristics,train,loop"
        )
    if "env" in what:
        batches = [1, 64] if quick else [int(b) for b in FLAGS.batches]
        for m in FLAGS.env_modes:
            if m not in ENV_MODES:
                raise app.UsageError(f"--env_modes: got {m!r}; allowed: {', '.join(ENV_MODES)}")
        rows += bench_env(
            batches, repeats, 1 << 12 if quick else FLAGS.target_steps, tuple(FLAGS.env_modes)
        )
    if "heuristics" in what:
        rows += bench_heuristics(64 if quick else 4096, repeats, 4 if quick else 32)
    if "train" in what:
        shapes = [_shape(x) for x in FLAGS.shapes]
        presets = FLAGS.presets
        if quick:
            shapes, presets = [(4, 16)], ["tiny"]
        rows += bench_train(presets, shapes, repeats, tuple(FLAGS.dtypes))
    if "loop" in what:
        rows += bench_loop(FLAGS.loop_config, quick, repeats, FLAGS.loop_variant)
    os.makedirs(FLAGS.out, exist_ok=True)
    tag = FLAGS.tag or info["backend"]
    stem = os.path.join(FLAGS.out, f"benchmark_{'-'.join(sorted(what))}_{tag}")
    with open(stem + ".json", "w") as f:
        json.dump({"info": info, "results": rows}, f, indent=1)
    with open(stem + ".md", "w") as f:
        f.write(markdown(info, rows))
    print(f"wrote {stem}.json and {stem}.md")


if __name__ == "__main__":
    app.run(main)
