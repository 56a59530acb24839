"""sims.continuous_fashion runs end to end in --quick mode and resumes where it stopped."""

import pytest

from sims.continuous_fashion import MODES, QUICK, FashionConfig, main


def test_quick_run_writes_outputs_feeds_every_mode_the_same_batches_and_resumes(tmp_path):
    first = ("ct-lg-fg-a", "bp", "fg-a")
    summary = main(FashionConfig(**QUICK, modes=first, out=str(tmp_path), progress=False))
    assert list(summary["modes"]) == list(first)
    for name in ("summary.json", "summary.md"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    saved = {n: (tmp_path / "modes" / f"{n}.json").read_text() for n in first}
    # 64 training examples in batches of 16: 4 presentations (or SGD steps), evaluated every 2.
    for mode in summary["modes"].values():
        assert mode["presentations"] == 4 and mode["stopped"] == "epochs"
        assert mode["curve"]["samples"] == [0, 32, 64]
        assert 0 <= mode["test_accuracy"] <= 100 and mode["wall_s"] > 0
    digests = {m["labels_sha256"] for m in summary["modes"].values()}
    assert len(digests) == 1  # the same labels in the same order
    # The discrete modes step at the matched learning rate η·c·T = 0.05 · (1 / 1)² · 2.
    assert summary["modes"]["bp"]["lr"] == pytest.approx(0.1)
    assert summary["provenance"]["command"]
    text = (tmp_path / "summary.md").read_text()
    assert "| continuous LG-FG-A |" in text and "**Target**" in text

    # A rerun skips the finished modes (their files stay as they were) and adds the new one.
    second = first + ("fg-a-matched",)
    resumed = main(FashionConfig(**QUICK, modes=second, out=str(tmp_path), progress=False))
    assert list(resumed["modes"]) == list(second)
    for name in first:
        assert (tmp_path / "modes" / f"{name}.json").read_text() == saved[name]
    matched = resumed["modes"]["fg-a-matched"]
    assert matched["num_samples"] == 2 and matched["labels_sha256"] in digests
    assert "discrete FG-A ×2" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(batch_size=0), "batch_size must be an int >= 1"),
        (dict(lr=-1.0), "lr must be finite and > 0"),
        (dict(budget_minutes=float("nan")), "budget_minutes must be finite and > 0"),
        (dict(duration=0.5), "duration=0.5 is shorter than tau_p=1.0"),
        (dict(transition=2.0), "transition is a time in \\[0, duration=2.0\\), got 2.0"),
        (dict(train_size=5), "train_size=5 holds less than one batch"),
        (dict(modes=("ct-bp",)), "modes must be among"),
        (dict(modes=("bp", "bp")), "modes must not repeat"),
        (dict(mixer_preset="XL"), "unknown mixer_preset 'XL'"),
        (dict(band=(2.0, 1.0)), "band must be"),
    ],
)
def test_bad_settings_are_refused_naming_the_value(options, message):
    with pytest.raises(ValueError, match=message):
        FashionConfig(**options)


def test_every_mode_has_a_distinct_label():
    assert len({m.label for m in MODES.values()}) == len(MODES)


def test_the_committed_full_run_counts_as_finished_under_the_current_settings():
    # A change to what a mode's result depends on must rerun results/continuous_fashion.
    from pathlib import Path

    from sims.continuous_fashion import MODES, FashionConfig, _saved_mode

    out = Path(__file__).resolve().parent.parent / "results" / "continuous_fashion"
    config = FashionConfig()
    for name in ("ct-fg-a", "ct-lg-fg-a", "ct-fdfa", "bp", "fg-a", "fg-a-matched"):
        saved = _saved_mode(out, name)
        assert saved is not None and saved["settings"] == config.settings(MODES[name]), name
