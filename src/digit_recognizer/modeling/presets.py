"""Training presets: named sets of overrides of :class:`~digit_recognizer.config.ExperimentConfig`'s defaults.

``seed`` is the seeds' notebook exactly (the baseline); ``fast`` is the default,
a strong model trained briefly; ``strong`` is the best single model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from digit_recognizer.config import ExperimentConfig


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    overrides: dict = field(default_factory=dict)  # ExperimentConfig fields that differ from its defaults

    def config(self, name: str, **overrides) -> ExperimentConfig:
        """The experiment config of this preset, with ``overrides`` (None values ignored) on top."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return ExperimentConfig(name=name, preset=self.name, **{**self.overrides, **given})


# `strong`'s recipe; `best` trains it twice per fold (the second model a partner of the same architecture, own seeds)
STRONG_RECIPE = dict(
    architecture="deotte-nodrop",
    epochs=24,
    batch_size=128,
    learning_rate=3e-3,
    schedule="cosine",
    augment=True,
    label_smoothing=0.1,
    ema=True,
    tta=True,
)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="seed",
            description="the seeds' small CNN, Adam, 5 epochs: the baseline",
            overrides=dict(
                architecture="seed",
                epochs=5,
                batch_size=128,
                learning_rate=1e-3,
                schedule="constant",
                augment=False,
                label_smoothing=0.0,
                precision="float32",
            ),
        ),
        Preset(
            name="fast",
            description="Deotte's batch-normalised CNN without dropout, 9 epochs, augmentation, cosine schedule, "
            "test-time augmentation (default)",
            overrides=dict(
                # 5-fold out-of-fold (docs/benchmarks.md, 2026-11-24 late): 154 and 174 errors (two seed sets) against
                # 202 for `compact-nodrop` in 8 epochs, McNemar p < 0.001 and 0.023, in 3.8x seed's time against 2.7x;
                # 7 epochs made 185.
                architecture="deotte-nodrop",
                epochs=9,
                batch_size=128,
                learning_rate=3e-3,
                schedule="cosine",
                augment=True,
                label_smoothing=0.05,
                tta=True,  # 5-fold out-of-fold: 236 errors against 253 without, McNemar p = 0.03
            ),
        ),
        Preset(
            name="strong",
            description="Deotte's batch-normalised CNN without dropout, 24 epochs, augmentation, cosine schedule, "
            "weight averaging (EMA), test-time augmentation: best single model",
            # 5-fold out-of-fold, one benchmark run (docs/benchmarks.md, 2026-11-24 late): without dropout 155 and 160
            # errors (two seed sets) against 187 with it, McNemar p = 0.002 and 0.012; 24 epochs score like 30.
            overrides=STRONG_RECIPE,
        ),
        Preset(
            name="best",
            description="the top recipe: 5 folds, each with two `strong` models (Deotte's CNN without dropout, 24 "
            "epochs, EMA) of distinct seeds; predict averages the 10 models over shifted copies (test-time augmentation)",
            # Measured by 5-fold out-of-fold accuracy (docs/benchmarks.md): 12 epochs + a pseudo-label round
            # (from scratch or fine-tuned) scored 197-206 errors in 128x seed time, one 30-epoch model per fold 159-173
            # in 99x; two 24-epoch models per fold 147 (both without dropout) and 151-154 (with and without dropout).
            overrides={**STRONG_RECIPE, "partner": STRONG_RECIPE["architecture"], "cv": 5},  # strong, twice per fold
        ),
    )
}

DEFAULT_PRESET = "fast"


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}', choose from {', '.join(PRESETS)}")
    return PRESETS[name]
