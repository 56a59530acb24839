"""Cost noise: the circuit reads every block's cost with band-limited noise on it."""

from __future__ import annotations

from jaxtyping import Array

from ._activity_noise import AbstractFilteredNoise, ActivityNoiseState


class CostNoise(AbstractFilteredNoise):
    """Noise on the cost as the circuit reads it (MGD's C_σ): one band-limited signal ``n`` per
    block (``AbstractFilteredNoise``: standard deviation ``sigma`` in the cost's units,
    correlation time ``tau``), added to every example's block loss, so that the reward rate the
    synapses see carries ``ṅ`` and the cost change ``C̃`` carries ``n``; a ``HighPass`` or a
    ``Differentiator`` filters the noisy cost. The network itself is unchanged. MGD draws white
    noise per time step; here its bandwidth is 1/τ_n, which the fixed step must resolve.
    ``sigma = 0`` is the ideal circuit."""

    sigma: float | Array = 0.0
    tau: float | Array = 0.1

    def time_constants(self):
        return {"cost noise tau": self.tau}

    def noise_shapes(self, signals):
        return [() for _ in signals.losses]

    def cost_noise(self, state: ActivityNoiseState, t):
        return self.noise(state)
