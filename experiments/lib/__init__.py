"""Support code of the experiments' entry points, one job per module.

errors (the error types), cli (the entry points' shared flags and main), build (env and agent
from a config), schema (every config field and its default), runs (saved runs: config files,
config.json, opening a checkpoint, the workdir lock), checkpoints (orbax), policies (the agent
and baselines as rollout policies), loop (the jitted collect and train steps), trainer (the
host loop of `experiments.train`), play (games, statistics, GIFs), monitor (metrics files,
TensorBoard, dashboards), bench (throughput benchmarks), world_model and world_model_report
(the world model scored on real games).
"""
