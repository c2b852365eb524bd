"""Support code of the experiments' entry points, one job per module.

errors (the error types), build (env and agent from a config), schema (every config field and
its default), runs (saved runs: config files, config.json, opening a checkpoint), checkpoints
(orbax), policies (the agent and baselines as rollout policies), loop (the jitted collect and
train steps), trainer (the host loop of `experiments.train`), play (games, statistics, GIFs),
monitor (metrics files, TensorBoard, dashboards), bench (throughput benchmarks).
"""
