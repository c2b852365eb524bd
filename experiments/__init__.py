"""Entry points: training, evaluation, benchmarks, and their config files."""
