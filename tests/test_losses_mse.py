"""The squared-error loss: per-example values for every target form it accepts."""

import jax.numpy as jnp
import numpy as np
import pytest

from ctlearn.losses import get_loss

mse = get_loss("mse")


def test_real_targets_of_a_single_output_unit_are_per_example():
    outputs = jnp.array([[1.0], [2.0], [0.0]])
    np.testing.assert_allclose(mse(outputs, jnp.array([0.0, 2.5, -1.0])), [0.5, 0.125, 0.5])


def test_labels_are_one_hot_and_full_targets_are_used_as_given():
    outputs = jnp.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(mse(outputs, jnp.array([0, 0])), [0.0, 0.25])
    np.testing.assert_allclose(mse(outputs, jnp.array([[1.0, 1.0], [0.5, 0.5]])), [0.5, 0.0])


def test_targets_that_do_not_match_the_outputs_are_refused():
    with pytest.raises(ValueError, match=r"targets of shape \(3,\) do not match outputs"):
        mse(jnp.zeros((3, 2)), jnp.zeros((3,)))


def test_accuracy_of_one_output_unit_against_binary_targets():
    from ctlearn.losses import accuracy

    outputs = jnp.array([[0.2], [0.7], [0.6], [0.4]])
    targets = jnp.array([0.0, 1.0, 0.0, 0.0])
    assert float(accuracy(outputs, targets)) == pytest.approx(0.75)
    # Integer labels keep the arg-max reading (one class: every example is class 0).
    assert float(accuracy(outputs, jnp.array([0, 0, 0, 1]))) == pytest.approx(0.75)
