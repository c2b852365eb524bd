"""The model-free baseline: DreamerV3's RSSM agent plus a Q head on real afterstate features.

    python -m experiments.train --config=experiments/qhead.py [--config.FIELD=VALUE ...]

Sparse `lines_only` reward, placement mode, 10x20 board, 7-bag. The placements are ranked by a
model-free Q head on the env's real afterstate features, trained on replayed real returns
(`dreamer_jax/qhead.py`): every line this configuration clears comes from that head, not from
the world model (docs/RESULTS.md). It is kept as the baseline row of the tables. Until session
7 this file was `experiments/lines_only.py`; every earlier command in docs/RESULTS.md naming
`lines_only.py` ran this configuration. The headline `lines_only.py` is now the board world
model.

Starts from every field's default (`experiments.lib.schema`); the RSSM variants (`standard.py`,
`debug.py`, `direct.py`) import it and override what differs. Why each value was chosen, with
the runs that measured it: docs/RESULTS.md.
"""

from __future__ import annotations

import ml_collections

from experiments.lib import schema


def get_config() -> ml_collections.ConfigDict:
    c = schema.defaults()
    # The afterstate features of every placement: the actor ranks placements by them and the
    # world model gets the chosen one's with the action (without them nothing learned).
    c.env.placement_features = True
    # Learning rate far above DreamerV3's 4e-5: a tiny model and hour-long CPU runs.
    c.agent.lr = 1e-3
    # Shorter warm-up than DreamerV3's 1000 updates, for CPU-length runs.
    c.agent.warmup = 200
    # Entropy bonus 10x DreamerV3's 3e-4: with 3e-4 the policy collapsed before the world
    # model was useful.
    c.agent.actent = 3e-3
    # A model-free Q head on the placements' real afterstate features, trained on replayed
    # returns, with an actor term over every replayed state (dreamer_jax Config.qhead).
    c.agent.qhead = True
    return c
