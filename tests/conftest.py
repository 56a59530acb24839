import os

os.environ.setdefault("CTLEARN_OFFLINE", "1")  # never let a test wait on TFDS downloads

import equinox as eqx
import jax
import numpy as np
import pytest


@pytest.fixture
def getkey():
    """A fresh, reproducible PRNG key per call."""
    counter = iter(range(10**6))
    base = jax.random.PRNGKey(1234)
    return lambda: jax.random.fold_in(base, next(counter))


def tree_allclose(a, b, **tolerances) -> bool:
    la, lb = (
        jax.tree.leaves(eqx.filter(a, eqx.is_array)),
        jax.tree.leaves(eqx.filter(b, eqx.is_array)),
    )
    return len(la) == len(lb) and all(
        np.allclose(np.asarray(x), np.asarray(y), **tolerances) for x, y in zip(la, lb)
    )
