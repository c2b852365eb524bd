"""The README's example of your own environment ("Your own environment"): walk right from cell 0
to cell 9 of a corridor; reward 1 on arrival (termination); a 20-step time limit (truncation)."""

import jax
import jax.numpy as jnp

from dreamer_jax.envs import FieldSpec, TimeStep


class Corridor:
    num_actions, episode_metrics = 2, {"length": "t"}  # Actions: 0 left, 1 right.

    def observation_spec(self):
        return {"pos": FieldSpec((), "int32", "categorical", 10)}

    def reset(self, key):
        s = {"pos": jnp.int32(0), "t": jnp.int32(0), "done": jnp.bool_(False)}
        no = jnp.bool_(False)
        return s, TimeStep(
            {"pos": s["pos"]}, jnp.float32(0), jnp.bool_(True), no, no, {"t": s["t"]}
        )

    def step(self, s, action):
        pos, t = jnp.clip(s["pos"] + 2 * action - 1, 0, 9), s["t"] + 1
        end = pos == 9
        s = {"pos": pos, "t": t, "done": end | (t >= 20)}
        obs, no = {"pos": pos}, jnp.bool_(False)
        return s, TimeStep(obs, end.astype(jnp.float32), no, s["done"], end, {"t": t})

    def auto_reset_step(self, s, action):
        pick = lambda u, v: jnp.where(s["done"], u, v)
        return jax.tree.map(pick, self.reset(None), self.step(s, action))
