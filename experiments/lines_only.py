"""Headline configuration: a Dreamer-style agent that learns Tetris through its own world model.

    python -m experiments.train --config=experiments/lines_only.py [--config.FIELD=VALUE ...]

Sparse `lines_only` reward, placement mode, 10x20 board, 7-bag, and no hand-made features
anywhere: the observation is the board, piece, queue, hold and mask. The world model's state is
the board (`dreamer_jax/board.py`): learned dynamics predict the next board, the lines and the
game over from the board and the action drawn in board coordinates; the agent ranks every
placement by the model's predicted reward plus the critic's value of the predicted board, and
the critic learns only in imagination, on the model's predictions. No Q head, no real return.

Starts from every field's default (`experiments.lib.schema`). `board_features.py` adds heuristic
features of the predicted boards to the critic; `qhead.py` is the model-free baseline (what
this file was until session 7). Why each value was chosen, with the runs that measured it:
docs/RESULTS.md.
"""

from __future__ import annotations

import ml_collections

from experiments.lib import schema


def get_config() -> ml_collections.ConfigDict:
    c = schema.defaults()
    c.env.placement_features = False
    c.agent.qhead = False
    c.agent.world_model = "board"
    # Learning rate far above DreamerV3's 4e-5: small networks and hour-long CPU runs.
    c.agent.lr = 1e-3
    # Shorter warm-up than DreamerV3's 1000 updates, for CPU-length runs.
    c.agent.warmup = 200
    # Two imagined placements from each of the last two replayed states of every sequence: on
    # the CPU every imagined step evaluates the model on all 40 placements.
    c.agent.imag_length = 2
    c.agent.imag_last = 2
    c.seq_len = 32
    c.train_ratio = 32.0
    # About 100k env steps fit in 60 CPU-minutes: reach the empty board by 60k.
    c.curriculum.anneal_steps = 60_000
    return c
