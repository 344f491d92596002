"""Issue 14's preprocessing on small synthetic photos: page finding, form boxes and lines, touching digits, debug."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from digit_recognizer.errors import UserError
from digit_recognizer.photos.pipeline import check_out_dir
from digit_recognizer.photos.preprocess import (
    ImageReadError,
    find_form_boxes,
    find_page,
    read_image,
    rectify,
    remove_lines,
    skipped_files,
)
from digit_recognizer.photos.segment import segment_image, split_by_recognition
from test_images import glyph_mask, paper, to_uint8


def note_on_desk(
    angle: float,
    note_colour=(250, 232, 120),
    ink_colour=(190, 40, 50),
    text="7",
    size=(480, 640),
    desk_brightness=55,
):
    """An RGB photo: a coloured square note, rotated by ``angle``, with ``text`` on it, on a dark desk; and its corners."""
    height, width = size
    desk = np.stack([paper(height, width, brightness=desk_brightness, gradient=0.3, seed=3)] * 3, axis=-1)
    side = 260
    note = np.ones((side, side, 3), np.float32) * np.float32(note_colour)
    coverage = glyph_mask((side, side), text, (side // 2 - 45 * len(text), side - 60), 150, 12)[..., None]
    note = note * (1 - coverage) + np.float32(ink_colour) * coverage
    matrix = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    matrix[:, 2] += (width / 2 - side / 2, height / 2 - side / 2)
    warped = cv2.warpAffine(note, matrix, (width, height))
    cover = cv2.warpAffine(np.ones((side, side), np.float32), matrix, (width, height))[..., None]
    corners = cv2.transform(np.float32([[[0, 0], [side, 0], [side, side], [0, side]]]), matrix)[0]
    return to_uint8(desk * (1 - cover) + warped * cover), corners


@pytest.mark.parametrize("angle", [0, 12, -20])
def test_the_note_on_a_dark_desk_is_found_and_read_alone(angle):
    photo, corners = note_on_desk(angle)
    found = find_page(photo)
    assert found is not None
    # Every true corner has a found corner within 4% of the note's side.
    distances = np.linalg.norm(found[:, None, :] - corners[None, :, :], axis=-1)
    assert distances.min(axis=0).max() < 0.04 * 260
    page, to_photo = rectify(photo, found)
    assert abs(page.shape[0] - page.shape[1]) < 0.1 * page.shape[0]  # the square note comes out square
    centre = to_photo @ np.float64([page.shape[1] / 2, page.shape[0] / 2, 1])
    assert np.allclose(centre[:2] / centre[2], corners.mean(axis=0), atol=8)
    segmentation = segment_image(photo)
    assert len(segmentation) == 1  # the red 7, not the desk or the note's edges
    x, y, w, h = segmentation.boxes[0]
    assert cv2.pointPolygonTest(corners.reshape(-1, 1, 2), (x + w / 2, y + h / 2), False) > 0


@pytest.mark.parametrize("angle", [0, -20])
def test_a_coloured_note_on_a_mid_grey_desk_is_found_by_its_colour_and_a_grey_one_is_not(angle):
    # The desk is only somewhat darker than the note: brightness alone does not tell a note from lighting.
    orange = (245, 165, 60)
    grey = (176, 176, 176)  # the orange's luminance
    photo, corners = note_on_desk(angle, note_colour=orange, desk_brightness=125)
    found = find_page(photo)
    assert found is not None, "the orange note is clearly another colour than the grey desk"
    distances = np.linalg.norm(found[:, None, :] - corners[None, :, :], axis=-1)
    assert distances.min(axis=0).max() < 0.04 * 260
    assert len(segment_image(photo)) == 1  # the 7 alone, not the note's edges
    grey_photo, _ = note_on_desk(angle, note_colour=grey, desk_brightness=125)
    assert find_page(grey_photo) is None, "a grey patch only somewhat brighter than its surround is no page"


@pytest.mark.parametrize("shadowed", [False, True])
def test_a_photo_that_is_all_page_has_no_page_to_find(shadowed):
    page = paper(480, 640, gradient=0.3)
    if shadowed:  # a hard shadow across half the page: the lit half is not a page on a desk
        ys, xs = np.mgrid[0:480, 0:640]
        page = page * np.where(xs + 0.5 * ys > 420, 0.5, 1.0)
    photo = to_uint8(page * (1 - 0.8 * glyph_mask((480, 640), "3", (260, 350), 220, 14)))
    assert find_page(photo) is None


def form_photo(digits: str, box: int = 80, gap: int = 0, label: str = "Postcode"):
    """A row of printed boxes (a comb when gap is 0) with one digit in each, and a printed label left of it."""
    width = 260 + len(digits) * (box + gap) + 40
    shape = (3 * box, width)
    lines = np.zeros(shape, np.uint8)
    left, top = 240, box
    for index in range(len(digits)):
        x = left + index * (box + gap)
        cv2.rectangle(lines, (x, top), (x + box, top + box), 255, 2)
    cv2.putText(lines, label, (10, top + box // 2 + 8), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2, cv2.LINE_AA)
    coverage = lines.astype(np.float32) / 255
    for index, digit in enumerate(digits):
        x = left + index * (box + gap) + box // 4
        coverage = np.maximum(coverage, glyph_mask(shape, digit, (x, top + box - 12), int(0.7 * box), 5))
    return to_uint8(paper(*shape, gradient=0.2) * (1 - 0.85 * coverage)), (left, top)


@pytest.mark.parametrize("digits, gap", [("1692", 0), ("40512", 10), ("7777", 0), ("111111", 6)])
def test_form_boxes_are_found_and_read_one_digit_per_box(digits, gap):
    photo, (left, top) = form_photo(digits, gap=gap)
    segmentation = segment_image(photo, debug=True)
    assert len(segmentation) == len(digits)  # the boxes are neither digits nor swallowed, the label is ignored
    for index, (x, y, w, h) in enumerate(segmentation.boxes):
        box_left = left + index * (80 + gap)
        assert box_left <= x + w / 2 <= box_left + 80 and top <= y + h / 2 <= top + 80
    titles = [title for title, _ in segmentation.debug]
    assert titles == ["ink", "lines removed", "cuts"]
    removed = segmentation.debug[1][1]
    assert (removed == (220, 40, 40)).all(axis=-1).sum() > 4 * 80  # the frames are shown removed, in red


def test_removing_lines_keeps_the_strokes_that_cross_them():
    mask = np.zeros((200, 300), np.uint8)
    cv2.line(mask, (0, 100), (299, 100), 255, 2)  # a printed line
    cv2.line(mask, (150, 40), (150, 160), 255, 5)  # a stroke across it
    lines = np.zeros_like(mask)
    lines[99:102, :] = mask[99:102, :]
    cleaned = remove_lines(mask, lines)
    assert cleaned[100, 148:153].all(), "the stroke is joined again where it crossed the line"
    assert not cleaned[100, :140].any() and not cleaned[100, 160:].any(), "the line itself is gone"


def test_specks_left_of_a_removed_frame_are_not_read_with_the_digit_in_its_box():
    from digit_recognizer.photos.segment import marks_in_boxes

    mask = np.zeros((200, 300), np.uint8)
    lines = np.zeros_like(mask)
    cv2.rectangle(lines, (100, 50), (200, 150), 255, 2)  # the frame, removed from the mask
    cv2.line(mask, (150, 75), (150, 130), 255, 6)  # a 1 in the box
    cv2.line(mask, (150, 75), (140, 85), 255, 6)
    for x in (106, 176):  # dashes of the frame's blurred edge (a pixel thick), along its top and bottom lines
        mask[52, x : x + 25] = 255
        mask[148, x : x + 25] = 255
    mask[60:66, 180:186] = 255  # a speck of ink well inside the box is no frame: it stays
    mask[148, 150:172] = 255  # the 1's foot, cut thin by the frame's removal, touches the 1: it stays too
    cv2.line(mask, (150, 130), (150, 143), 255, 6)
    box = ((102, 52, 97, 97),)  # inside the frame's lines
    _, with_specks = marks_in_boxes(mask, box)
    assert with_specks[0].y <= 52 and with_specks[0].bottom >= 148, "without the frame, the dashes join the digit"
    _, marks = marks_in_boxes(mask, box, lines)
    assert len(marks) == 1
    (mark,) = marks
    assert (mark.x, mark.y) == (137, 60) and mark.bottom == 149 and mark.right == 186  # the 1, its foot, the speck


def test_a_lone_digit_is_no_form():
    mask = (glyph_mask((300, 300), "0", (80, 230), 180, 12) > 0.5).astype(np.uint8) * 255
    assert find_form_boxes(mask).boxes == ()


def ring_classifier(crops):
    """A stand-in model that knows only 0: sure (0.99) of a crop that is one whole ring (taller than wide, its middle
    row crossing ink exactly twice), unsure (0.3) of anything else: arcs cut from a ring, two rings."""
    probabilities = []
    for crop in crops:
        ink = crop > 60
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        middle = ink[(rows[0] + rows[-1]) // 2]
        crossings = int(middle[0]) + int((np.diff(middle.astype(np.int8)) == 1).sum())
        ring = (rows[-1] - rows[0]) >= (cols[-1] - cols[0]) and crossings == 2
        row = np.full(10, (1 - (0.99 if ring else 0.3)) / 9)
        row[0] = 0.99 if ring else 0.3
        probabilities.append(row)
    return np.array(probabilities)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_touching_digits_are_cut_into_as_many_pieces_as_the_model_reads_best(count):
    height = 120
    canvas = np.zeros((height + 20, count * 80 + 40), np.uint8)
    for index in range(count):  # rings 84 wide (with the pen), 80 apart: neighbours touch
        cv2.ellipse(canvas, (50 + 80 * index, 70), (38, 58), 0, 0, 360, 255, 9)
    region = canvas > 0
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    region = region[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    pieces = split_by_recognition(region, ring_classifier)
    assert len(pieces) == count
    covered = np.zeros_like(region)
    for index, piece in enumerate(pieces):
        assert not (covered & piece.mask).any(), "pieces do not share ink"
        covered |= piece.mask
        assert (piece.mask <= region).all()
        if index < count - 1:
            junction = 84 + 80 * index - 2  # where this ellipse meets the next, in the region's columns
            assert abs(float(piece.right.mean()) - junction) < 0.15 * height
    assert covered.sum() >= 0.97 * region.sum(), "the pieces hold the mark's ink (but for slivers)"


@pytest.mark.parametrize("width", [100, 150])
def test_a_single_wide_digit_is_not_split(width):
    region = np.zeros((120, width), bool)
    cv2.ellipse(region.view(np.uint8), (width // 2, 60), (width // 2 - 3, 58), 0, 0, 360, 1, 9)
    pieces = split_by_recognition(region, ring_classifier)
    assert len(pieces) == 1 and (pieces[0].mask == region).all()


def interleaved_mark():
    """An L whose thick foot runs under a bar that touches it by a thin joint: no straight column parts them; and
    the two shapes' own masks."""
    first, second = np.zeros((110, 110), bool), np.zeros((110, 110), bool)
    first[4:104, 10:18] = True  # the L's stem
    first[90:104, 10:76] = True  # its foot, running right under the bar
    second[4:86, 55:63] = True  # the bar...
    second[86:90, 58:60] = True  # ...touching the foot
    return first | second, first, second


def test_a_cut_path_goes_round_interleaving_strokes():
    from digit_recognizer.photos.segment import cut_paths, piece_between

    region, first, second = interleaved_mark()
    assert all(region[:, column].any() for column in range(10, 76)), "every column between them holds ink"
    paths = cut_paths(region, band_ratio=0.4)
    columns = np.arange(region.shape[1])[None, :]
    assert (paths[0] == 0).all() and (paths[-1] == region.shape[1]).all()
    parted = [
        path
        for path in paths[1:-1]
        if (first & (columns >= path[:, None])).sum() <= 0.02 * first.sum()
        and (second & (columns < path[:, None])).sum() <= 0.1 * second.sum()
    ]
    assert parted, "some path keeps the L (foot and all) on its left and the bar on its right"
    path = parted[0]
    assert path.max() - path.min() > 20, "the path is not a straight column"
    left = piece_between(region, paths[0], path)
    assert (left & first).sum() >= 0.98 * first.sum()


def test_touching_digits_in_a_photo_are_cut_and_the_debug_picture_draws_the_cut_paths():
    mask = np.zeros((300, 460), np.uint8)
    for index in range(3):
        cv2.ellipse(mask, (120 + 110 * index, 150), (56, 80), 0, 0, 360, 255, 12)  # 124 wide, 110 apart: touching
    photo = to_uint8(paper(300, 460, gradient=0.2) * (1 - 0.8 * (mask > 0)))
    segmentation = segment_image(photo, ring_classifier, debug=True)
    assert len(segmentation) == 3
    centres = [x + w / 2 for x, _y, w, _h in segmentation.boxes]
    assert all(abs(centre - (120 + 110 * index)) < 25 for index, centre in enumerate(centres))
    cuts = dict(segmentation.debug)["cuts"]
    red = (cuts[..., 0] > 200) & (cuts[..., 1] < 60) & (cuts[..., 2] < 60)
    for joint in (175, 285):  # where the rings touch
        assert red[100:200, joint - 15 : joint + 15].any(), "the cut between two rings is drawn"
    assert not red[:, :100].any(), "no cut left of the first ring"


def test_gif_files_in_a_folder_are_reported_not_skipped_silently(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((50, 50), 200, np.uint8))
    (tmp_path / "b.gif").write_bytes(b"GIF89a" + b"\0" * 20)
    skipped = skipped_files([tmp_path])
    assert [path.name for path, _ in skipped] == ["b.gif"] and "GIF" in skipped[0][1]
    with pytest.raises(ImageReadError, match="GIF"):
        read_image(tmp_path / "b.gif")


def test_out_pointing_at_a_file_is_a_one_line_error(tmp_path):
    existing = tmp_path / "predictions.csv"
    existing.write_text("x\n")
    with pytest.raises(UserError, match="not a folder"):
        check_out_dir(existing)
    assert check_out_dir(tmp_path / "new") == tmp_path / "new"


# ---------------------------------------------------------------- hard shadows (second round)
def shadowed_page(text="7", depth=0.5, shape=(480, 640), edge_x=300, pen=6, ink_strength=0.5):
    """A gray photo: a thin, faint digit on paper, the left part of the page (up to ``edge_x``, tilted a little) in
    a hard-edged shadow that runs across the whole page; and the shadow's edge column per row."""
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    edge = edge_x + 0.15 * (ys - height / 2)
    shade = 1.0 - depth / (1.0 + np.exp(np.clip((xs - edge) / 1.5, -50, 50)))  # dark left of the edge, a soft step
    coverage = glyph_mask(shape, text, (edge_x - 70, 360), 240, pen)
    page = paper(*shape, gradient=0.2) * shade * (1 - ink_strength * coverage)
    return to_uint8(page), edge[:, 0]


@pytest.mark.parametrize("depth", [0.45, 0.6])
def test_a_hard_shadow_edge_is_not_ink(depth):
    from digit_recognizer.photos.preprocess import binarize, detect_polarity, ink_contrast

    photo, edge = shadowed_page(depth=depth, pen=4, ink_strength=0.35)  # a faint pencil digit
    assert detect_polarity(photo) == "dark-on-light"
    mask = binarize(ink_contrast(photo, "dark-on-light"))
    rows = np.arange(photo.shape[0])
    away = (rows < 60) | (rows > 420)  # rows the digit does not reach
    band = np.abs(np.arange(photo.shape[1])[None, :] - edge[:, None]) <= 12
    assert mask[away][band[away]].sum() == 0, "the shadow's edge became ink"
    digit = glyph_mask(photo.shape, "7", (230, 360), 240, 4) > 0.5
    assert (mask > 0)[digit].mean() > 0.8, "the digit's strokes, lit and shadowed, are ink"
    segmentation = segment_image(photo)
    assert len(segmentation) == 1


def test_a_page_mostly_in_shadow_is_still_dark_ink_on_light_paper():
    from digit_recognizer.photos.preprocess import detect_polarity

    photo, _ = shadowed_page(text="4", depth=0.55, edge_x=470)  # three quarters of the page shadowed
    assert detect_polarity(photo) == "dark-on-light"


def test_a_marker_stroke_wider_than_the_near_paper_disc_is_ink_all_across():
    from digit_recognizer.photos.preprocess import NEAR_PAPER_FRACTION, binarize, ink_contrast

    shape = (400, 480)
    coverage = np.zeros(shape, np.float32)
    wide = int(1.5 * NEAR_PAPER_FRACTION * shape[0])
    cv2.line(coverage, (240, 60), (240, 340), 1.0, wide)
    mask = binarize(ink_contrast(to_uint8(paper(*shape) * (1 - 0.8 * coverage)), "dark-on-light"))
    assert (mask[100:300, 240 - wide // 2 + 4 : 240 + wide // 2 - 4] > 0).mean() > 0.97


def test_close_double_sides_of_neighbouring_boxes_are_a_frame():
    # Separate boxes 4 pixels apart, blurred: their facing sides merge into one thick vertical bar.
    photo, (left, top) = form_photo("4051", gap=4)
    photo = cv2.GaussianBlur(photo, (0, 0), 1.6)
    segmentation = segment_image(photo)
    assert len(segmentation) == 4
    for index, (x, _y, w, _h) in enumerate(segmentation.boxes):
        assert left + index * 84 <= x + w / 2 <= left + index * 84 + 80


def test_a_stroke_lying_along_a_box_line_is_kept():
    mask = np.zeros((200, 300), np.uint8)
    cv2.line(mask, (0, 50), (299, 50), 255, 3)  # the box's top line
    cv2.line(mask, (120, 53), (200, 53), 255, 5)  # a digit's top bar lying on it
    cv2.line(mask, (200, 53), (140, 170), 255, 5)  # the rest of the 7
    lines = np.zeros_like(mask)
    lines[48:53, :] = 255
    cleaned = remove_lines(mask, lines)
    assert cleaned[48:56, 130:195].any(axis=0).all(), "the 7's bar stays"
    assert not cleaned[48:53, :100].any(), "the line itself is gone"


# ---------------------------------------------------------------- form frames (sixth round)
def separate_boxes(count: int = 4, box: int = 70, gap: int = 8, line: int = 5, shape=(200, 500)):
    """A mask of ``count`` separate printed boxes ``box`` wide inside, ``gap`` apart, lines ``line`` thick; and the
    boxes' (left, top) inner corners."""
    mask = np.zeros(shape, np.uint8)
    corners = []
    for index in range(count):
        x = 60 + index * (box + 2 * line + gap)
        mask[50 : 50 + box + 2 * line, x : x + box + 2 * line] = 255
        mask[50 + line : 50 + line + box, x + line : x + line + box] = 0
        corners.append((x + line, 50 + line))
    return mask, corners


def test_a_side_beyond_the_rounded_ends_of_its_frame_lines_is_removed_whole():
    mask, corners = separate_boxes(count=2)
    for x, y in corners:  # blurred, rounded corners: the frame's lines stop a pixel short of each box's outer sides
        for column in (x - 5, x + 74):
            mask[y - 5 : y, column] = 0
            mask[y + 70 : y + 75, column] = 0
    form = find_form_boxes(mask)
    assert len(form.boxes) == 2
    for x, y in corners:
        assert (form.lines[y : y + 70, x - 5 : x] > 0).all(), "the whole of each box's left side is frame"
        assert (form.lines[y : y + 70, x + 70 : x + 75] > 0).all(), "and of its right side"


def test_a_bar_along_most_of_a_box_top_is_no_line_and_the_box_is_still_found():
    mask, corners = separate_boxes()
    x, y = corners[0]
    mask[y : y + 7, x + 5 : x + 60] = 255  # a 7's thick bar lying along the first box's top, inside it
    cv2.line(mask, (x + 58, y + 5), (x + 25, y + 66), 255, 6)
    form = find_form_boxes(mask)
    assert len(form.boxes) == 4
    assert form.boxes[0][0] == x and abs(form.boxes[0][2] - 70) <= 2
    assert not (form.lines[y + 1 : y + 7, x + 5 : x + 60] > 0).any(), "the bar is not taken with the line"


def test_a_flat_stroke_across_a_box_is_no_line_of_a_smaller_box():
    mask, corners = separate_boxes()
    x, y = corners[2]
    mask[y + 45 : y + 49, x : x + 70] = 255  # a 2's flat base running from side to side
    cv2.line(mask, (x + 10, y + 46), (x + 50, y + 8), 255, 4)
    form = find_form_boxes(mask)
    assert [box[:2] for box in form.boxes] == corners, "four boxes, none inside another"
    assert not (form.lines[y + 45 : y + 49, x + 5 : x + 65] > 0).any(), "the base stays ink"


@pytest.mark.parametrize("gap", [0, 8])
def test_a_straight_one_touching_its_box_top_and_bottom_is_no_side(gap):
    mask, corners = separate_boxes(gap=gap)
    x, y = corners[1]
    mask[y - 5 : y + 75, x + 33 : x + 38] = 255  # a 1 standing from the top line to the bottom line
    form = find_form_boxes(mask)
    assert [box[:2] for box in form.boxes] == corners, "the box holding the 1 is one box"
    assert not (form.lines[y + 5 : y + 65, x + 33 : x + 38] > 0).any(), "the 1 stays ink"


def test_separate_boxes_whose_top_lines_touch_are_all_found():
    mask, corners = separate_boxes()
    x, _y = corners[1]
    mask[50:55, x + 75 : x + 83] = 255  # the top lines of boxes 2 and 3 joined into one, their bottom lines apart
    form = find_form_boxes(mask)
    assert [box[:2] for box in form.boxes] == corners


def test_a_stroke_ending_on_a_box_line_leaves_no_stub_of_the_line():
    mask = np.zeros((200, 300), np.uint8)
    mask[148:153, :] = 255  # the box's bottom line
    cv2.line(mask, (150, 60), (150, 147), 255, 6)  # a stem coming down onto it
    lines = np.zeros_like(mask)
    lines[148:153, :] = 255
    cleaned = remove_lines(mask, lines)
    assert not cleaned[148:153, :].any(), "no leg of the line under the stem"
    assert cleaned[60:147, 150].all()


def test_a_sides_ragged_edge_columns_go_with_it():
    mask, corners = separate_boxes(count=2)
    x, y = corners[1]
    rows = np.arange(y, y + 70)
    mask[rows[rows % 3 != 0], x - 6] = 255  # a JPEG's ragged edges: the columns either side of the box's left side,
    mask[rows[rows % 3 != 1], x] = 255  # each two thirds covered
    form = find_form_boxes(mask)
    assert len(form.boxes) == 2
    edges = mask[y : y + 70, x - 6 : x + 1] > 0
    assert (form.lines[y : y + 70, x - 6 : x + 1][edges] > 0).all()


def test_the_gap_between_close_sides_of_neighbouring_boxes_is_no_part_of_a_box_split_by_a_stroke():
    from digit_recognizer.photos.preprocess import _without_upright_strokes

    sides_and_a_stroke = [(542, 548), (550, 558), (587, 593)]  # two close sides, then a 1 in a row of short "boxes"
    assert _without_upright_strokes(sides_and_a_stroke, span=43) == sides_and_a_stroke
    split = [(0, 4), (30, 34), (65, 69)]  # a box 64 wide split by a stroke in its middle
    assert _without_upright_strokes(split, span=64) == [(0, 4), (65, 69)]


def test_two_boxes_a_digits_strokes_frame_out_of_line_are_no_form():
    mask = np.zeros((300, 400), np.uint8)
    for left, top in ((100, 80), (220, 140)):  # two digits' flat strokes and sides, each framing one "box"
        mask[top : top + 4, left : left + 40] = 255
        mask[top + 40 : top + 44, left : left + 40] = 255
        mask[top : top + 44, left : left + 4] = 255
        mask[top : top + 44, left + 36 : left + 40] = 255
    assert find_form_boxes(mask).boxes == (), "they do not stand side by side"
    lined_up, _corners = separate_boxes(count=2)
    assert len(find_form_boxes(lined_up).boxes) == 2
