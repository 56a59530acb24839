import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ctlearn.augment import (
    Augmentation,
    color_jitter,
    gaussian_blur,
    hsv_to_rgb,
    random_flip,
    random_grayscale,
    random_resized_crop,
    rgb_to_hsv,
    solarize,
    two_views,
)

KEY = jax.random.PRNGKey(0)
IMAGES = jax.random.uniform(jax.random.PRNGKey(1), (6, 16, 16, 3))
GRAY_IMAGES = IMAGES[..., :1]
SIGNALS = jax.random.normal(jax.random.PRNGKey(2), (6, 40))


def jitted(op, **config):
    """``op(x, **config, key=key)`` under jit: the way the ops are used, and it compiles far
    faster than eager vmapped ops run primitive by primitive."""
    return eqx.filter_jit(lambda x, key: op(x, **config, key=key))


# Every op at probability 1 (or always-on strength) on 3-channel images.
IMAGE_OPS = {
    "crop": jitted(random_resized_crop, area=(0.3, 1.0)),
    "flip": jitted(random_flip, p=1.0),
    "jitter": jitted(color_jitter, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=1.0),
    "grayscale": jitted(random_grayscale, p=1.0),
    "blur": jitted(gaussian_blur, p=1.0),
    "solarize": jitted(solarize, threshold=0.0, p=1.0),
    "byol1": jitted(Augmentation.byol(1, crop_area_min=0.3)),
    "byol2": jitted(Augmentation.byol(2, crop_area_min=0.3)),
}
# Random ops whose output depends on the key (solarize at p = 1 and grayscale do not).
RANDOM_OPS = ["crop", "jitter", "blur", "byol1", "byol2"]


@pytest.mark.parametrize("name", IMAGE_OPS)
def test_images_keep_shape_dtype_and_range(name):
    extremes = IMAGES.at[:, :4].set(0.0).at[:, -4:].set(1.0)  # saturated pixels too
    y = IMAGE_OPS[name](extremes, key=KEY)
    assert y.shape == IMAGES.shape and y.dtype == jnp.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("name", RANDOM_OPS)
def test_same_key_same_output_different_key_differs(name):
    op = IMAGE_OPS[name]
    np.testing.assert_array_equal(op(IMAGES, key=KEY), op(IMAGES, key=KEY))
    assert not np.allclose(op(IMAGES, key=KEY), op(IMAGES, key=jax.random.PRNGKey(7)))


def test_gray_images_and_signals_keep_shape():
    aug = Augmentation(
        crop_area=(0.3, 1.0),
        flip_p=0.5,
        brightness=0.4,
        contrast=0.4,
        jitter_p=0.8,
        grayscale_p=0.2,
        blur_p=1.0,
        solarize_p=0.2,
    )
    y = jitted(aug)(GRAY_IMAGES, KEY)
    assert y.shape == GRAY_IMAGES.shape and y.dtype == GRAY_IMAGES.dtype
    for x in (SIGNALS, jnp.stack([SIGNALS, -SIGNALS], axis=-1)):
        y = jitted(Augmentation.crop_flip(0.5))(x, KEY)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert not np.allclose(y, x)


def test_zero_probability_or_strength_is_exactly_the_identity():
    for x in (IMAGES, GRAY_IMAGES):
        assert random_flip(x, p=0.0, key=KEY) is x
        assert color_jitter(x, brightness=0.4, contrast=0.4, p=0.0, key=KEY) is x
        assert color_jitter(x, p=1.0, key=KEY) is x
        assert random_grayscale(x, p=0.0, key=KEY) is x
        assert gaussian_blur(x, p=0.0, key=KEY) is x
        assert solarize(x, p=0.0, key=KEY) is x
        assert Augmentation()(x, key=KEY) is x
    assert random_grayscale(GRAY_IMAGES, p=1.0, key=KEY) is GRAY_IMAGES
    assert random_flip(SIGNALS, p=0.0, key=KEY) is SIGNALS
    # Turning one op off leaves the others' draws unchanged (each op has its own key).
    with_solarize = Augmentation(flip_p=0.5, blur_p=1.0, solarize_p=1.0, solarize_threshold=0.0)
    without = Augmentation(flip_p=0.5, blur_p=1.0)
    np.testing.assert_allclose(
        jitted(with_solarize)(IMAGES, KEY), 1.0 - jitted(without)(IMAGES, KEY), atol=1e-6
    )


def test_full_area_square_crop_is_the_identity():
    # Box = whole image, offset 0, scale 1: bilinear weights are exactly 0/1 (tolerance 1e-6).
    y = jitted(random_resized_crop, area=(1.0, 1.0), ratio=(1.0, 1.0))(IMAGES, KEY)
    np.testing.assert_allclose(y, IMAGES, atol=1e-6)
    y = jitted(random_resized_crop, area=(1.0, 1.0))(SIGNALS, KEY)
    np.testing.assert_allclose(y, SIGNALS, atol=1e-6)


def test_crop_box_has_the_requested_area_and_ratio():
    # On the ramp x[i, j] = j (resp. i) bilinear resizing is exact, so away from the borders the
    # output's slope along W (resp. H) is the crop's width / W (resp. height / H).
    n, size = 64, 32
    ramp = jnp.broadcast_to(jnp.arange(size, dtype=jnp.float32), (n, size, size))
    x = jnp.stack([ramp, jnp.swapaxes(ramp, 1, 2), ramp], axis=-1)
    y = np.asarray(jitted(random_resized_crop, area=(0.3, 0.6), ratio=(0.5, 2.0))(x, KEY))
    mid = slice(size // 4, 3 * size // 4)
    w = np.diff(y[:, mid, mid, 0], axis=2).mean(axis=(1, 2))
    h = np.diff(y[:, mid, mid, 1], axis=1).mean(axis=(1, 2))
    assert np.all((w * h >= 0.3 - 1e-4) & (w * h <= 0.6 + 1e-4))
    assert np.all((w / h >= 0.5 - 1e-4) & (w / h <= 2.0 + 1e-4))
    assert np.ptp(w * h) > 0.1  # areas do vary across examples
    # Output pixel o samples input position x0 + (o + 1/2) w / W - 1/2: the box [x0, x0 + w] fits.
    o = np.arange(size)[mid]
    x0 = (y[:, mid, mid, 0] - (o + 0.5) * w[:, None, None] + 0.5).mean(axis=(1, 2))
    assert np.all((x0 >= -1e-3) & (x0 + w * size <= size + 1e-3))
    assert np.ptp(x0) > 1.0  # and its position varies
    # Signals: the window is a fraction of the length in `area`.
    signals = jnp.broadcast_to(jnp.arange(40, dtype=jnp.float32), (n, 40))
    y = np.asarray(jitted(random_resized_crop, area=(0.5, 0.8))(signals, KEY))
    frac = np.diff(y[:, 10:30], axis=1).mean(axis=1)
    assert np.all((frac >= 0.5 - 1e-4) & (frac <= 0.8 + 1e-4))


def test_identical_examples_get_independent_draws():
    same = jnp.broadcast_to(IMAGES[0], IMAGES.shape)
    for op in (IMAGE_OPS["crop"], IMAGE_OPS["byol2"], IMAGE_OPS["blur"]):
        y = np.asarray(op(same, KEY))
        assert all(not np.allclose(y[i], y[j]) for i in range(6) for j in range(i))


def test_flip_twice_is_the_identity_and_flips_the_width_axis():
    flip = IMAGE_OPS["flip"]
    for x in (IMAGES, SIGNALS, SIGNALS[..., None]):
        np.testing.assert_array_equal(flip(flip(x, KEY), jax.random.PRNGKey(5)), x)
    np.testing.assert_array_equal(flip(IMAGES, KEY), IMAGES[:, :, ::-1])
    np.testing.assert_array_equal(flip(SIGNALS, KEY), SIGNALS[:, ::-1])


def test_flip_rate_matches_p():
    # 4000 Bernoulli(0.5) draws: |rate - 0.5| > 0.05 is a 6.3-sigma event (probability < 1e-9).
    x = jnp.broadcast_to(jnp.array([0.0, 1.0]), (4000, 2))
    rate = float(jnp.mean(jitted(random_flip, p=0.5)(x, KEY)[:, 0]))
    assert abs(rate - 0.5) < 0.05


def test_grayscale_has_equal_channels_with_luma():
    y = IMAGE_OPS["grayscale"](IMAGES, KEY)
    luma = IMAGES @ jnp.array([0.299, 0.587, 0.114])
    for c in range(3):
        np.testing.assert_allclose(y[..., c], luma, atol=1e-6)


def test_solarize():
    np.testing.assert_allclose(IMAGE_OPS["solarize"](IMAGES, KEY), 1.0 - IMAGES)
    y = jitted(solarize, threshold=0.5, p=1.0)(IMAGES, KEY)
    np.testing.assert_array_equal(y, jnp.where(IMAGES >= 0.5, 1.0 - IMAGES, IMAGES))


def test_hsv_round_trip_and_known_values():
    rgb_to_hsv_, hsv_to_rgb_ = jax.jit(rgb_to_hsv), jax.jit(hsv_to_rgb)
    rgb = jax.random.uniform(jax.random.PRNGKey(3), (1000, 3))
    np.testing.assert_allclose(hsv_to_rgb_(rgb_to_hsv_(rgb)), rgb, atol=1e-5)
    hsv = jnp.stack(
        [jnp.linspace(0.0, 0.999, 1000), rgb[:, 1] * 0.9 + 0.1, rgb[:, 2] * 0.9 + 0.1], axis=-1
    )
    np.testing.assert_allclose(rgb_to_hsv_(hsv_to_rgb_(hsv)), hsv, atol=1e-5)
    primaries = jnp.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.5, 0.5, 0.5], [0, 0, 0]])
    expected = [[0, 1, 1], [1 / 3, 1, 1], [2 / 3, 1, 1], [0, 0, 0.5], [0, 0, 0]]
    np.testing.assert_allclose(rgb_to_hsv_(primaries), expected, atol=1e-6)


def test_color_jitter_values():
    # Brightness alone scales each example by one factor in [0.6, 1.4] (no pixel clipped below 0.7).
    x = IMAGES * 0.7
    factor = np.asarray(jitted(color_jitter, brightness=0.4, p=1.0)(x, KEY) / x).reshape(6, -1)
    np.testing.assert_allclose(factor, np.broadcast_to(factor[:, :1], factor.shape), rtol=1e-5)
    assert np.all((factor >= 0.6) & (factor <= 1.4))
    # Saturation and hue leave gray pixels unchanged; gray images work with brightness/contrast.
    gray = jnp.broadcast_to(IMAGES[..., :1], IMAGES.shape)
    y = jitted(color_jitter, saturation=0.5, hue=0.5, p=1.0)(gray, KEY)
    np.testing.assert_allclose(y, gray, atol=1e-6)
    y = jitted(color_jitter, brightness=0.4, contrast=0.4, p=1.0)(GRAY_IMAGES, KEY)
    assert y.shape == GRAY_IMAGES.shape and not np.allclose(y, GRAY_IMAGES)


def test_blur_matches_a_separable_gaussian_and_keeps_constants():
    x = np.asarray(jax.random.uniform(jax.random.PRNGKey(4), (2, 40, 40, 1)))
    y = jitted(gaussian_blur, sigma=(1.5, 1.5), p=1.0)(jnp.asarray(x), KEY)
    r = 2  # (40 // 10) // 2
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / 1.5) ** 2)
    k /= k.sum()
    ref = np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode="reflect")
    ref = sum(k[t] * ref[:, t : t + 40] for t in range(2 * r + 1))
    ref = sum(k[t] * ref[:, :, t : t + 40] for t in range(2 * r + 1))
    np.testing.assert_allclose(y, ref, atol=1e-6)
    constant = jnp.full((2, 16, 16, 3), 0.3)
    np.testing.assert_allclose(IMAGE_OPS["blur"](constant, KEY), constant, atol=1e-6)


def test_two_views_layout():
    flip = Augmentation(flip_p=1.0)
    invert = Augmentation(solarize_p=1.0, solarize_threshold=0.0)
    both = jitted(two_views, view1=flip, view2=invert)(IMAGES, KEY)
    assert both.shape == (12, 16, 16, 3)
    np.testing.assert_array_equal(both[:6], IMAGES[:, :, ::-1])
    np.testing.assert_allclose(both[6:], 1.0 - IMAGES)
    crop_flip = Augmentation.crop_flip(0.5)
    both = jitted(two_views, view1=crop_flip, view2=crop_flip)(SIGNALS, KEY)
    assert both.shape == (12, 40) and not np.allclose(both[:6], both[6:])


def test_byol_presets():
    v1, v2 = Augmentation.byol(1), Augmentation.byol(2, crop_area_min=0.5)
    assert (v1.crop_area, v2.crop_area) == ((0.08, 1.0), (0.5, 1.0))
    assert (v1.blur_p, v2.blur_p, v1.solarize_p, v2.solarize_p) == (1.0, 0.1, 0.0, 0.2)
    assert (v1.brightness, v1.contrast, v1.saturation, v1.hue) == (0.4, 0.4, 0.2, 0.1)
    assert (v1.jitter_p, v1.grayscale_p, v1.flip_p) == (0.8, 0.2, 0.5)
    assert Augmentation.crop_flip(0.3) == Augmentation(crop_area=(0.3, 1.0), flip_p=0.5)


def test_config_is_hashable_python_floats():
    aug = Augmentation(crop_area=[0.3, np.float64(1.0)], flip_p=np.float32(0.5))
    assert aug == Augmentation.crop_flip(0.3) and hash(aug) == hash(Augmentation.crop_flip(0.3))


def test_jit_does_not_retrace():
    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def augment(x, key):
        return two_views(x, Augmentation.byol(1), Augmentation.byol(2), key=key)

    a = augment(IMAGES, KEY)
    b = augment(IMAGES + 0.0, jax.random.PRNGKey(9))
    assert a.shape == b.shape == (12, 16, 16, 3) and not np.allclose(a, b)


def _raises(value: str):
    return pytest.raises(ValueError, match=re.escape(value))


@pytest.mark.parametrize(
    "make, value",
    [
        (lambda: random_flip(IMAGES, p=1.5, key=KEY), "1.5"),
        (lambda: solarize(IMAGES, p=-0.1, key=KEY), "-0.1"),
        (lambda: Augmentation(blur_p=2.0), "2.0"),
        (lambda: random_resized_crop(IMAGES, area=(0.0, 1.0), key=KEY), "(0.0, 1.0)"),
        (lambda: random_resized_crop(SIGNALS, area=(0.5, 1.2), key=KEY), "(0.5, 1.2)"),
        (lambda: random_resized_crop(IMAGES, area=(0.8, 0.5), key=KEY), "(0.8, 0.5)"),
        (lambda: Augmentation.crop_flip(0.0), "(0.0, 1.0)"),
        (lambda: Augmentation.byol(1, crop_area_min=1.5), "(1.5, 1.0)"),
        (lambda: Augmentation.byol(3), "view=3"),
        (lambda: Augmentation(brightness=-0.4), "-0.4"),
        (lambda: color_jitter(IMAGES, hue=0.7, p=1.0, key=KEY), "0.7"),
        (lambda: color_jitter(SIGNALS[..., None], brightness=0.4, p=1.0, key=KEY), "(6, 40, 1)"),
        (lambda: random_grayscale(SIGNALS, p=0.2, key=KEY), "(6, 40)"),
        (lambda: gaussian_blur(SIGNALS, p=1.0, key=KEY), "(6, 40)"),
        (lambda: solarize(SIGNALS, p=1.0, key=KEY), "(6, 40)"),
        (lambda: Augmentation.byol(1)(SIGNALS, key=KEY), "(6, 40)"),
        (lambda: color_jitter(GRAY_IMAGES, saturation=0.2, p=1.0, key=KEY), "saturation=0.2"),
        (lambda: Augmentation.byol(1)(GRAY_IMAGES, key=KEY), "saturation=0.2"),
        (lambda: random_flip(IMAGES.astype(jnp.int32), key=KEY), "int32"),
        (lambda: random_flip(IMAGES[0, 0, 0], key=KEY), "(3,)"),
    ],
)
def test_validation_errors_name_the_bad_value(make, value):
    with _raises(value):
        make()
