"""Contrastive data augmentations in pure JAX (BYOL / SimCLR two-view training).

Every function takes a batch and a ``key`` and draws independently per example (one row of
uniforms per example, the op vmapped over examples and rows). Images are ``[N, H, W, C]``
floats in [0, 1] with C = 1 or 3; 1-D signals (e.g. MNIST-1D) are ``[N, L]`` or ``[N, L, C]``
and only support ``random_resized_crop`` and ``random_flip``. Configuration arguments
(probabilities, strengths, ranges) are static Python numbers, checked before any work; an op
whose probability or strength is 0 is skipped statically, so it is exactly the identity.
Outputs have the input's shape and dtype.

The BYOL settings (Grill et al. 2020, Table 6), used by the seed paper's contrastive runs with a
crop-area lower bound of 0.3-0.5 (Appendix 11), are ``Augmentation.byol(view=1 | 2)``.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

# ITU-R 601-2 luma, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)
# Candidate boxes per example in random_resized_crop (torchvision's number of attempts).
_CROP_ATTEMPTS = 10


# ---------------------------------------------------------------------------------------------
# Validation (static: on shapes and Python numbers, before any work)


def _check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1]; got {p!r}")


def _check_strength(name: str, value: float, upper: float = math.inf) -> None:
    if not 0.0 <= value <= upper:
        raise ValueError(f"{name} must be in [0, {upper}]; got {value!r}")


def _check_interval(name: str, interval: tuple[float, float], upper: float = math.inf) -> None:
    bound = "1" if upper == 1.0 else "inf"
    if len(interval) != 2 or not 0.0 < interval[0] <= interval[1] <= upper:
        raise ValueError(
            f"{name} must be a pair (lo, hi) with 0 < lo <= hi <= {bound}; got {interval!r}"
        )


def _check_batch(x: Array, op: str) -> None:
    if x.ndim not in (2, 3, 4) or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(
            f"{op} needs a float batch of signals [N, L] / [N, L, C] or images [N, H, W, C]; "
            f"got shape {x.shape} and dtype {x.dtype}"
        )


def _check_images(x: Array, op: str, *, colour: bool = False) -> None:
    _check_batch(x, op)
    if x.ndim != 4:
        raise ValueError(
            f"{op} needs images [N, H, W, C]; got shape {x.shape}, a 1-D signal, which has no "
            "colour or 2-D structure (only random_resized_crop and random_flip apply to signals)"
        )
    if colour and x.shape[-1] not in (1, 3):
        raise ValueError(f"{op} needs C = 1 or 3 channels; got shape {x.shape}")


def _per_example(fn, x: Array, draws: int, key: PRNGKeyArray) -> Array:
    """vmap ``fn(example, u)`` over the batch, u being ``draws`` uniforms in [0, 1) per example.

    The uniforms of all examples come from one call, [N, draws], whose rows are independent:
    each jax.random call costs ~0.3 s of CPU compile time, one call per example key would not.
    """
    return jax.vmap(fn)(x, jax.random.uniform(key, (x.shape[0], draws)))


def _apply_with_probability(fn, x: Array, p: float, key: PRNGKeyArray, draws: int = 0) -> Array:
    """``fn(example, u)`` applied to each example independently with probability ``p``."""

    def one(xi: Array, ui: Array) -> Array:
        return jnp.where(ui[0] < p, fn(xi, ui[1:]), xi)

    return _per_example(one, x, draws + 1, key)


def _lerp(u: Array, interval: tuple[float, float]) -> Array:
    """Map uniforms in [0, 1) to [lo, hi)."""
    return interval[0] + (interval[1] - interval[0]) * u


# ---------------------------------------------------------------------------------------------
# Geometry: images and signals


def _crop_size(
    u: Float[Array, " 2*attempts"],
    size: tuple[int, int],
    area: tuple[float, float],
    ratio: tuple[float, float],
) -> Float[Array, " 2"]:
    """A box (height, width) of area fraction in ``area`` and aspect w/h in ``ratio`` that fits.

    As torchvision: the first of ``_CROP_ATTEMPTS`` candidates that fits, else the whole image.
    Sizes are continuous (sub-pixel); the bilinear resize handles fractional boxes.
    """
    h_img, w_img = size
    target = h_img * w_img * _lerp(u[:_CROP_ATTEMPTS], area)
    log_ratio = _lerp(u[_CROP_ATTEMPTS:], (math.log(ratio[0]), math.log(ratio[1])))
    hw = jnp.stack([jnp.sqrt(target / jnp.exp(log_ratio)), jnp.sqrt(target * jnp.exp(log_ratio))])
    fits = (hw[0] <= h_img) & (hw[1] <= w_img)
    first = jnp.argmax(fits)
    return jnp.where(fits[first], hw[:, first], jnp.array([h_img, w_img], hw.dtype))


def _crop_resize(x: Array, u: Array, box: Array, axes: tuple[int, ...]) -> Array:
    """Bilinear resize of the box of size ``box`` (one per axis) at offset u (full - box) to full
    size, u being uniforms in [0, 1) (one per axis)."""
    full = jnp.array([x.shape[a] for a in axes], box.dtype)
    offset = u * (full - box)
    scale = full / box
    # scale_and_translate samples input position (o + 1/2 - t) / s for output pixel o; we want
    # offset + (o + 1/2) / s, so t = -offset * s.
    return jax.image.scale_and_translate(
        x, x.shape, axes, scale, -offset * scale, method="linear", antialias=False
    ).astype(x.dtype)


def random_resized_crop(
    x: Float[Array, " batch *spatial"],
    *,
    area: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    key: PRNGKeyArray,
) -> Float[Array, " batch *spatial"]:
    """Crop a random box per example and resize it back to the input size (bilinear).

    Images [N, H, W, C]: the box covers a fraction of the image area uniform in ``area`` with
    aspect ratio w/h log-uniform in ``ratio`` (torchvision's RandomResizedCrop, sub-pixel box).
    Signals [N, L] / [N, L, C]: the window covers a fraction of the length uniform in ``area``
    (``ratio`` is unused). The box position is uniform over the positions where it fits.
    """
    _check_batch(x, "random_resized_crop")
    _check_interval("random_resized_crop area", area, upper=1.0)
    _check_interval("random_resized_crop ratio", ratio)
    squeeze = x.ndim == 2
    y = x[..., None] if squeeze else x
    if y.ndim == 4:
        h_img, w_img = y.shape[1:3]

        draws = 2 * _CROP_ATTEMPTS + 2

        def one(xi: Array, ui: Array) -> Array:
            box = _crop_size(ui[:-2], (h_img, w_img), area, ratio)
            return _crop_resize(xi, ui[-2:], box, (0, 1))

    else:
        length, draws = y.shape[1], 2

        def one(xi: Array, ui: Array) -> Array:
            return _crop_resize(xi, ui[1:], length * _lerp(ui[:1], area), (0,))

    y = _per_example(one, y, draws, key)
    return y[..., 0] if squeeze else y


def random_flip(
    x: Float[Array, " batch *spatial"], *, p: float = 0.5, key: PRNGKeyArray
) -> Float[Array, " batch *spatial"]:
    """Flip each example with probability ``p``: images horizontally (along W), signals along L."""
    _check_batch(x, "random_flip")
    _check_probability("random_flip p", p)
    if p == 0.0:
        return x
    axis = 1 if x.ndim == 4 else 0  # per-example axis: W of [H, W, C], L of [L] / [L, C]
    return _apply_with_probability(lambda xi, _: jnp.flip(xi, axis), x, p, key)


# ---------------------------------------------------------------------------------------------
# Colour: images only


def _frac(x: Array) -> Array:
    # x mod 1; jnp.mod (an fmod) is several times slower on CPU.
    return x - jnp.floor(x)


def rgb_to_hsv(rgb: Float[Array, "*batch 3"]) -> Float[Array, "*batch 3"]:
    """RGB in [0, 1] to HSV in [0, 1], hue in turns (0 = red, 1/3 = green, 2/3 = blue)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = jnp.max(rgb, axis=-1)
    delta = v - jnp.min(rgb, axis=-1)
    s = jnp.where(v > 0, delta / jnp.where(v > 0, v, 1.0), 0.0)
    safe = jnp.where(delta > 0, delta, 1.0)
    h = jnp.where(
        v == r, (g - b) / safe, jnp.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)
    )
    h = jnp.where(delta > 0, _frac(h / 6.0), 0.0)
    return jnp.stack([h, s, v], axis=-1)


def hsv_to_rgb(hsv: Float[Array, "*batch 3"]) -> Float[Array, "*batch 3"]:
    """Inverse of ``rgb_to_hsv``: channel n of (R, G, B) is v - v s clip(min(k, 4 - k), 0, 1)
    with k = (n' + 6 h) mod 6 and n' = 5, 3, 1."""
    h, s, v = hsv[..., 0:1], hsv[..., 1:2], hsv[..., 2:3]
    k = 6.0 * _frac(jnp.array([5.0, 3.0, 1.0], hsv.dtype) / 6.0 + h)
    return v - v * s * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)


def _gray(x: Float[Array, "h w c"]) -> Float[Array, "h w 1"]:
    if x.shape[-1] == 1:
        return x
    return jnp.tensordot(x, jnp.array(_LUMA, x.dtype), axes=1)[..., None]


def _check_jitter_channels(images: Array, saturation: float, hue: float) -> None:
    if images.shape[-1] == 1 and (saturation or hue):
        raise ValueError(
            "color_jitter saturation and hue need C = 3 channels; got saturation="
            f"{saturation!r}, hue={hue!r} for images of shape {images.shape}"
        )


def _factor(u: Array, strength: float) -> Array:
    return _lerp(u, (max(0.0, 1.0 - strength), 1.0 + strength))


def color_jitter(
    images: Float[Array, "batch height width channels"],
    *,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    hue: float = 0.0,
    p: float,
    key: PRNGKeyArray,
) -> Float[Array, "batch height width channels"]:
    """With probability ``p`` per example, jitter brightness, contrast, saturation, then hue.

    torchvision's ColorJitter semantics in this fixed order, clipping to [0, 1] after each step:
    brightness x * f, contrast f x + (1 - f) mean(gray(x)), saturation f x + (1 - f) gray(x), with
    each f uniform in [max(0, 1 - strength), 1 + strength]; hue shifted by a uniform draw in
    [-hue, hue] turns (hue <= 0.5) through HSV. For C = 1 saturation and hue must be 0.
    (BYOL draws the four in random order and adds, rather than multiplies, the brightness.)
    """
    _check_images(images, "color_jitter", colour=True)
    for name, value in (
        ("brightness", brightness),
        ("contrast", contrast),
        ("saturation", saturation),
    ):
        _check_strength(f"color_jitter {name}", value)
    _check_strength("color_jitter hue", hue, upper=0.5)
    _check_probability("color_jitter p", p)
    _check_jitter_channels(images, saturation, hue)
    if p == 0.0 or not (brightness or contrast or saturation or hue):
        return images

    def jitter(x: Array, u: Float[Array, " 4"]) -> Array:
        if brightness:
            x = jnp.clip(x * _factor(u[0], brightness), 0.0, 1.0)
        if contrast:
            f = _factor(u[1], contrast)
            x = jnp.clip(f * x + (1.0 - f) * jnp.mean(_gray(x)), 0.0, 1.0)
        if saturation:
            f = _factor(u[2], saturation)
            x = jnp.clip(f * x + (1.0 - f) * _gray(x), 0.0, 1.0)
        if hue:
            shift = _lerp(u[3], (-hue, hue))
            hsv = rgb_to_hsv(x)
            hsv = hsv.at[..., 0].set(_frac(hsv[..., 0] + shift))
            x = jnp.clip(hsv_to_rgb(hsv), 0.0, 1.0)
        return x.astype(images.dtype)

    return _apply_with_probability(jitter, images, p, key, draws=4)


def random_grayscale(
    images: Float[Array, "batch height width channels"], *, p: float, key: PRNGKeyArray
) -> Float[Array, "batch height width channels"]:
    """With probability ``p`` per example, replace every channel by the luma
    0.299 R + 0.587 G + 0.114 B. The identity on 1-channel images."""
    _check_images(images, "random_grayscale", colour=True)
    _check_probability("random_grayscale p", p)
    if p == 0.0 or images.shape[-1] == 1:
        return images
    return _apply_with_probability(lambda x, _: jnp.broadcast_to(_gray(x), x.shape), images, p, key)


def _gaussian_kernel(sigma: Array, radius: int) -> Array:
    t = jnp.arange(-radius, radius + 1, dtype=sigma.dtype)
    k = jnp.exp(-0.5 * (t / sigma) ** 2)
    return k / jnp.sum(k)


def _blur_radius(size: int) -> int:
    # BYOL: kernel size = image size // 10 (23 taps at 224), i.e. radius (size // 10) // 2, >= 1.
    return max(1, (size // 10) // 2)


def gaussian_blur(
    images: Float[Array, "batch height width channels"],
    *,
    sigma: tuple[float, float] = (0.1, 2.0),
    p: float,
    key: PRNGKeyArray,
) -> Float[Array, "batch height width channels"]:
    """With probability ``p`` per example, blur with a Gaussian of std uniform in ``sigma`` pixels.

    Separable kernel of 2 r + 1 taps per axis with r = max(1, (size // 10) // 2) (about 10 % of the
    image size, as BYOL: 23 taps at 224, 3 at 32), reflect padding, output clipped to [0, 1].
    """
    _check_images(images, "gaussian_blur")
    _check_interval("gaussian_blur sigma", sigma)
    _check_probability("gaussian_blur p", p)
    if p == 0.0:
        return images
    h, w = images.shape[1:3]
    ry, rx = _blur_radius(h), _blur_radius(w)

    def blur(x: Array, u: Float[Array, " 1"]) -> Array:
        s = _lerp(u[0], sigma)
        k_y, k_x = _gaussian_kernel(s, ry).astype(x.dtype), _gaussian_kernel(s, rx).astype(x.dtype)
        y = jnp.pad(x, ((ry, ry), (rx, rx), (0, 0)), mode="reflect")
        # The separable convolution as a weighted sum of 2r + 1 shifted copies per axis: XLA's CPU
        # grouped convolution (lax.conv_general_dilated, one kernel per example) is ~40x slower.
        y = sum(k_y[t] * y[t : t + h] for t in range(2 * ry + 1))
        y = sum(k_x[t] * y[:, t : t + w] for t in range(2 * rx + 1))
        return jnp.clip(y, 0.0, 1.0)

    return _apply_with_probability(blur, images, p, key, draws=1)


def solarize(
    images: Float[Array, "batch height width channels"],
    *,
    threshold: float = 0.5,
    p: float,
    key: PRNGKeyArray,
) -> Float[Array, "batch height width channels"]:
    """With probability ``p`` per example, invert every pixel x >= ``threshold`` to 1 - x."""
    _check_images(images, "solarize")
    _check_strength("solarize threshold", threshold, upper=1.0)
    _check_probability("solarize p", p)
    if p == 0.0:
        return images
    return _apply_with_probability(
        lambda x, _: jnp.where(x >= threshold, 1.0 - x, x), images, p, key
    )


# ---------------------------------------------------------------------------------------------
# Pipelines


def _pair(interval: tuple[float, float] | None) -> tuple[float, ...] | None:
    # Static fields must be hashable: lists and NumPy scalars become a tuple of floats.
    return None if interval is None else tuple(float(v) for v in interval)


class Augmentation(eqx.Module):
    """A random augmentation pipeline, all static configuration; ``Augmentation()`` is the identity.

    Applied in this fixed order (BYOL's): random_resized_crop (skipped if ``crop_area`` is None),
    random_flip, color_jitter, random_grayscale, gaussian_blur, solarize. Ops with probability or
    strength 0 are skipped, so they are exactly the identity. Each op gets its own key, so turning
    one op off does not change the draws of the others. Fields are stored as Python floats
    (pairs as tuples), so an instance is hashable and can be closed over or passed to
    ``eqx.filter_jit`` without retracing.
    """

    crop_area: tuple[float, float] | None = eqx.field(default=None, static=True, converter=_pair)
    crop_ratio: tuple[float, float] = eqx.field(
        default=(3 / 4, 4 / 3), static=True, converter=_pair
    )
    flip_p: float = eqx.field(default=0.0, static=True, converter=float)
    brightness: float = eqx.field(default=0.0, static=True, converter=float)
    contrast: float = eqx.field(default=0.0, static=True, converter=float)
    saturation: float = eqx.field(default=0.0, static=True, converter=float)
    hue: float = eqx.field(default=0.0, static=True, converter=float)
    jitter_p: float = eqx.field(default=0.0, static=True, converter=float)
    grayscale_p: float = eqx.field(default=0.0, static=True, converter=float)
    blur_p: float = eqx.field(default=0.0, static=True, converter=float)
    blur_sigma: tuple[float, float] = eqx.field(default=(0.1, 2.0), static=True, converter=_pair)
    solarize_p: float = eqx.field(default=0.0, static=True, converter=float)
    solarize_threshold: float = eqx.field(default=0.5, static=True, converter=float)

    def __check_init__(self):
        if self.crop_area is not None:
            _check_interval("crop_area", self.crop_area, upper=1.0)
        _check_interval("crop_ratio", self.crop_ratio)
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p"):
            _check_probability(name, getattr(self, name))
        for name in ("brightness", "contrast", "saturation"):
            _check_strength(name, getattr(self, name))
        _check_strength("hue", self.hue, upper=0.5)
        _check_interval("blur_sigma", self.blur_sigma)
        _check_strength("solarize_threshold", self.solarize_threshold, upper=1.0)

    def __call__(
        self, x: Float[Array, " batch *spatial"], *, key: PRNGKeyArray
    ) -> Float[Array, " batch *spatial"]:
        """One independent draw of the pipeline per example of ``x`` (images or signals)."""
        jitter = self.jitter_p and (self.brightness or self.contrast or self.saturation or self.hue)
        # Check that every active op applies to x before doing any work.
        _check_batch(x, "Augmentation")
        if jitter or self.grayscale_p or self.blur_p or self.solarize_p:
            op = "Augmentation with colour, blur or solarise"
            _check_images(x, op, colour=bool(jitter or self.grayscale_p))
        if jitter:
            _check_jitter_channels(x, self.saturation, self.hue)
        k_crop, k_flip, k_jitter, k_gray, k_blur, k_solar = jax.random.split(key, 6)
        if self.crop_area is not None:
            x = random_resized_crop(x, area=self.crop_area, ratio=self.crop_ratio, key=k_crop)
        x = random_flip(x, p=self.flip_p, key=k_flip)
        if jitter:
            x = color_jitter(
                x,
                brightness=self.brightness,
                contrast=self.contrast,
                saturation=self.saturation,
                hue=self.hue,
                p=self.jitter_p,
                key=k_jitter,
            )
        if self.grayscale_p:
            x = random_grayscale(x, p=self.grayscale_p, key=k_gray)
        if self.blur_p:
            x = gaussian_blur(x, sigma=self.blur_sigma, p=self.blur_p, key=k_blur)
        if self.solarize_p:
            x = solarize(x, threshold=self.solarize_threshold, p=self.solarize_p, key=k_solar)
        return x

    @classmethod
    def byol(cls, view: int, *, crop_area_min: float = 0.08) -> Augmentation:
        """BYOL's view 1 or 2 (Grill et al. 2020, Table 6): crop (area lower bound
        ``crop_area_min``), flip p 0.5, colour jitter 0.4/0.4/0.2/0.1 with p 0.8, grayscale p 0.2,
        blur p 1.0 / 0.1, solarise p 0 / 0.2. The seed paper uses ``crop_area_min`` 0.3-0.5."""
        if view not in (1, 2):
            raise ValueError(f"BYOL has views 1 and 2; got view={view!r}")
        return cls(
            crop_area=(crop_area_min, 1.0),
            flip_p=0.5,
            brightness=0.4,
            contrast=0.4,
            saturation=0.2,
            hue=0.1,
            jitter_p=0.8,
            grayscale_p=0.2,
            blur_p=1.0 if view == 1 else 0.1,
            solarize_p=0.0 if view == 1 else 0.2,
        )

    @classmethod
    def crop_flip(cls, crop_area_min: float = 0.08) -> Augmentation:
        """Random resized crop (area in [crop_area_min, 1]) and flip p 0.5 only (signals too)."""
        return cls(crop_area=(crop_area_min, 1.0), flip_p=0.5)


def two_views(
    x: Float[Array, " batch *spatial"],
    view1: Augmentation,
    view2: Augmentation,
    *,
    key: PRNGKeyArray,
) -> Float[Array, " 2*batch *spatial"]:
    """Two augmented views stacked on the batch axis: rows [0, N) ``view1``, [N, 2N) ``view2``,
    so rows n and n + N are a positive pair (the layout ``ctlearn.losses.info_nce`` expects)."""
    k1, k2 = jax.random.split(key)
    return jnp.concatenate([view1(x, key=k1), view2(x, key=k2)], axis=0)
