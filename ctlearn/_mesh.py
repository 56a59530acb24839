"""One-axis device meshes, shared by data parallelism (``ctlearn.train.DataParallel``) and sharded
ensembles (``ctlearn.dynamics.simulate_ensemble``): which devices a run uses, arrays split along
their first axis over them or replicated on all of them, and small results brought back to the host.

Everything here works the same on one host and on several after ``jax.distributed.initialize``
(``ctlearn.train.initialize_distributed``): ``jax.devices()`` then lists every host's devices,
every process passes the same global arrays, and each one transfers only its own devices' rows.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import equinox as eqx
import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

Devices = int | Sequence[jax.Device] | None
"""A run's devices: ``None`` (all of ``jax.devices()``), a count (the first that many) or a list."""


def resolve_devices(devices: Devices) -> tuple[jax.Device, ...]:
    """The devices that ``devices`` names, checked: a count is at least 1 and at most what JAX
    sees, and with several processes only all of them (the mesh must span every process)."""
    available = jax.devices()
    if devices is None:
        return tuple(available)
    if isinstance(devices, numbers.Integral) and not isinstance(devices, bool):
        count = int(devices)
        if count < 1:
            raise ValueError(f"devices must be a positive integer or None, got {devices!r}")
        if count > len(available):
            raise ValueError(
                f"devices={count} asks for more devices than JAX sees ({len(available)} "
                f"{available[0].platform} device(s)); on CPU, XLA_FLAGS="
                f"--xla_force_host_platform_device_count={count} makes {count} host devices"
            )
        if jax.process_count() > 1 and count != len(available):
            raise ValueError(
                f"devices={count}: with {jax.process_count()} processes the mesh spans every "
                f"device ({len(available)}); leave devices unset"
            )
        return tuple(available[:count])
    if isinstance(devices, (str, bytes)) or not isinstance(devices, Sequence):
        raise ValueError(
            f"devices must be None, a positive integer or a list of jax devices, got {devices!r}"
        )
    chosen = tuple(devices)
    if not chosen or not all(isinstance(d, jax.Device) for d in chosen):
        raise ValueError(f"devices must be a non-empty list of jax devices, got {devices!r}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"devices lists a device more than once: {list(chosen)}")
    return chosen


def line_mesh(devices: Sequence[jax.Device], axis: str) -> Mesh:
    """A one-axis mesh named ``axis`` over ``devices``, in their order."""
    if not devices:
        raise ValueError("a mesh needs at least one device")
    return Mesh(np.array(devices), (axis,))


def split_sharding(mesh: Mesh) -> NamedSharding:
    """Arrays split along their first axis over the devices of a one-axis ``mesh``."""
    return NamedSharding(mesh, PartitionSpec(*mesh.axis_names))


def replicated(mesh: Mesh) -> NamedSharding:
    """Arrays held whole on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def check_divisible(size: int, num_devices: int, name: str) -> None:
    """Raises, naming both numbers and the valid choices, unless ``size`` rows split evenly over
    ``num_devices`` devices."""
    if size % num_devices:
        multiples = ", ".join(str(num_devices * k) for k in range(1, 4))
        counts = [d for d in range(1, min(size, jax.device_count()) + 1) if size % d == 0]
        raise ValueError(
            f"{name} {size} is not divisible by the {num_devices} devices in use: make {name} "
            f"a multiple of {num_devices} ({multiples}, ...), or use a number of devices "
            f"(devices=, --devices) that divides {size} "
            f"({', '.join(map(str, counts))} of the {jax.device_count()} available)"
        )


def split_leading(tree: PyTree, sharding: NamedSharding) -> PyTree:
    """``tree`` with every array leaf split along its first axis as ``sharding`` says (other
    leaves unchanged). With several processes every process passes the same global arrays and
    transfers only the rows its own devices hold."""
    arrays, static = eqx.partition(tree, eqx.is_array)
    if jax.process_count() == 1:
        return eqx.combine(jax.device_put(arrays, sharding), static)
    placed = jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a), a.shape),
        arrays,
    )
    return eqx.combine(placed, static)


def replicate(tree: PyTree, sharding: NamedSharding) -> PyTree:
    """``tree`` with every array leaf held whole on every device of ``sharding`` (a replicated
    sharding; other leaves unchanged). With several processes the arrays must be equal on every
    process (JAX checks)."""
    arrays, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.device_put(arrays, sharding), static)


def to_host(tree: PyTree) -> PyTree:
    """Every array leaf of ``tree`` as a whole NumPy array on this host, gathered from the other
    processes where it is spread over several (meant for small results such as metrics)."""

    def gather(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(a, tiled=True))
        return np.asarray(a)

    return jax.tree.map(lambda a: gather(a) if eqx.is_array(a) else a, tree)
