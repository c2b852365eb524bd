"""The features agent as its best runs train it: `board_features.py` plus the row-pooled decoder.

    python -m experiments.train --config=experiments/board_features_pool.py [--config.FIELD=V ...]

`board_features.py` (the board world model ranks placements by its predicted reward plus the
critic's value of its predicted board, the critic reading heuristic features of that predicted
board; no Q head, no real afterstate features) with the settings of the session-14 runs
(docs/RESULTS.md): the row-pooled second decoder in the dynamics (`board_row_pool=8`), two
model-only optimizer steps per update (`board_model_steps=2`), DreamerV3's replay-value loss
(`board_repval=0.3`), batch 32 and train ratio 64. The same as those runs' command line.
"""

from __future__ import annotations

import ml_collections

from experiments import board_features


def get_config() -> ml_collections.ConfigDict:
    c = board_features.get_config()
    c.agent.board_row_pool = 8
    c.agent.board_model_steps = 2
    c.agent.board_repval = 0.3
    c.batch_size = 32
    c.train_ratio = 64
    return c
