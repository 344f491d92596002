"""The project's fused batch norm layer against Keras' own BatchNormalization, on small arrays."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def _pair(shape, momentum, seed=0, dtype=None):
    """A Keras BatchNormalization and a FusedBatchNormalization with the same random scale and offset."""
    import keras

    from digit_recognizer.modeling.models import FusedBatchNormalization

    rng = np.random.default_rng(seed)
    reference = keras.layers.BatchNormalization(momentum=momentum, dtype=dtype)
    fused = FusedBatchNormalization(momentum=momentum, dtype=dtype)
    gamma, beta = rng.normal(size=shape[-1]).astype("float32"), rng.normal(size=shape[-1]).astype("float32")
    for layer in (reference, fused):
        layer.build(shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    images = (rng.normal(size=shape) * 3 + 2).astype("float32")
    return reference, fused, images


@pytest.mark.parametrize("shape", [(8, 5, 5, 3), (3, 7, 7, 16), (2, 1, 1, 4)])
@pytest.mark.parametrize("momentum", [0.9, 0.99])
def test_fused_layer_computes_what_keras_batch_norm_computes(shape, momentum):
    # training output, both moving statistics after two steps, and the inference output all agree
    reference, fused, images = _pair(shape, momentum)
    for step in range(2):
        batch = images * (step + 1)
        np.testing.assert_allclose(fused(batch, training=True), reference(batch, training=True), atol=2e-5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused(images, training=False), reference(images, training=False), atol=2e-5)
    assert [weight.name for weight in fused.weights] == [weight.name for weight in reference.weights]


def test_a_frozen_layer_normalises_with_its_moving_statistics_as_keras_does():
    # trainable=False: inference arithmetic even in training, and the moving statistics stay put
    reference, fused, images = _pair((5, 3, 3, 4), 0.9)
    for layer in (reference, fused):
        layer.trainable = False
    np.testing.assert_allclose(fused(images, training=True), reference(images, training=True), atol=2e-5)
    np.testing.assert_array_equal(fused.moving_mean.numpy(), np.zeros(4, np.float32))


def test_fused_layer_has_keras_batch_norm_gradients():
    # the fused op's own gradient (FusedBatchNormGradV3) agrees with Keras' for the input, scale and offset
    import tensorflow as tf

    reference, fused, images = _pair((6, 4, 4, 5), 0.9)
    weights = tf.constant(np.random.default_rng(1).normal(size=images.shape).astype("float32"))
    gradients = []
    for layer in (reference, fused):
        inputs = tf.constant(images)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(layer(inputs, training=True) * weights)
        gradients.append(tape.gradient(loss, [inputs, layer.gamma.value, layer.beta.value]))
    for expected, got in zip(*gradients):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-4, atol=1e-4)


def test_fused_layer_keeps_a_bfloat16_map_in_bfloat16():
    # under mixed bfloat16 the map stays bfloat16 (no float32 copy) and reads like the float32 result
    import tensorflow as tf

    reference, fused, images = _pair((4, 6, 6, 8), 0.9, dtype="mixed_bfloat16")
    outputs = fused(tf.cast(images, tf.bfloat16), training=True)
    assert outputs.dtype == reference(tf.cast(images, tf.bfloat16), training=True).dtype == tf.bfloat16
    assert fused.moving_mean.dtype == "float32"
    _, exact, _ = _pair((4, 6, 6, 8), 0.9)
    np.testing.assert_allclose(tf.cast(outputs, tf.float32), exact(images, training=True), atol=0.05)


@pytest.mark.parametrize("momentum, epsilon", [(1.0, 1e-3), (-0.1, 1e-3), (0.9, 0.0)])
def test_bad_settings_are_value_errors(momentum, epsilon):
    from digit_recognizer.modeling.models import FusedBatchNormalization

    with pytest.raises(ValueError):
        FusedBatchNormalization(momentum=momentum, epsilon=epsilon)


def test_a_saved_model_loads_in_a_fresh_process_in_safe_mode(tmp_path):
    # a new Python process has not imported the registry: load_model_file must register the layer itself
    from digit_recognizer.modeling.models import build_model

    model = build_model("compact-nodrop", (28, 28, 1), 10)
    images = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, numpy as np\n"
        "from digit_recognizer.modeling.inference import load_model_file\n"
        f"model = load_model_file({str(tmp_path / 'model.keras')!r})\n"
        "assert 'digit_recognizer.modeling.models' in sys.modules\n"
        f"np.save({str(tmp_path / 'loaded.npy')!r}, model.predict(np.load({str(tmp_path / 'images.npy')!r}), verbose=0))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "loaded.npy"), model.predict(images, verbose=0), atol=1e-6)


def _small_model(batch_norm):
    import keras
    from keras import layers

    inputs = keras.Input(shape=(6, 6, 1))
    x = layers.Conv2D(4, 3, use_bias=False)(inputs)
    x = batch_norm(momentum=0.9)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(x))


def test_a_model_saved_with_keras_batch_norm_starts_a_fine_tuning_run(tmp_path):
    # a first round saved before the fused layer gives its weights, in order, to a model built with it
    import keras

    from digit_recognizer.modeling.models import FusedBatchNormalization
    from digit_recognizer.modeling.train import initial_weights

    old = _small_model(keras.layers.BatchNormalization)
    old.set_weights(
        [np.random.default_rng(i).normal(size=w.shape).astype("float32") for i, w in enumerate(old.weights)]
    )
    old.save(tmp_path / "old.keras")
    new = _small_model(FusedBatchNormalization)
    initial_weights(new, tmp_path / "old.keras")
    for got, expected in zip(new.get_weights(), old.get_weights()):
        np.testing.assert_array_equal(got, expected)


def test_weights_of_another_architecture_are_refused_in_one_line(tmp_path):
    from digit_recognizer.errors import UserError
    from digit_recognizer.modeling.models import FusedBatchNormalization, build_model
    from digit_recognizer.modeling.train import initial_weights

    build_model("seed", (28, 28, 1), 10).save(tmp_path / "seed.keras")
    with pytest.raises(UserError, match="do not fit"):
        initial_weights(_small_model(FusedBatchNormalization), tmp_path / "seed.keras")
