"""dreamer_jax: a DreamerV3-style agent (world model, actor-critic, replay) in JAX and Flax."""
