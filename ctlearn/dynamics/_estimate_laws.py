"""How well a multiplexed perturbation's integrated estimate points along the gradient: the
first-order theory of cos(Δw, −∇L) after a window of length T, for every multiplexing family.

To first order in σ the loss rate is ṙ = −Σ_j g_j ṗ_j (g = ∇L over the perturbed units), so the
rule's estimate over [0, T] is Δw_i ∝ −Σ_j C_ij g_j with C_ij = ∫₀ᵀ ṗ_i ṗ_j dt, the rates'
correlation. For g of P roughly exchangeable entries the ratio of expectations gives
cos ≈ Σ_i E[C_ii] g_i² / (‖g‖·√(E‖C g‖²)), and for codes whose crosstalk C_ij (i ≠ j) has mean 0
and variance v against a diagonal d this is 1/√(1 + (P − 1)·v/d²). These are NumPy (float64)
formulas, independent of the simulator that they predict.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg


def code_cosine(units: int, chips: float) -> float:
    """Random ±1 codes over ``chips`` whole chips: cos ≈ 1/√(1 + (P − 1)/n) (d = n, v = n)."""
    _positive(units=units, chips=chips)
    return 1 / math.sqrt(1 + (units - 1) / chips)


def time_multiplexed_cosine(units: int, chips: float) -> float:
    """One unit at a time in a random order: after n ≤ P slots only the visited units are
    credited, E cos ≈ √(n/P); exactly 1 (up to O(σ²)) from one full cycle (n = P) on."""
    _positive(units=units, chips=chips)
    return math.sqrt(min(chips, units) / units)


def walsh_cosine(units: int, chips: int, order: int) -> float:
    """Walsh rows drawn from 1 … N − 1 (N = ``order``) after m = ``chips`` chips, m a power of
    two dividing N: rows that agree in their log2(m) low bits coincide over the first m chips,
    so each unit aliases with (P − 1)(N/m − 1)/(N − 2) others on average:
    cos ≈ 1/√(1 + (P − 1)(N/m − 1)/(N − 2)); exactly 1 at m = N."""
    _positive(units=units, chips=chips, order=order)
    if order & (order - 1) or chips & (chips - 1) or order % chips:
        raise ValueError(
            f"walsh_cosine needs powers of two with chips dividing order, got chips={chips}, "
            f"order={order}"
        )
    if order <= 2:
        return 1.0
    return 1 / math.sqrt(1 + (units - 1) * (order / chips - 1) / (order - 2))


def bandwidth_chips(
    band: tuple[float, float], tau: float, duration: float, allocation: str
) -> float:
    """The time-bandwidth law of ``Sinusoids``: for T ≫ τ_p its estimate is as good as random
    codes of n_eff chips, n_eff = 2·Δf·T for ``"independent"`` frequencies over a band of
    Δf = (band[1] − band[0])/τ_p cycles per time unit, and Δf·T for ``"stratified"`` ones (the
    k-th components of all units share 1/(2K) of the band, doubling the density of near
    coincidences). Derived from ``sinusoid_cosine``'s second moments: the crosstalk of two
    components grows as π·T·ρ(0)/4 with ρ(0) the density of their frequency difference at 0.
    ``"grid"`` has no such law (its crosstalk stops growing; see ``grid_period``)."""
    if allocation not in ("independent", "stratified"):
        raise ValueError(
            f"bandwidth_chips covers 'independent' and 'stratified' allocations, got {allocation!r}"
        )
    _positive(tau=tau, duration=duration)
    width = (band[1] - band[0]) / tau
    return (2.0 if allocation == "independent" else 1.0) * width * duration


def grid_period(band: tuple[float, float], tau: float, frequencies: int) -> float:
    """The time over which a ``"grid"`` allocation of M = ``frequencies`` frequencies is exactly
    orthogonal (up to sum-frequency terms): one beat of the grid spacing,
    τ_p·(M − 1)/(band[1] − band[0])."""
    _positive(tau=tau, frequencies=frequencies)
    return tau * max(frequencies - 1, 1) / (band[1] - band[0])


def chip_weights(duration: float, tau: float) -> np.ndarray:
    """Each chip's share of ∫ṗ² within [0, T]: 1 for whole chips and s − sin(4πs)/(4π) for a
    last chip cut at fraction s (the raised-cosine pulse's rate is ∝ sin 2πs)."""
    _positive(duration=duration, tau=tau)
    position = duration / tau
    whole = math.floor(position + 1e-9)
    s = position - whole
    weights = [1.0] * whole
    if s > 1e-9:
        weights.append(s - math.sin(4 * math.pi * s) / (4 * math.pi))
    return np.asarray(weights)


def walsh_signs(rows: np.ndarray, chips: int) -> np.ndarray:
    """The signs [P, chips] of Walsh rows ``rows`` over the first ``chips`` chips, read from
    ``scipy.linalg.hadamard`` (Sylvester's construction)."""
    rows = np.asarray(rows, dtype=np.int64)
    order = 1 << max(int(rows.max()).bit_length(), 1)
    matrix = scipy.linalg.hadamard(order)
    columns = np.arange(chips) % order
    return matrix[rows][:, columns].astype(np.float64)


def slot_signs(slots: np.ndarray, chips: int) -> np.ndarray:
    """The signs [P, chips] of time multiplexing: unit i is on in chips n with n mod P = slot i."""
    slots = np.asarray(slots, dtype=np.int64)
    columns = np.arange(chips) % slots.size
    return (slots[:, None] == columns[None, :]).astype(np.float64)


def first_order_cosine(signs: np.ndarray, weights: np.ndarray, gradient: np.ndarray) -> float:
    """cos(C g, g) with C = S·diag(w)·Sᵀ the rates' correlation of chip codes ``signs`` [P, n]
    (up to a constant), ``weights`` [n] from ``chip_weights``: what a chip code's estimate is to
    first order in σ, for this gradient (deterministic codes need no expectation)."""
    signs = np.asarray(signs, np.float64)
    g = np.asarray(gradient, np.float64).ravel()
    estimate = (signs * np.asarray(weights)[None, :]) @ (signs.T @ g)
    return float(estimate @ g / (np.linalg.norm(estimate) * np.linalg.norm(g)))


def _beat(omega: np.ndarray, duration: float) -> np.ndarray:
    """|∫₀ᵀ e^{iωt} dt|² = 4·sin²(ωT/2)/ω² (T² at ω = 0)."""
    half = 0.5 * omega * duration
    safe = np.where(np.abs(half) < 1e-12, 1.0, half)
    return np.where(np.abs(half) < 1e-12, duration**2, duration**2 * (np.sin(safe) / safe) ** 2)


def sinusoid_cosine(omega: np.ndarray, gradient: np.ndarray, duration: float) -> float:
    """The phase-averaged first-order cos for ``Sinusoids`` with angular frequencies ``omega``
    [K, P] (K components of P units, uniform independent phases, equal rate amplitudes), over a
    window of length T = ``duration``.

    With X_ab = ∫₀ᵀ cos θ_a cos θ_b dt for two components: E[X_ab²] = (B(ω_a − ω_b) +
    B(ω_a + ω_b))/8, B from ``_beat``; E[C_ii] = K·T/2 and E[C_ii²] = (K·T/2)² + 4·Σ_{k<l}E[X²] +
    Σ_k B(2ω_k)/8; E[C_ij²] = Σ_{k,l} E[X²] for i ≠ j; every other covariance vanishes."""
    omega = np.asarray(omega, np.float64)
    g = np.asarray(gradient, np.float64).ravel()
    components, units = omega.shape
    if g.size != units:
        raise ValueError(f"gradient has {g.size} entries for {units} units")
    flat = omega.T.reshape(-1)  # unit-major: unit i's components at i*K … i*K + K − 1
    second = (
        _beat(flat[:, None] - flat[None, :], duration)
        + _beat(flat[:, None] + flat[None, :], duration)
    ) / 8
    pair = second.reshape(units, components, units, components).sum(axis=(1, 3))
    within = second.reshape(units, components, units, components)[
        np.arange(units), :, np.arange(units), :
    ]
    off_diag_within = (within.sum(axis=(1, 2)) - np.trace(within, axis1=1, axis2=2)) / 2
    mean_diag = components * duration / 2
    diag_second = mean_diag**2 + 4 * off_diag_within + _beat(2 * omega.T, duration).sum(axis=1) / 8
    np.fill_diagonal(pair, 0.0)
    norm_sq = np.sum(diag_second * g**2) + np.sum(pair @ g**2)
    return float(mean_diag * np.sum(g**2) / (np.linalg.norm(g) * math.sqrt(norm_sq)))


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be finite and > 0, got {name}={value!r}")
