"""Training presets: an architecture plus the recipe that trains it.

``seed`` is the seeds' notebook exactly (the baseline); ``fast`` is the default,
a strong model trained briefly; ``strong`` is the best single model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    architecture: str
    epochs: int
    batch_size: int
    learning_rate: float
    schedule: str  # "constant" or "cosine" (linear warm-up, then cosine decay to 0)
    augment: bool
    label_smoothing: float
    patience: int  # early stopping on val_accuracy; 0 = off
    description: str
    precision: str = "auto"  # see ExperimentConfig.precision
    ema: bool = False  # see ExperimentConfig.ema


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="seed",
            architecture="seed",
            epochs=5,
            batch_size=128,
            learning_rate=1e-3,
            schedule="constant",
            augment=False,
            label_smoothing=0.0,
            patience=0,
            description="the seeds' small CNN, Adam, 5 epochs: the baseline",
            precision="float32",
        ),
        Preset(
            name="fast",
            architecture="compact",
            epochs=8,
            batch_size=128,
            learning_rate=3e-3,
            schedule="cosine",
            augment=True,
            label_smoothing=0.05,
            patience=0,
            description="compact batch-normalised CNN, 8 epochs, augmentation, cosine schedule (default)",
        ),
        Preset(
            name="strong",
            architecture="deotte",
            epochs=30,
            batch_size=128,
            learning_rate=3e-3,
            schedule="cosine",
            augment=True,
            label_smoothing=0.1,
            patience=0,
            description="Deotte's batch-normalised CNN, 30 epochs, augmentation, cosine schedule, weight averaging (EMA): best single model",
            ema=True,
        ),
    )
}

DEFAULT_PRESET = "fast"
# The model registry's names (models.MODEL_BUILDERS), listed here so `--help` needs no TensorFlow import.
ARCHITECTURES = ("seed", "compact", "deotte")


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset '{name}', choose from {', '.join(PRESETS)}")
    return PRESETS[name]
