"""Matrix-product FLOPs of compiled programs and the profiler's per-op times, checked against
hand counts."""

import jax
import jax.numpy as jnp
import pytest

from ctlearn.diagnostics import (
    compiled_matmul_flops,
    op_kind,
    op_times,
    time_by_kind,
    time_side_by_side,
)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("dot.42", "matrix products"),
        ("ynn_fusion.17", "matrix products"),
        ("copy_bitcast_fusion.3", "layout copies and transposes"),
        ("transpose_copy_fusion", "layout copies and transposes"),
        ("add_select_fusion.1", "elementwise and other"),
    ],
)
def test_op_kind_groups_xla_op_names(name, kind):
    assert op_kind(name) == kind


def test_op_times_sees_the_matrix_product_of_a_compiled_call():
    a = jax.random.normal(jax.random.key(0), (256, 256))
    f = jax.jit(lambda a: jnp.tanh(a @ a))
    times = op_times(lambda: f(a), runs=2)
    assert times and all(t >= 0 for t in times.values())
    kinds = time_by_kind(times)
    assert kinds.get("matrix products", 0.0) > 0
    assert sum(kinds.values()) == pytest.approx(sum(times.values()))
    with pytest.raises(ValueError, match="runs must be positive"):
        op_times(lambda: f(a), runs=0)


def test_compiled_matmul_flops_counts_the_products_the_program_runs():
    a, b = jnp.ones((64, 48)), jnp.ones((48, 32))
    assert compiled_matmul_flops(lambda a, b: a @ b, a, b) == 2 * 64 * 48 * 32
    x, w = jnp.ones((8, 5, 16, 4)), jnp.ones((16, 4, 3))  # a grouped product: batch axis g
    grouped = compiled_matmul_flops(lambda x, w: jnp.einsum("npgh,ghc->npgc", x, w), x, w)
    assert grouped == 2 * (8 * 5 * 16 * 3) * 4
    # The gradient of tanh(a b) with respect to a: the forward product and one more.
    grad = jax.grad(lambda a, b: jnp.sum(jnp.tanh(a @ b)))
    assert compiled_matmul_flops(grad, a, b) == 2 * 2 * 64 * 48 * 32
    # A product whose result is unused is not run, so not counted; elementwise work never is.
    assert compiled_matmul_flops(lambda a, b: (a @ b, jnp.tanh(a))[1], a, b) == 0
    # A product computed twice on purpose is counted twice.
    twice = compiled_matmul_flops(lambda a, b: (a @ b, (2 * a) @ b), a, b)
    assert twice == 2 * 2 * 64 * 48 * 32


def test_time_side_by_side_warms_each_entry_up_in_every_round():
    counts = {"a": 0, "b": 0}

    def call(name):
        counts[name] += 1
        return jnp.zeros(())

    calls = {name: (lambda name=name: call(name)) for name in counts}
    seconds = time_side_by_side(calls, number=2, repeats=3, warmup=1)
    assert set(seconds) == {"a", "b"} and all(s >= 0 for s in seconds.values())
    assert counts == {"a": 1 + 3 * (1 + 2), "b": 1 + 3 * (1 + 2)}  # compile, then warm-up + timed
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        time_side_by_side(calls, warmup=-1)
