"""The string reader: reads a whole mark of touching or overlapping digits at once, for the photo pipeline.

A digit classifier reads one digit; where a photo's digits touch or overlap, the pipeline must first cut them
apart, and a cut through an overlap leaves no piece that is one digit. The string reader needs no cuts: a small
CNN turns the mark (scaled to :data:`HEIGHT` px, left-aligned in :data:`WIDTH` px) into a sequence of column
features, a bidirectional GRU reads them in context, and each of the :data:`WIDTH` / :data:`STRIDE` frames is
classified as a digit or a blank; connectionist temporal classification (CTC, Graves et al., 2006; Keras'
``CTC`` loss) trains it from whole strings without saying where each digit is, and greedy decoding (runs of one
class between blanks) gives the digits, each with its probabilities and the column where it was read. A frame is
:data:`STRIDE` = 2 input columns: at 4 (36 frames), a 4-digit mark squeezed by overlaps had about two frames per
digit, too few for a thin 1 or a repeated digit (which CTC must split with a blank), and such digits were lost.

It learns from synthetic strings (:func:`synthetic_strings`) made from the experiment's own training rows, so
its only labels are train.csv's: 1-5 digits, each scaled from its 28x28 image to a random height with its
strokes made a little thicker or thinner, placed left to right so that each neighbour touches, overlaps or
stands a little apart, and binarised like the photo pipeline's ink mask.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEIGHT = 28  # the reader's input: a mark scaled to this height...
WIDTH = 144  # ...left-aligned in this width (squeezed when wider)
MARGIN = 2  # empty pixels around the mark in the input
STRIDE = 2  # input columns per output frame (a reader saved with another stride is decoded at its own); development
# touching photos (seeds 1, 11, 21, 31; 160): 150 read right against 143 at a stride of 4
HEIGHT_STRIDE = 4  # input rows per row of the CNN's last feature map
MAX_DIGITS = 5  # the longest synthetic string
BLANK = 0  # CTC's blank class; digit d is class d + 1
EPOCHS = 8
BATCH_SIZE = 128
LEARNING_RATE = 2e-3
TOUCHING_SHARE = 0.55  # of neighbour pairs in a synthetic string that touch or overlap (the rest stand apart)


def _tight(image: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    if rows.size == 0:
        return image
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def digit_shape(digit28: np.ndarray, height: int, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 digit as a binary (uint8 0/1) shape ``height`` px tall: upscaled smoothly, thresholded at a random
    level, its width stretched by up to 15% and its strokes thickened or thinned by a pixel or two."""
    import cv2

    digit = np.pad(_tight(digit28), 2).astype(np.float32)
    scale = height / max(1, digit.shape[0] - 4)
    size = (max(1, round(digit.shape[1] * scale * rng.uniform(0.85, 1.15))), max(1, round(digit.shape[0] * scale)))
    big = cv2.GaussianBlur(cv2.resize(digit, size, interpolation=cv2.INTER_CUBIC), (0, 0), max(0.5, scale * 0.4))
    shape = (big > rng.uniform(60, 150)).astype(np.uint8)
    change = int(rng.integers(-2, 4)) * max(1, height // 24)
    if change > 0:
        shape = cv2.dilate(shape, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (change + 1, change + 1)))
    elif change < 0:
        thinner = cv2.erode(shape, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (1 - change, 1 - change)))
        if thinner.sum() > 0.4 * shape.sum():
            shape = thinner
    return _tight(shape)


def synthetic_string(digits28: np.ndarray, rng: np.random.Generator, height: int = 48) -> np.ndarray:
    """Digits left to right as one binary mark: each neighbour touches or overlaps (:data:`TOUCHING_SHARE`) or
    stands up to a third of the height apart; heights and vertical places vary a little."""
    pieces = [digit_shape(digit, int(height * rng.uniform(0.8, 1.05)), rng) for digit in digits28]
    canvas = np.zeros(
        (int(height * 1.25) + 2, sum(piece.shape[1] for piece in pieces) + height * len(pieces)), np.uint8
    )
    right = 0
    for index, piece in enumerate(pieces):
        top = int(rng.uniform(0, canvas.shape[0] - piece.shape[0]))
        left = 0
        if index:
            rows = canvas[top : top + piece.shape[0]]
            both = rows.any(axis=1) & piece.any(axis=1)
            if both.any():  # the offset at which the piece's leftmost ink first meets the canvas's rightmost
                canvas_right = rows.shape[1] - 1 - rows[:, ::-1].argmax(axis=1)
                touch = int(np.max((canvas_right - piece.argmax(axis=1))[both])) + 1
            else:
                touch = right
            if rng.random() < TOUCHING_SHARE:
                left = touch - int(rng.uniform(0, 0.15) * height)
            else:
                left = touch + int(rng.uniform(0.02, 0.35) * height)
            left = max(0, left)
        region = canvas[top : top + piece.shape[0], left : left + piece.shape[1]]
        region |= piece[: region.shape[0], : region.shape[1]]
        right = max(right, left + piece.shape[1])
    return _tight(canvas)


def reader_input(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """A binary mark (any size) -> the reader's (HEIGHT, WIDTH) float32 input in [0, 1], and the input columns per
    column of the mark's ink box (to map frames back). Scaled to the height with area interpolation, left-aligned;
    a mark too wide for :data:`WIDTH` is squeezed."""
    import cv2

    ink = _tight((np.asarray(mask) > 0).astype(np.uint8))
    inner_height, inner_width = HEIGHT - 2 * MARGIN, WIDTH - 2 * MARGIN
    width = min(inner_width, max(1, round(ink.shape[1] * inner_height / max(1, ink.shape[0]))))
    out = np.zeros((HEIGHT, WIDTH), np.float32)
    if ink.any():
        small = cv2.resize(ink.astype(np.float32), (width, inner_height), interpolation=cv2.INTER_AREA)
        out[MARGIN : MARGIN + inner_height, MARGIN : MARGIN + width] = np.clip(small, 0.0, 1.0)
    return out, width / max(1, ink.shape[1])


def synthetic_strings(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` synthetic strings of 1-:data:`MAX_DIGITS` digits drawn from ``images`` (n, 28, 28) and their
    ``labels``: inputs (count, HEIGHT, WIDTH) uint8 (0-255) and targets (count, MAX_DIGITS) int32 (digit + 1,
    0-padded, as Keras' CTC loss expects)."""
    images = np.asarray(images).reshape(-1, 28, 28)
    labels = np.asarray(labels).astype(np.int64)
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"need as many labels as images (at least one), got {len(images)} and {len(labels)}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rng = np.random.default_rng(seed)
    inputs = np.zeros((count, HEIGHT, WIDTH), np.uint8)
    targets = np.zeros((count, MAX_DIGITS), np.int32)
    for index in range(count):
        length = int(rng.integers(1, MAX_DIGITS + 1))
        chosen = rng.integers(0, len(images), length)
        string = synthetic_string(images[chosen], rng, height=int(rng.uniform(28, 64)))
        inputs[index] = np.round(reader_input(string)[0] * 255).astype(np.uint8)
        targets[index, :length] = labels[chosen] + 1
    return inputs, targets


def build_reader(num_classes: int = 10):
    """The string reader (functional Keras model): (HEIGHT, WIDTH, 1) in [0, 1] -> (WIDTH / STRIDE, classes + 1)
    logits, class 0 the blank."""
    import keras
    from keras import layers

    def conv_block(tensor, filters):
        tensor = layers.Conv2D(filters, 3, padding="same", use_bias=False)(tensor)
        tensor = layers.BatchNormalization()(tensor)
        return layers.Activation("relu")(tensor)

    inputs = keras.Input((HEIGHT, WIDTH, 1), name="mark")
    features = conv_block(inputs, 16)
    features = layers.MaxPooling2D(2)(features)
    features = conv_block(features, 32)
    features = layers.MaxPooling2D((2, STRIDE // 2))(features)  # columns halved again only at a STRIDE of 4
    features = conv_block(features, 64)
    features = conv_block(features, 64)  # (HEIGHT / HEIGHT_STRIDE, WIDTH / STRIDE, 64)
    features = layers.Permute((2, 1, 3))(features)
    features = layers.Reshape((WIDTH // STRIDE, (HEIGHT // HEIGHT_STRIDE) * 64))(features)  # one vector per frame
    features = layers.Dense(96, activation="relu")(features)
    features = layers.Dropout(0.2)(features)
    features = layers.Bidirectional(layers.GRU(64, return_sequences=True))(features)
    logits = layers.Dense(num_classes + 1, dtype="float32", name="frames")(features)
    return keras.Model(inputs, logits, name="string_reader")


@dataclass(frozen=True)
class StringReading:
    """What the reader read in one mark: ``digits`` ('' when nothing), per digit its probabilities (n, 10) and the
    column where it was read (in the mark's ink box), and ``confidence``, the probability of the decoded frame path."""

    digits: str
    probabilities: np.ndarray
    columns: np.ndarray
    confidence: float


def decode(logits: np.ndarray, columns_per_input: float, shift: int = 0) -> StringReading:
    """Greedy CTC decoding of one mark's (frames, classes + 1) logits: each run of one digit class between blanks
    or other classes is one digit, its probabilities those of the run's most certain frame (blank left out).
    ``shift``: the input's columns were moved this many pixels right (a view, :func:`read_strings`)."""
    stride = WIDTH / len(logits)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    best = probabilities.argmax(axis=-1)
    digits, rows, centres = [], [], []
    frame = 0
    while frame < len(best):
        label = int(best[frame])
        end = frame
        while end + 1 < len(best) and best[end + 1] == label:
            end += 1
        if label != BLANK:
            run = np.arange(frame, end + 1)
            peak = int(run[probabilities[run, label].argmax()])
            digit_probabilities = np.delete(probabilities[peak], BLANK)
            digits.append(str(label - 1))
            rows.append(digit_probabilities / digit_probabilities.sum())
            centres.append(((frame + end + 1) / 2 * stride - MARGIN - shift) / columns_per_input)
        frame = end + 1
    confidence = float(np.exp(np.log(np.maximum(probabilities.max(axis=-1), 1e-12)).sum()))
    num_classes = logits.shape[-1] - 1
    return StringReading(
        "".join(digits),
        np.array(rows, np.float32).reshape(-1, num_classes),
        np.array(centres, np.float32),
        confidence,
    )


VIEWS = ((0, 0), (1, 0), (2, 0), (3, 0), (0, -1), (0, 1))  # (right, down) pixel shifts each mark is read at


def shifted(image: np.ndarray, right: int, down: int) -> np.ndarray:
    """The image moved ``right`` and ``down`` pixels (negative: left, up), zero fill."""
    moved = np.zeros_like(image)
    height, width = image.shape
    moved[max(0, down) : height + min(0, down), max(0, right) : width + min(0, right)] = image[
        max(0, -down) : height + min(0, -down), max(0, -right) : width + min(0, -right)
    ]
    return moved


def read_strings(model, masks: list) -> list[StringReading]:
    """Read binary marks (each any size) with a string reader model: each mark is read in the :data:`VIEWS`
    (shifted 0-3 px right, and a pixel up and down), and the string most views read is taken (ties: the surest),
    with that view's probabilities and columns. Measured on the development photos of touching digits with the
    stride-4 reader: 73 of 80 read right against 71 with one view."""
    if not masks:
        return []
    prepared = [reader_input(mask) for mask in masks]
    inputs = np.stack([shifted(image, right, down) for image, _ in prepared for right, down in VIEWS])[..., None]
    logits = np.asarray(model.predict(inputs, verbose=0, batch_size=256), np.float32)
    logits = logits.reshape(len(masks), len(VIEWS), *logits.shape[1:])
    readings = []
    for views, (_, scale) in zip(logits, prepared):
        read = [decode(frames, scale, right) for frames, (right, _down) in zip(views, VIEWS)]
        votes = Counter(reading.digits for reading in read)
        readings.append(max(read, key=lambda reading: (votes[reading.digits], reading.confidence)))
    return readings


def string_accuracy(model, inputs: np.ndarray, targets: np.ndarray) -> float:
    """The share of synthetic strings (from :func:`synthetic_strings`) read exactly right."""
    logits = np.asarray(model.predict(inputs[..., None].astype(np.float32) / 255.0, verbose=0, batch_size=256))
    truth = ["".join(str(value - 1) for value in row if value) for row in targets]
    return float(np.mean([decode(frames, 1.0).digits == text for frames, text in zip(logits, truth)]))


def train_reader(
    images: np.ndarray,
    labels: np.ndarray,
    path: Path,
    strings: int,
    seed: int,
    valid_images: np.ndarray | None = None,
    valid_labels: np.ndarray | None = None,
    precision: str = "float32",
    verbose: int = 1,
    log=print,
) -> float | None:
    """Train a string reader on ``strings`` synthetic strings made from ``images``/``labels`` and save it
    (atomically) to ``path``; returns its exact-string accuracy on 2,000 synthetic strings made from the validation
    digits when they are given (else None). ``precision`` is a Keras dtype policy (training's
    ``resolve_precision`` chooses it for the machine)."""
    from digit_recognizer.atomic import atomic_path
    from digit_recognizer.modeling.keras_import import import_keras_quietly

    if strings < 1:
        raise ValueError(f"strings must be at least 1, got {strings}")
    import_keras_quietly()
    import keras

    log(f"string reader: making {strings} synthetic strings of 1-{MAX_DIGITS} digits from {len(labels)} training rows")
    inputs, targets = synthetic_strings(images, labels, strings, seed)
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = build_reader()
        steps = EPOCHS * math.ceil(strings / BATCH_SIZE)
        schedule = keras.optimizers.schedules.CosineDecay(
            LEARNING_RATE / 10, steps, alpha=0.02, warmup_target=LEARNING_RATE, warmup_steps=max(1, steps // 20)
        )
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=keras.losses.CTC())
        model.fit(
            inputs[..., None].astype(np.float32) / 255.0,
            targets,
            batch_size=BATCH_SIZE,
            epochs=EPOCHS,
            verbose=verbose,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    accuracy = None
    if valid_images is not None and len(valid_images):
        accuracy = string_accuracy(model, *synthetic_strings(valid_images, valid_labels, 2000, seed + 1))
        log(f"string reader: {accuracy:.2%} of 2,000 synthetic strings from the validation rows read exactly right")
    with atomic_path(path) as tmp:
        model.save(tmp)
    return accuracy
