"""The board world model: a Dreamer-style agent that learns Tetris through its own model.

    python -m experiments.train --config=experiments/board.py [--config.FIELD=VALUE ...]

`lines_only.py`'s game (10x20, placement mode, 7-bag, lines as the only reward) with no
hand-made features anywhere: the observation is the board, piece, queue, hold and mask. The
world model's state is the board (`dreamer_jax/board.py`): learned dynamics predict the next
board, the lines and the game over from the board and the action drawn in board coordinates;
the agent ranks every placement by the model's predicted reward plus the critic's value of the
predicted board, and the critic learns only in imagination, on the model's predictions.
"""

from __future__ import annotations

import ml_collections

from experiments import lines_only


def get_config() -> ml_collections.ConfigDict:
    c = lines_only.get_config()
    c.env.placement_features = False
    c.agent.qhead = False
    c.agent.world_model = "board"
    # Two imagined placements from each of the last two replayed states of every sequence: on
    # the CPU every imagined step evaluates the model on all 40 placements.
    c.agent.imag_length = 2
    c.agent.imag_last = 2
    c.seq_len = 32
    c.train_ratio = 32.0
    # About 100k env steps fit in 60 CPU-minutes: reach the empty board by 60k.
    c.curriculum.anneal_steps = 60_000
    return c
