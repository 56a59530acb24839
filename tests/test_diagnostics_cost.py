"""XLA's cost analysis and the profiler's per-op times, checked against hand counts."""

import jax
import jax.numpy as jnp
import pytest

from ctlearn.diagnostics import compiled_flops, op_kind, op_times, time_by_kind


def test_compiled_flops_counts_a_matrix_product_by_hand():
    a, b = jnp.ones((64, 48)), jnp.ones((48, 32))
    # One multiply and one add per (row, column, inner index).
    assert compiled_flops(lambda a, b: a @ b, a, b) == pytest.approx(2 * 64 * 48 * 32, rel=0.01)
    # A product computed twice on purpose is counted twice.
    twice = compiled_flops(lambda a, b: (a @ b, (2 * a) @ b), a, b)
    assert twice == pytest.approx(2 * 2 * 64 * 48 * 32, rel=0.02)


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
