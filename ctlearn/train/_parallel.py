"""Data parallelism with ``jax.sharding``: batches split over devices, the state replicated.

The same code runs on one device, on several devices of one process (e.g. CPU with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``), and on several hosts after
``initialize_distributed``. No estimator changes: a jit-compiled step given a batch sharded along
its first axis and a replicated state is partitioned by the compiler (GSPMD), which inserts the
reductions over the batch; random draws made inside jit do not depend on the sharding.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PyTree

from .._mesh import (
    check_divisible,
    line_mesh,
    replicate,
    replicated,
    resolve_devices,
    split_leading,
    split_sharding,
)

BATCH_AXIS = "batch"


class DataParallel:
    """A one-axis mesh (``"batch"``) over ``devices``: batches are split along their first axis,
    everything else is replicated on every device (``batch_sharding`` and ``replicated``).

    With several processes (hosts), ``devices`` spans all of them and every process passes the same
    global batch to ``shard_batch``; each process sends only the rows its own devices hold.
    """

    def __init__(self, devices: Sequence[jax.Device]):
        if not devices:
            raise ValueError("DataParallel needs at least one device")
        self.mesh = line_mesh(devices, BATCH_AXIS)
        self.batch_sharding = split_sharding(self.mesh)
        self.replicated = replicated(self.mesh)

    @classmethod
    def over(cls, count: int | None = None) -> DataParallel:
        """The first ``count`` of ``jax.devices()`` (all processes' devices); ``None`` takes all."""
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, numbers.Integral)
        ):
            raise ValueError(f"devices must be a positive integer or None, got {count!r}")
        return cls(resolve_devices(count))

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    def check_batch_size(self, batch_size: int, name: str = "batch_size") -> None:
        """Raises unless ``batch_size`` splits evenly over the devices."""
        check_divisible(batch_size, self.num_devices, name)

    def shard_batch(self, batch: PyTree[Array]) -> PyTree[Array]:
        """Places every array of ``batch`` (each of leading size ``batch_size``) split over the
        devices. With several processes, every process passes the same global batch."""
        jax.tree.map(lambda a: self.check_batch_size(a.shape[0]), batch)
        return split_leading(batch, self.batch_sharding)

    def replicate(self, tree: PyTree) -> PyTree:
        """``tree`` with every array leaf held whole on every device (other leaves unchanged).
        With several processes, the arrays must be equal on every process (JAX checks)."""
        return replicate(tree, self.replicated)

    def pad_batch(
        self, x: Float[Array, " n *input"], y: Int[Array, " n"]
    ) -> tuple[Float[Array, " m *input"], Int[Array, " m"], Bool[Array, " m"]]:
        """``x`` and ``y`` padded with zeros to the next multiple of the device count, and the mask
        of the real examples (for a final, shorter evaluation batch)."""
        n = y.shape[0]
        pad = -n % self.num_devices
        mask = jnp.arange(n + pad) < n
        if pad:
            x = jnp.concatenate([x, jnp.zeros((pad, *x.shape[1:]), x.dtype)])
            y = jnp.concatenate([y, jnp.zeros((pad,), y.dtype)])
        return x, y, mask


def data_parallel(devices: int | None) -> DataParallel | None:
    """The mesh for a run's ``devices`` setting, or ``None`` when it resolves to one device (the
    plain single-device path, with no sharding)."""
    parallel = DataParallel.over(devices)
    return parallel if parallel.num_devices > 1 else None


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    **kwargs: Any,
) -> None:
    """Joins this process to a multi-host run (``jax.distributed.initialize``, which ``kwargs``
    go to); call it first, before any other JAX call.

    Unset arguments come from the environment: JAX detects SLURM, Open MPI, Kubernetes and Cloud
    TPU jobs; elsewhere set ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0),
    ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` on every host. Afterwards ``jax.devices()`` lists
    every host's devices and ``DataParallel`` spans them all. Each process runs the same program
    on the same data and seed: the training loop gives every process the same global batch and
    each one feeds its own devices' rows.
    """
    if num_processes is None and "JAX_NUM_PROCESSES" in os.environ:
        num_processes = int(os.environ["JAX_NUM_PROCESSES"])
    if process_id is None and "JAX_PROCESS_ID" in os.environ:
        process_id = int(os.environ["JAX_PROCESS_ID"])
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        **kwargs,
    )
