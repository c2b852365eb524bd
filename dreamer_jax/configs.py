"""Agent configuration: one frozen dataclass, named size presets and up-front validation.

`get_config("12m", batch_size=32)` returns a validated `Config`; every user error (an unknown
preset, a batch length below 2, an odd dtype, inconsistent sizes) raises `ConfigError` naming
the field, the value and what is allowed, before anything is traced or compiled.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class ConfigError(ValueError):
    """A configuration value a user chose is invalid; the message names the field."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Hyperparameters of the world model, actor-critic and optimizer (DreamerV3 defaults)."""

    preset: str = "12m"  # Name of the size preset these values started from.
    # Sizes.
    deter: int = 2048  # GRU state size.
    hidden: int = 256  # Width of the GRU input projections and prior/posterior layers.
    stoch: int = 32  # Number of categorical latents.
    classes: int = 16  # Classes per latent.
    blocks: int = 8  # Blocks of the block-diagonal GRU (1 = dense GRU).
    units: int = 256  # Width of encoder, decoder and head MLPs.
    enc_layers: int = 3  # Encoder MLP layers.
    dec_layers: int = 3  # Decoder MLP layers.
    conv_depth: int = 0  # Channels of the unpooled 3x3 board conv in the encoder (0 = off).
    conv_layers: int = 2  # Conv layers when conv_depth > 0.
    prior_layers: int = 2  # Prior MLP layers on deter.
    post_layers: int = 1  # Posterior MLP layers on concat(deter, embedding).
    rew_layers: int = 1  # Reward head MLP layers.
    con_layers: int = 1  # Continue head MLP layers.
    actor_layers: int = 3  # Actor MLP layers.
    critic_layers: int = 3  # Critic MLP layers.
    bins: int = 255  # Twohot bins of reward and critic (odd, so one bin sits at 0).
    # World model.
    unimix: float = 0.01  # Uniform mix of latent and action categoricals.
    free_nats: float = 1.0  # Free bits, applied to dyn and rep after summing over latents.
    # Loss scales.
    scale_rec: float = 1.0
    scale_rew: float = 1.0
    scale_con: float = 1.0
    scale_dyn: float = 1.0
    scale_rep: float = 0.1
    scale_policy: float = 1.0
    scale_value: float = 1.0
    scale_repval: float = 0.3
    # Actor-critic.
    imag_length: int = 15  # Imagination steps from every posterior state.
    imag_last: int = 0  # Imagine only from the last K states of each sequence (0 = all).
    horizon: int = 333  # Discount 1 - 1/horizon, folded into the continue target.
    lam: float = 0.95  # Lambda of the lambda-returns.
    actent: float = 3e-4  # Entropy bonus.
    actor_outscale: float = 0.01  # Init scale of the actor output (near-uniform start).
    # Action-features field only: a Q head, Q(s, a) from the latent and each action's features,
    # trained on every replayed step's real lambda-return (bootstrapped from max_a Q), and an
    # actor term over every replayed state, sum_a pi(a) sg(Q(s, a) - E_pi Q) / scale; see
    # dreamer_jax/qhead.py. Ranks actions by real afterstates, not by imagined next states.
    qhead: bool = False
    scale_qval: float = 1.0
    scale_qpolicy: float = 1.0
    # World model kind: "rssm" (DreamerV3's recurrent latent model) or "board" (the board is the
    # state: learned board dynamics and lookahead through them, `dreamer_jax/board.py`).
    world_model: str = "rssm"
    board_arch: str = "mixer"  # Board networks: "mixer" (column mixer) or "mlp".
    board_dim: int = 64  # Width of the board networks.
    board_layers: int = 3  # Mixer blocks (or MLP layers) of the board networks.
    # Board dynamics, mixer only: attention blocks across row tokens of width board_row_dim
    # (a line clear acts on rows), adding to the column decoder's cell logits; 0 = none.
    board_row_layers: int = 0
    board_row_dim: int = 64
    # Board dynamics, mixer only: per-row summaries of this width (the column decoder's cell
    # features pooled over columns) fed to a second column decoder (0: none). For line clears.
    board_row_pool: int = 0
    board_explore: float = 0.1  # Board agent: share of random actions when sampling.
    board_imag_explore: float = 0.0  # Board agent: the same, in imagined rollouts.
    board_event_weight: float = 10.0  # Board model: weight of the reward loss where reward != 0.
    # Board model: weight of the next-board loss on steps that clear lines (reward > 0), where
    # its errors are (docs/RESULTS.md, session 8: 97.5% exact without a clear, 32% on doubles).
    board_clear_weight: float = 1.0
    # Board agent: the critic also reads heuristic features of each board it values (holes,
    # transitions, wells, heights: the env's `board_features`), computed on the model's
    # predicted boards, never on real afterstates.
    board_features: bool = False
    # Board agent: scale of DreamerV3's replay-value loss, here on every replayed step (the
    # critic of real boards trained on real rewards' lambda-returns, bootstrapped from the
    # imagination returns and its own values); 0 = the critic learns in imagination only.
    board_repval: float = 0.0
    # Board agent: sequences of each batch that imagination (and the replay-value loss) start
    # from; the world model trains on all batch_size (0 = all). With a larger batch_size this
    # buys the model more data per update at the cost of the model's gradient alone, where
    # imagination (the 40-way lookahead at every imagined step) is most of an update.
    board_imag_batch: int = 0
    # Board agent, a diagnostic: the env's real rules (its `board_step`) in place of the learned
    # model, in acting and in imagination, and no model is trained. What the critic's learning
    # can reach with a perfect model; never the agent's result (the agent plans through its own).
    board_oracle: bool = False
    # Board agent, policy mode "plan2" (two placements deep through the model): how many of the
    # best first placements (by the one-placement score) are expanded by every placement of the
    # next piece. Imagination is one placement deep unless board_imag_plan2.
    board_plan_width: int = 8
    # Board agent: collect training data with plan2 (width board_plan_width) in place of the
    # one-placement lookahead, exploring as board_explore says. Needs a queue of >= 2 pieces.
    # About (1 + board_plan_width) times the acting cost; imagination is unchanged. On
    # lines_only.py (width 2, 3 seeds) it did not raise greedy play (docs/RESULTS.md, session 29).
    board_act_plan2: bool = False
    # Board agent: imagined rollouts follow plan2 (width board_plan_width) in place of the
    # one-placement lookahead, so the critic learns the value of the two-deep search's policy
    # (search as policy improvement, the critic then greedy-ranked by it). Needs a queue of
    # >= imag_length + 1 pieces (every imagined plan2 step knows the two pieces after it).
    # About (1 + board_plan_width) times the imagination cost.
    board_imag_plan2: bool = False
    # Board agent: optimizer steps of the world model per update. The batch is split into this
    # many parts along the batch axis; the model takes a step on each of the first n - 1 alone
    # (the critic and its optimizer state untouched), then the usual full step (model and
    # critic) on the last. The model is limited by its updates and imagination is most of an
    # update's cost: this buys the model updates without imagination. 1 = the usual step.
    board_model_steps: int = 1
    slowreg: float = 1.0  # Critic regulariser towards the slow critic.
    slow_rate: float = 0.02  # EMA rate of the slow critic per update.
    retnorm_rate: float = 0.01  # EMA rate of the return percentiles.
    retnorm_limit: float = 1.0  # Returns are scaled by 1 / max(limit, P95 - P5).
    retnorm_lo: float = 5.0  # Lower percentile.
    retnorm_hi: float = 95.0  # Upper percentile.
    mask_threshold: float = 0.5  # Predicted-mask probability above which an action is allowed.
    # Optimizer.
    lr: float = 4e-5
    agc: float = 0.3  # Adaptive gradient clipping ratio per tensor.
    eps: float = 1e-20  # RMS scaling epsilon.
    beta1: float = 0.9  # Momentum.
    beta2: float = 0.999  # RMS decay.
    warmup: int = 1000  # Linear learning-rate warm-up steps.
    # Data and compute.
    batch_size: int = 16  # Sequences per update.
    batch_length: int = 64  # Steps per sequence.
    compute_dtype: str = "float32"  # "float32" or "bfloat16" (parameters stay float32).
    unroll: int = 1  # Scan unroll factor of observe and imagine (speed only, same maths).
    remat: bool = False  # Recompute observe steps in the backward pass (speed/memory only).

    def replace(self, **kwargs: Any) -> Config:
        """A validated copy with some fields changed."""
        return validate(dataclasses.replace(self, **kwargs))


_SIZES = {
    # Test/CPU size. Imagines from the last 4 steps of each sequence only, and recomputes
    # observe steps in the backward pass: on CPU, per-op overhead, not FLOPs, sets the speed.
    "tiny": dict(
        deter=64,
        hidden=32,
        classes=4,
        stoch=32,
        blocks=4,
        units=32,
        enc_layers=1,
        dec_layers=1,
        prior_layers=1,
        actor_layers=1,
        critic_layers=1,
        imag_last=4,
        remat=True,
    ),
    "1m": dict(deter=512, hidden=64, classes=4, units=64),
    "12m": dict(deter=2048, hidden=256, classes=16, units=256, conv_depth=16),
    "50m": dict(deter=4096, hidden=512, classes=32, units=512, conv_depth=32),
}
PRESETS = tuple(_SIZES)
DTYPES = ("float32", "bfloat16")
WORLD_MODELS = ("rssm", "board")
BOARD_ARCHS = ("mixer", "mlp")


def get_config(preset: str = "12m", **overrides: Any) -> Config:
    """The named size preset (`tiny`, `1m`, `12m`, `50m`) with `overrides`, validated."""
    if preset not in _SIZES:
        raise ConfigError(f"preset: unknown preset {preset!r}; allowed: {', '.join(PRESETS)}")
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"{unknown[0]}: not a Config field (fields: {', '.join(sorted(names))})")
    return validate(Config(preset=preset, **{**_SIZES[preset], **overrides}))


def validate(config: Config) -> Config:
    """Check every field; raise `ConfigError` naming the first bad one. Returns `config`."""

    def fail(field: str, allowed: str) -> None:
        value = getattr(config, field)
        raise ConfigError(f"{field}: got {value!r}; {allowed}")

    if config.preset not in _SIZES:
        fail("preset", f"allowed: {', '.join(PRESETS)}")
    if config.compute_dtype not in DTYPES:
        fail("compute_dtype", f"allowed: {', '.join(DTYPES)}")
    if config.world_model not in WORLD_MODELS:
        fail("world_model", f"allowed: {', '.join(WORLD_MODELS)}")
    if config.board_arch not in BOARD_ARCHS:
        fail("board_arch", f"allowed: {', '.join(BOARD_ARCHS)}")
    positive_ints = (
        "board_dim",
        "board_layers",
        "board_model_steps",
        "board_row_dim",
        "deter",
        "hidden",
        "stoch",
        "classes",
        "blocks",
        "units",
        "enc_layers",
        "dec_layers",
        "prior_layers",
        "post_layers",
        "rew_layers",
        "con_layers",
        "actor_layers",
        "critic_layers",
        "imag_length",
        "horizon",
        "batch_size",
        "unroll",
        "board_plan_width",
    )
    for field in positive_ints:
        value = getattr(config, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            fail(field, "must be an integer >= 1")
    for field in (
        "conv_depth",
        "conv_layers",
        "warmup",
        "imag_last",
        "board_row_layers",
        "board_row_pool",
        "board_imag_batch",
    ):
        value = getattr(config, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            fail(field, "must be an integer >= 0")
    if not isinstance(config.batch_length, int) or config.batch_length < 2:
        fail("batch_length", "must be an integer >= 2 (the losses need a next step)")
    if config.imag_last == 1:
        fail("imag_last", "must be 0 (all) or >= 2 (the replay-value loss needs a next step)")
    if config.classes < 2:
        fail("classes", "must be >= 2")
    if not isinstance(config.bins, int) or config.bins < 3 or config.bins % 2 == 0:
        fail("bins", "must be an odd integer >= 3 (one bin exactly at 0)")
    if config.deter % config.blocks:
        fail("blocks", f"must divide deter={config.deter}")
    if config.conv_depth and not config.conv_layers:
        fail("conv_layers", "must be >= 1 when conv_depth > 0")
    for field in ("board_row_layers", "board_row_pool"):
        if getattr(config, field) and config.board_arch != "mixer":
            fail(field, f"needs board_arch='mixer', got {config.board_arch!r}")
    if config.batch_size % config.board_model_steps:
        fail("board_model_steps", f"must divide batch_size={config.batch_size}")
    if config.board_model_steps > 1 and (config.board_imag_batch or config.board_oracle):
        fail("board_model_steps", "> 1 cannot be combined with board_imag_batch or board_oracle")
    if config.board_imag_batch > config.batch_size:
        fail("board_imag_batch", f"must be <= batch_size={config.batch_size} (0 = all)")
    for field in ("board_features", "board_oracle", "board_act_plan2", "board_imag_plan2"):
        if not isinstance(getattr(config, field), bool):
            fail(field, f"must be True or False, got {getattr(config, field)!r}")
        if getattr(config, field) and config.world_model != "board":
            fail(field, f"needs world_model='board', got {config.world_model!r}")
    for field in ("board_explore", "board_imag_explore"):
        if not 0.0 <= getattr(config, field) <= 1.0:
            fail(field, "must be in [0, 1]")
    for field in ("unimix", "lam", "slow_rate", "retnorm_rate", "beta1", "beta2"):
        if not 0.0 <= getattr(config, field) < 1.0:
            fail(field, "must be in [0, 1)")
    if not 0.0 < config.mask_threshold < 1.0:
        fail("mask_threshold", "must be in (0, 1)")
    if not 0.0 <= config.retnorm_lo < config.retnorm_hi <= 100.0:
        fail("retnorm_lo", f"need 0 <= retnorm_lo < retnorm_hi={config.retnorm_hi} <= 100")
    nonneg = [f.name for f in dataclasses.fields(Config) if f.name.startswith("scale_")]
    for field in (
        *nonneg,
        "board_event_weight",
        "board_clear_weight",
        "board_repval",
        "free_nats",
        "actent",
        "slowreg",
        "agc",
        "eps",
        "retnorm_limit",
    ):
        if getattr(config, field) < 0:
            fail(field, "must be >= 0")
    if not config.lr > 0:
        fail("lr", "must be > 0")
    if config.actor_outscale < 0:
        fail("actor_outscale", "must be >= 0")
    return config
