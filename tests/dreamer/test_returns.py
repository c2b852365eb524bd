"""Lambda-returns against hand-computed values, and percentile return normalisation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from dreamer_jax import returns


class LambdaReturnTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_hand_computed_no_terminal(self):
        # R_t = r_{t+1} + c_{t+1} [(1 - lam) V_{t+1} + lam R_{t+1}], R_2 = V_2.
        rew = jnp.array([9.0, 1.0, 2.0])  # rew[0] is never used.
        cont = jnp.array([0.0, 0.5, 0.5])  # cont[0] is never used.
        val = jnp.array([7.0, 10.0, 20.0])
        lam = 0.5
        r2 = 20.0
        r1 = 2.0 + 0.5 * (0.5 * 20.0 + 0.5 * r2)  # 12
        r0 = 1.0 + 0.5 * (0.5 * 10.0 + 0.5 * r1)  # 6.5
        fn = self.variant(returns.lambda_return, static_argnums=4)
        np.testing.assert_allclose(fn(rew, cont, val, jnp.zeros(3), lam), [r0, r1], rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_terminal_cuts_bootstrap(self):
        rew = jnp.array([0.0, 1.0, 5.0, 100.0])
        cont = jnp.array([1.0, 0.9, 0.0, 0.9])  # Step 2 is terminal.
        val = jnp.array([0.0, 3.0, 50.0, 60.0])
        out = self.variant(returns.lambda_return, static_argnums=4)(
            rew, cont, val, jnp.zeros(4), 0.95
        )
        r2 = 100.0 + 0.9 * 60.0
        r1 = 5.0  # c_2 = 0: nothing after the terminal step counts.
        r0 = 1.0 + 0.9 * (0.05 * 3.0 + 0.95 * r1)
        np.testing.assert_allclose(out, [r0, r1, r2], rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_last_cuts_recursion_but_keeps_bootstrap(self):
        rew = jnp.array([0.0, 1.0, 2.0, 3.0])
        cont = jnp.full(4, 0.5)
        boot = jnp.array([0.0, 10.0, 20.0, 30.0])
        last = jnp.array([0.0, 0.0, 1.0, 0.0])  # Episode boundary at step 2.
        out = self.variant(returns.lambda_return, static_argnums=4)(rew, cont, boot, last, 0.8)
        r2 = 3.0 + 0.5 * 30.0
        r1 = 2.0 + 0.5 * 20.0  # l_2 = 0: bootstraps from boot_2 alone.
        r0 = 1.0 + 0.5 * (0.2 * 10.0 + 0.8 * r1)
        np.testing.assert_allclose(out, [r0, r1, r2], rtol=1e-6)

    def test_lambda_one_is_discounted_monte_carlo(self):
        rew = jnp.array([0.0, 1.0, 1.0, 1.0])
        cont = jnp.full(4, 0.9)
        val = jnp.array([0.0, 0.0, 0.0, 10.0])
        out = returns.lambda_return(rew, cont, val, jnp.zeros(4), 1.0)
        np.testing.assert_allclose(out[0], 1 + 0.9 * (1 + 0.9 * (1 + 0.9 * 10)), rtol=1e-6)

    def test_lambda_zero_is_one_step_td(self):
        rew = jnp.array([0.0, 1.0, 2.0])
        cont = jnp.full(3, 0.5)
        val = jnp.array([0.0, 4.0, 8.0])
        out = returns.lambda_return(rew, cont, val, jnp.zeros(3), 0.0)
        np.testing.assert_allclose(out, [1 + 0.5 * 4, 2 + 0.5 * 8], rtol=1e-6)


def test_return_normaliser_ema_of_percentiles():
    state = returns.norm_init()
    x = jnp.arange(101.0)  # P5 = 5, P95 = 95.
    state = returns.norm_update(state, x, rate=0.5)
    np.testing.assert_allclose([state.lo, state.hi], [2.5, 47.5], rtol=1e-6)
    np.testing.assert_allclose(returns.norm_scale(state), 45.0, rtol=1e-6)
    small = returns.norm_update(returns.norm_init(), x * 1e-3, rate=1.0)
    assert float(returns.norm_scale(small, limit=1.0)) == 1.0  # Never scales returns up.
    assert jax.jit(returns.norm_update, static_argnames="rate")(state, x, rate=0.5).lo > 2.5
