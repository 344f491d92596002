"""Issue 14, third round, on small synthetic photos: hard shadows on pencil, tiny numbers, digits touching form boxes."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from digit_recognizer.photos.preprocess import DARK_ON_LIGHT, detect_polarity, to_gray

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def render():
    """The benchmark's renderer (scripts/make_custom_images.py), whose functions are importable for stress tests."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import make_custom_images
    finally:
        sys.path.remove(str(REPO_ROOT / "scripts"))
    return make_custom_images


@pytest.fixture(scope="module")
def printed_pool(render):
    """A pool of 28x28 printed digits (two weights each) standing in for MNIST's."""
    images, labels = [], []
    for digit in range(10):
        for weight in (2, 3):
            image = np.zeros((28, 28), np.uint8)
            cv2.putText(image, str(digit), (6, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, weight, cv2.LINE_AA)
            images.append(image)
            labels.append(digit)
    return render.DigitPool(np.array(images), np.array(labels))


def rgb(photo) -> np.ndarray:
    return cv2.cvtColor(photo.image, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------- polarity under a hard shadow
def test_a_pencil_digit_under_a_hard_shadow_is_dark_ink_whatever_the_shadow_covers(render, printed_pool):
    # The shadow often covers most of the page: the lit part then looks like light ink to median backgrounds.
    wrong = []
    for seed in range(30):
        photo = render.render_pencil_shadow(np.random.default_rng(seed), printed_pool)
        if detect_polarity(to_gray(rgb(photo))) != DARK_ON_LIGHT:
            wrong.append(seed)
    assert wrong == []


# ---------------------------------------------------------------- strokes across a hard shadow's edge
def shadow_photo(render, seed: int, quality: int = 75, angle: float = 0.3, stroke=((250, 90), (390, 390))):
    """A faint thin pencil stroke (a long diagonal line from ``stroke[0]`` to ``stroke[1]``) crossing a hard shadow's
    straight edge, JPEG-compressed as a phone would: (gray image, the stroke's pixels, the pixels within 10 of the
    edge's middle)."""
    rng = np.random.default_rng(seed)
    shape = (480, 640)
    coverage = np.zeros(shape, np.float32)
    cv2.line(coverage, *stroke, 1.0, 6, cv2.LINE_AA)
    page = render.paper(shape, rng, gradient=0.25)
    render.put_ink(page, render.pencil(coverage, rng), 0, 0, color=(115, 112, 110), strength=0.6)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    distance = (xs - 320) * np.cos(angle) + (ys - 240) * np.sin(angle)
    page *= (1 - 0.55 / (1.0 + np.exp(-distance / 1.5)))[..., None]
    image = render.camera(page, rng, blur=0.9)
    _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    gray = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
    return gray, coverage > 0.5, np.abs(distance) <= 10


@pytest.mark.parametrize(
    "seed",
    [
        0,
        pytest.param(
            1,
            marks=pytest.mark.xfail(
                reason="known miss: the closing's paper sits on the noise's upper envelope, so in the shadow JPEG's "
                "blocks along the edge reach the ink threshold",
                strict=True,
            ),
        ),
        2,
        3,
        4,
        5,
    ],
)
def test_a_stroke_across_a_shadow_edge_stays_one_piece_and_the_edge_is_no_ink(render, seed):
    from digit_recognizer.photos.preprocess import binarize, bridge_shadow_edges, ink_contrast, shadow_edges

    gray, stroke, edge = shadow_photo(render, seed)
    edges = shadow_edges(gray)
    assert edges[240, 300:340].any() and not edges[stroke].all(), "the edge is found, not the whole stroke"
    mask = bridge_shadow_edges(binarize(ink_contrast(gray, DARK_ON_LIGHT), edges=edges), edges)
    near_stroke = cv2.dilate(stroke.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    assert not (mask > 0)[edge & ~near_stroke].any(), "the shadow's edge became ink"
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    assert (labels[stroke] == biggest).mean() > 0.9, "the stroke is one piece on both sides of the edge"


@pytest.mark.parametrize(
    "seed",
    [0, 1, 2]
    + [
        pytest.param(
            seed,
            marks=pytest.mark.xfail(
                reason="known miss: JPEG's blocks leave the stroke's middle, lying on the ramp, under the threshold "
                "even against the paper along the edge (a third of the stroke in a second piece)",
                strict=True,
            ),
        )
        for seed in (3, 4, 5)
    ],
)
def test_a_stroke_lying_along_the_shadows_ramp_is_kept_and_the_edge_is_no_ink(render, seed):
    # The stroke crosses the edge at 6 degrees: all of it lies within 20 pixels of the edge, on the shadow's ramp,
    # where the disc-closing paper is too dark and only clear ink counts.
    from digit_recognizer.photos.preprocess import bridge_shadow_edges, ink_contrast, ink_on_shadow_edges, shadow_edges

    gray, stroke, edge = shadow_photo(render, seed, stroke=((345, 100), (290, 380)))
    edges = shadow_edges(gray)
    contrast = ink_contrast(gray, DARK_ON_LIGHT)
    mask = bridge_shadow_edges(ink_on_shadow_edges(gray, DARK_ON_LIGHT, contrast, edges), edges)
    near_stroke = cv2.dilate(stroke.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    assert not (mask > 0)[edge & ~near_stroke].any(), "the shadow's edge became ink"
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    assert count > 1, "the stroke is lost"
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    assert (labels[stroke] == biggest).mean() > 0.8, "the stroke is one piece, nearly all of it"


def test_faint_ink_along_a_shadow_edge_is_not_joined_to_a_stroke_crossing_it():
    from digit_recognizer.photos.preprocess import binarize

    contrast = np.zeros((200, 300), np.float32)
    contrast[98:102, :] = 0.09  # JPEG's ringing along the edge: fainter than ink, above the paper's noise
    contrast[20:180, 148:153] = 0.3  # a pencil stroke across it
    edges = np.zeros(contrast.shape, bool)
    edges[90:110, :] = True
    assert (binarize(contrast)[100, :100] > 0).any(), "without the edge, hysteresis joins the faint band"
    mask = binarize(contrast, edges=edges)
    assert not (mask[100, :130] > 0).any() and not (mask[100, 170:] > 0).any()
    assert (mask[20:180, 150] > 0).all()


# ---------------------------------------------------------------- tiny numbers
def tiny_number_photo(text="385", height=20, shape=(480, 640), angle=0.0, quality=30, pen=2, origin=(300, 250)):
    """A gray photo: a number ``height`` pixels tall (turned by ``angle`` degrees about its start), JPEG at ``quality``."""
    from test_images import glyph_mask, paper

    coverage = np.zeros(shape, np.float32)
    for index, digit in enumerate(text):  # spaced like handwriting, not touching as printed digits do
        position = (origin[0] + int(index * 0.85 * height), origin[1])
        coverage = np.maximum(coverage, glyph_mask(shape, digit, position, height, pen))
    if angle:
        rotation = cv2.getRotationMatrix2D(origin, angle, 1.0)
        coverage = cv2.warpAffine(coverage, rotation, (shape[1], shape[0]))
    page = cv2.GaussianBlur(paper(*shape, gradient=0.3) * (1 - 0.8 * coverage), (0, 0), 0.7)
    image = np.clip(page + np.random.default_rng(0).normal(0, 3, shape), 0, 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE), coverage > 0.5


def enlargement(segmentation, coverage) -> float:
    """How much taller the ink is in the debug picture of the cuts than in the photo."""
    cuts = dict(segmentation.debug)["cuts"]
    ink_rows = np.flatnonzero((cuts == 255).all(axis=-1).any(axis=1))  # the ink is white, the boxes orange
    return (np.ptp(ink_rows) + 1) / (np.ptp(np.flatnonzero(coverage.any(axis=1))) + 1)


@pytest.mark.parametrize("shape", [(480, 640), (1200, 1600)])
def test_a_20_pixel_number_is_found_in_a_large_photo(shape):
    from digit_recognizer.photos.segment import segment_image

    origin = (shape[1] // 2 - 30, shape[0] // 2 + 10)
    photo, coverage = tiny_number_photo("385", height=20 * shape[0] // 480, shape=shape, origin=origin)
    segmentation = segment_image(photo, debug=True)
    assert len(segmentation) == 3
    rows, cols = np.nonzero(coverage)
    for x, y, w, h in segmentation.boxes:
        assert cols.min() - 3 <= x + w / 2 <= cols.max() + 3 and rows.min() - 3 <= y + h / 2 <= rows.max() + 3
    assert enlargement(segmentation, coverage) > 2, "the digits were cut again from their region, enlarged"


def test_a_tiny_number_written_at_a_slant_is_cut_enlarged_too():
    from digit_recognizer.photos.segment import segment_image

    photo, coverage = tiny_number_photo("385", angle=8.0)
    segmentation = segment_image(photo, debug=True)
    assert len(segmentation) == 3
    assert enlargement(segmentation, coverage) > 2, "turned upright, the number is still cut again enlarged"


@pytest.mark.parametrize("axes, pen, blur", [((4, 9), 5, 1.2), ((4, 9), 4, 1.6), ((5, 10), 5, 1.5)])
def test_a_tiny_digit_whose_loop_closes_at_half_its_strength_is_read_at_the_level_the_model_is_surest_of(
    axes, pen, blur, monkeypatch
):
    from digit_recognizer.photos import segment
    from test_images import paper, to_uint8
    from test_images_preprocess import ring_classifier

    coverage = np.zeros((480, 640), np.float32)
    for index in range(3):  # three 0s 20 px tall, their holes a few pixels across: blurred, they nearly close
        cv2.ellipse(coverage, (300 + 22 * index, 240), axes, 0, 0, 360, 1.0, pen, cv2.LINE_AA)
    page = paper(480, 640, gradient=0.2) * (1 - 0.6 * np.clip(cv2.GaussianBlur(coverage, (0, 0), blur), 0, 1))
    photo = to_uint8(page)
    segmentation = segment.segment_image(photo, ring_classifier)
    assert len(segmentation) == 3
    assert (ring_classifier(segmentation.crops)[:, 0] > 0.9).all(), "every 0 is read as a whole ring"
    monkeypatch.setattr(segment, "TINY_OTHER_LEVELS", ())
    at_half = segment.segment_image(photo, ring_classifier)
    assert (ring_classifier(at_half.crops)[:, 0] < 0.5).all(), "at half their strength the holes are closed"


# ---------------------------------------------------------------- digits touching a form's frame
def boxed_photo(digits="7407", box=80, frame_level=0.85, frame=2, touching=True):
    """A row of printed boxes (a comb) with a digit in each; with ``touching`` each digit's top lies along its
    box's top line (a 7's bar, a 0's top). Frame ink ``frame_level`` dark. Returns (photo, left, top)."""
    from test_images import glyph_mask, paper

    shape = (3 * box, 120 + len(digits) * box + 40)
    left, top = 120, box
    lines = np.zeros(shape, np.uint8)
    for index in range(len(digits)):
        cv2.rectangle(lines, (left + index * box, top), (left + (index + 1) * box, top + box), 255, frame)
    coverage = np.zeros(shape, np.float32)
    for index, digit in enumerate(digits):
        height = int(0.7 * box)
        baseline = top + frame + height - (1 if touching else -8)
        coverage = np.maximum(coverage, glyph_mask(shape, digit, (left + index * box + box // 4, baseline), height, 5))
    page = paper(*shape, gradient=0.2) * (1 - frame_level * lines / 255.0) * (1 - 0.85 * coverage)
    image = np.clip(cv2.GaussianBlur(page, (0, 0), 0.8) + np.random.default_rng(0).normal(0, 2, shape), 0, 255)
    return image.astype(np.uint8), left, top, coverage > 0.5


def test_a_digit_lying_along_its_box_line_keeps_its_stroke_when_the_frame_goes():
    from digit_recognizer.photos.segment import segment_image

    photo, left, top, coverage = boxed_photo("7777")
    segmentation = segment_image(photo, debug=True)
    assert len(segmentation) == 4
    kept = dict(segmentation.debug)["lines removed"]
    white = (kept == 255).all(axis=-1)
    bar = coverage & (np.arange(photo.shape[0])[:, None] > top + 3)  # the 7s' bars below the line's own rows
    assert white[bar].mean() > 0.9, "the bars lying along the box's top line stay"
    free = ~coverage.any(axis=0)  # columns no digit reaches, away from the boxes' sides (their corners may stay)
    free[: left + 3] = False
    for index in range(5):
        free[left + index * 80 - 4 : left + index * 80 + 5] = False
    assert not white[top - 1 : top + 3][:, free].any(), "the box's top line is gone where no digit touches it"


def test_a_light_thin_frame_is_found_though_the_ink_mask_holds_only_pieces_of_it():
    from digit_recognizer.photos.preprocess import binarize, faint_ink, find_form_boxes, ink_contrast

    photo, left, top, _ = boxed_photo("4051", frame_level=0.3, frame=1, touching=False)
    contrast = ink_contrast(photo, DARK_ON_LIGHT)
    assert len(find_form_boxes(binarize(contrast)).boxes) < 4, "the dark digits set a threshold the frame misses"
    boxes = find_form_boxes(faint_ink(contrast)).boxes
    assert len(boxes) == 4
    for index, (x, y, _w, _h) in enumerate(boxes):
        assert abs(x - (left + index * 80)) <= 4 and abs(y - top) <= 4
