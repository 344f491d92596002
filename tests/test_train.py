"""Training recipe pieces that need no data: the weight-average momentum and the registry."""

from __future__ import annotations

import pytest

from digit_recognizer.config import ARCHITECTURES


@pytest.mark.parametrize("total_steps", [1, 5, 100, 1776, 8880, 100_000])
def test_ema_momentum_forgets_the_initial_weights(total_steps):
    # the moving average never keeps more than ~e^-8 of the random initial weights, and never averages slower than 0.999
    from digit_recognizer.modeling.train import ema_momentum

    momentum = ema_momentum(total_steps)
    assert 0.0 <= momentum <= 0.999
    assert momentum**total_steps <= 4e-4


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_registry_builds_each_architecture(architecture):
    # every registered builder maps a 28x28x1 image to 10 probabilities, and the CLI's list matches the registry
    import numpy as np

    from digit_recognizer.modeling.models import MODEL_BUILDERS, build_model

    assert set(ARCHITECTURES) == set(MODEL_BUILDERS)
    model = build_model(architecture, (28, 28, 1), 10)
    probabilities = np.asarray(model(np.zeros((2, 28, 28, 1), np.float32), training=False))
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("architecture", ["compact", "deotte"])
def test_nodrop_variant_is_the_architecture_without_dropout(architecture):
    # the same weights layer for layer, and no dropout layer left
    from keras import layers

    from digit_recognizer.modeling.models import build_model

    with_dropout = build_model(architecture, (28, 28, 1), 10)
    nodrop = build_model(f"{architecture}-nodrop", (28, 28, 1), 10)
    assert any(isinstance(layer, layers.Dropout) for layer in with_dropout.layers)
    assert not any(isinstance(layer, layers.Dropout) for layer in nodrop.layers)
    assert [weight.shape for weight in nodrop.weights] == [weight.shape for weight in with_dropout.weights]


def test_unknown_architecture_is_a_value_error():
    # a bad name is refused with the list of choices
    from digit_recognizer.modeling.models import build_model

    with pytest.raises(ValueError, match="seed, compact, compact-nodrop, deotte"):
        build_model("resnet9000", (28, 28, 1), 10)
