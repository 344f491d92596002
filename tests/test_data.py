"""Reading the competition CSVs: reshaping, validation with one precise message per problem, the content-keyed cache."""

from __future__ import annotations

import numpy as np
import pytest

from badfiles import BAD_TRAIN_CSVS, CSV_ROWS, csv_text, edit_cell, to_bytes
from digit_recognizer import data
from digit_recognizer.data import check_header, expected_header, load_csv, rows_to_images, to_float
from digit_recognizer.errors import UserError

ROWS = CSV_ROWS  # data rows in the small CSVs below


@pytest.fixture(scope="module")
def train_text(sample_frames):
    return csv_text(sample_frames[0].head(ROWS))


@pytest.fixture(scope="module")
def test_text(sample_frames):
    return csv_text(sample_frames[1].head(ROWS))


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


# ---------------------------------------------------------------- reshaping
@pytest.mark.parametrize("rows", [0, 1, 7])
def test_rows_to_images_is_row_major(rows):
    # pixelK lands at (K // 28, K % 28): Kaggle's pixel numbering, for any number of rows
    rng = np.random.default_rng(rows)
    pixels = rng.integers(0, 256, size=(rows, 784), dtype=np.uint8)
    images = rows_to_images(pixels)
    assert images.shape == (rows, 28, 28, 1) and images.dtype == np.uint8
    for k in (0, 27, 28, 400, 783):
        assert np.array_equal(images[:, k // 28, k % 28, 0], pixels[:, k])


@pytest.mark.parametrize("shape", [(3, 783), (3, 785), (784,), (2, 28, 28)])
def test_rows_to_images_rejects_other_shapes(shape):
    # anything but (n, 784) is refused rather than silently reshaped
    with pytest.raises(ValueError, match="784"):
        rows_to_images(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_to_float_scales_to_unit_interval(dtype):
    # float32 in [0, 1] with 0 -> 0 and 255 -> 1, the input left unchanged
    pixels = np.array([[0, 1, 128, 254, 255]], dtype=dtype)
    before = pixels.copy()
    scaled = to_float(pixels)
    assert scaled.dtype == np.float32
    assert scaled.min() == 0.0 and scaled.max() == 1.0 and np.all(np.diff(scaled) > 0)
    assert np.array_equal(pixels, before) and pixels.dtype == dtype


@pytest.mark.parametrize("labelled", [True, False])
def test_load_csv_keeps_uint8_pixels_and_the_values(tmp_path, competition, sample_frames, labelled):
    # images stay uint8 (one byte a pixel) and equal the CSV's cells; labels are int64
    frame = sample_frames[0 if labelled else 1].head(ROWS)
    path = _write(tmp_path, "train.csv" if labelled else "test.csv", csv_text(frame))
    dataset = load_csv(path, competition, labelled=labelled)
    assert dataset.images.dtype == np.uint8 and dataset.images.shape == (ROWS, 28, 28, 1)
    pixels = frame[competition.pixel_columns].to_numpy()
    assert np.array_equal(dataset.images.reshape(ROWS, -1), pixels)
    if labelled:
        assert dataset.labels.dtype == np.int64 and np.array_equal(dataset.labels, frame["label"].to_numpy())
    else:
        assert dataset.labels is None


# ---------------------------------------------------------------- headers
@pytest.mark.parametrize(
    "header, expected",
    [
        (lambda h: h, None),
        (lambda h: [";".join(h)], "separated by ';'"),
        (lambda h: ["\t".join(h)], "separated by tabs"),
        (lambda h: [h[0], h[1], h[1], *h[3:]], "repeats column 'pixel0'"),
        (lambda h: [*h, "extra"], "extra column 'extra'"),
        (lambda h: h[:-1], "missing 'pixel783'"),
        (lambda h: [h[0], "Pixel0", *h[2:]], "header column 2 is 'Pixel0', expected 'pixel0'"),
        (lambda h: h[1:] + ["label"], "header column 1 is 'pixel0', expected 'label'"),
    ],
)
def test_check_header_names_the_first_difference(tmp_path, competition, header, expected):
    # an exact header passes; each kind of difference gets its own message naming the column
    good = expected_header(competition, labelled=True)
    if expected is None:
        check_header(tmp_path / "train.csv", header(good), good)
        return
    with pytest.raises(UserError, match=f"^train.csv: .*{_escape(expected)}"):
        check_header(tmp_path / "train.csv", header(good), good)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


# ---------------------------------------------------------------- bad train.csv / test.csv


@pytest.mark.parametrize(
    "mutate, expected", [case[1:] for case in BAD_TRAIN_CSVS], ids=[case[0] for case in BAD_TRAIN_CSVS]
)
def test_bad_train_csv_is_one_precise_user_error(tmp_path, competition, train_text, mutate, expected):
    # each problem is a UserError naming the file and, where there is one, the row and column
    path = _write(tmp_path, "train.csv", mutate(train_text))
    with pytest.raises(UserError) as caught:
        load_csv(path, competition, labelled=True, cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert "train.csv" in message and expected in message, message
    assert "\n" not in message and len(message) <= 250, message  # every quoted value is bounded
    assert not (tmp_path / "cache").exists()  # nothing cached for a bad file


BAD_TEST = [
    ("label-column", lambda t: t, "header column 1 is 'label', expected 'pixel0'"),
    ("pixel-300", lambda t: edit_cell(t, 3, 10, "300"), "row 3, column 'pixel10': pixel 300 is outside 0-255"),
]


@pytest.mark.parametrize("mutate, expected", [case[1:] for case in BAD_TEST], ids=[case[0] for case in BAD_TEST])
def test_bad_test_csv_is_one_precise_user_error(tmp_path, competition, train_text, test_text, mutate, expected):
    # test.csv is checked against its own header (no label column) and the pixel range
    source = train_text if "label" in expected else test_text
    path = _write(tmp_path, "test.csv", mutate(source))
    with pytest.raises(UserError, match=_escape(expected)):
        load_csv(path, competition, labelled=False)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_missing_file_or_directory(tmp_path, competition, kind):
    # a missing file says how to get it; a directory in its place is named as such
    path = tmp_path / "train.csv"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(UserError, match="fetch" if kind == "missing" else "is a directory"):
        load_csv(path, competition, labelled=True)


@pytest.mark.parametrize("bom, crlf", [(True, False), (False, True), (True, True)])
def test_bom_and_crlf_are_accepted(tmp_path, competition, train_text, bom, crlf):
    # a UTF-8 byte-order mark and Windows line endings read exactly like the plain file
    plain = load_csv(_write(tmp_path, "plain.csv", train_text), competition, labelled=True)
    variant = load_csv(
        _write(tmp_path, "train.csv", to_bytes(train_text, bom=bom, crlf=crlf)), competition, labelled=True
    )
    assert np.array_equal(plain.images, variant.images) and np.array_equal(plain.labels, variant.labels)


# ---------------------------------------------------------------- the cache
@pytest.fixture
def counting_parse(monkeypatch):
    """Count calls to parse_csv (a cache hit makes none)."""
    calls = []
    original = data.parse_csv

    def parse(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(data, "parse_csv", parse)
    return calls


def test_cache_is_used_for_the_same_content(tmp_path, competition, train_text, counting_parse):
    # the second load of unchanged content reads the cache (no parse) and returns the same arrays
    path = _write(tmp_path, "train.csv", train_text)
    first = load_csv(path, competition, labelled=True, cache_dir=tmp_path / "cache")
    second = load_csv(path, competition, labelled=True, cache_dir=tmp_path / "cache")
    assert len(counting_parse) == 1
    assert np.array_equal(first.images, second.images) and np.array_equal(first.labels, second.labels)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"train-{first.fingerprint}-v{data.CACHE_VERSION}.npz"]


def test_changed_csv_rebuilds_the_cache(tmp_path, competition, train_text, counting_parse):
    # new content (same name, same size) -> new fingerprint, parsed again, the stale cache file removed
    path = _write(tmp_path, "train.csv", train_text)
    first = load_csv(path, competition, labelled=True, cache_dir=tmp_path / "cache")
    changed = edit_cell(train_text, 1, 0, str((int(train_text.splitlines()[1].split(",")[0]) + 1) % 10))
    assert len(changed) == len(train_text)
    path.write_text(changed)
    second = load_csv(path, competition, labelled=True, cache_dir=tmp_path / "cache")
    assert len(counting_parse) == 2 and second.fingerprint != first.fingerprint
    assert second.labels[0] == (first.labels[0] + 1) % 10
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"train-{second.fingerprint}-v{data.CACHE_VERSION}.npz"]


def _corrupt_caches():
    def truncated(path):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    def garbage(path):
        path.write_bytes(b"not an npz file at all")

    def empty(path):
        path.write_bytes(b"")

    def wrong_shape(path):
        np.savez(path, images=np.zeros((3, 27, 28, 1), np.uint8), labels=np.zeros(3, np.int64))

    def wrong_labels(path):
        np.savez(path, images=np.zeros((3, 28, 28, 1), np.uint8), labels=np.array([0, 11, 2]))

    def no_rows(path):
        np.savez(path, images=np.zeros((0, 28, 28, 1), np.uint8), labels=np.zeros(0, np.int64))

    def pickled(path):
        np.savez(path, images=np.array([{"evil": 1}], dtype=object), labels=np.zeros(1, np.int64))

    return [truncated, garbage, empty, wrong_shape, wrong_labels, no_rows, pickled]


@pytest.mark.parametrize("corrupt", _corrupt_caches(), ids=lambda f: f.__name__)
def test_corrupt_cache_is_rebuilt_never_used(tmp_path, competition, train_text, counting_parse, corrupt):
    # a damaged or inconsistent cache file is ignored: the CSV is parsed again and the cache rewritten
    path = _write(tmp_path, "train.csv", train_text)
    good = load_csv(path, competition, labelled=True, cache_dir=tmp_path / "cache")
    cache_file = next((tmp_path / "cache").iterdir())
    corrupt(cache_file)
    again = load_csv(path, competition, labelled=True, cache_dir=tmp_path / "cache")
    assert len(counting_parse) == 2
    assert np.array_equal(again.images, good.images) and np.array_equal(again.labels, good.labels)
    with np.load(cache_file, allow_pickle=False) as rebuilt:
        assert np.array_equal(rebuilt["images"], good.images)


# ---------------------------------------------------------------- issue 13: exact parsing, bounded reading
def _quote_every_field(text: str) -> str:
    return "\n".join(",".join(f'"{field}"' for field in line.split(",")) for line in text.splitlines()) + "\n"


@pytest.mark.parametrize("labelled", [True, False])
def test_fully_quoted_csv_is_read_like_the_plain_file(tmp_path, competition, train_text, test_text, labelled):
    # "label","pixel0",... with every cell quoted is well-formed CSV: the same arrays as the plain file
    text = train_text if labelled else test_text
    plain = load_csv(_write(tmp_path, "plain.csv", text), competition, labelled=labelled)
    quoted = load_csv(
        _write(tmp_path, "train.csv" if labelled else "test.csv", _quote_every_field(text)),
        competition,
        labelled=labelled,
    )
    assert np.array_equal(plain.images, quoted.images)
    assert (plain.labels is None and quoted.labels is None) or np.array_equal(plain.labels, quoted.labels)


def test_extra_field_on_every_test_row_is_refused_not_shifted(tmp_path, competition, test_text):
    # test.csv with one more field on every data row once shifted every image by one pixel without a word
    header, *rows = test_text.splitlines()
    path = _write(tmp_path, "test.csv", "\n".join([header, *(row + ",0" for row in rows)]) + "\n")
    with pytest.raises(UserError, match=_escape("test.csv: row 1 (line 2) has 785 fields, expected 784")):
        load_csv(path, competition, labelled=False)


def test_file_too_large_is_refused_before_it_is_read(tmp_path, competition, train_text, monkeypatch):
    # a (sparse) file larger than any competition CSV is refused from its size: never hashed, scanned or parsed
    path = tmp_path / "train.csv"
    with open(path, "wb") as handle:
        handle.write(train_text.encode())
        handle.truncate(data.MAX_DATA_BYTES + 1)
    monkeypatch.setattr(data, "file_fingerprint", lambda *args: pytest.fail("read the oversized file"))
    monkeypatch.setattr(data.pd, "read_csv", lambda *args, **kwargs: pytest.fail("parsed the oversized file"))
    with pytest.raises(UserError, match="train.csv: 256 MiB, larger than a competition CSV file can be") as caught:
        load_csv(path, competition, labelled=True, cache_dir=tmp_path / "cache")
    assert len(str(caught.value)) < 150


@pytest.mark.parametrize(
    "labels, expected",
    [
        ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], []),
        ([0, 1, 2, 3, 4, 5, 6, 8, 9, 9], ["no row of label 7: a model trained on it never predicts that digit"]),
        ([0] * 5, ["no row of label 1, 2, 3, 4, 5, 6, 7, 8, 9"]),
    ],
)
def test_class_warnings_name_the_missing_labels(competition, labels, expected):
    # train.csv lacking a class is said (fetch and train print it)
    warnings = data.class_warnings(np.array(labels), competition)
    assert len(warnings) == len(expected)
    for warning, part in zip(warnings, expected):
        assert warning.startswith("train.csv has ") and part in warning


@pytest.mark.slow
def test_train_warns_when_train_csv_lacks_a_class(project, competition, capsys):
    # a train.csv without any 7 trains (the other nine digits are fine) but says so before training
    from digit_recognizer.cli import main

    train_file = project.data_file(competition, "train")
    header, *rows = train_file.read_text().splitlines()
    train_file.write_text("\n".join([header, *(row for row in rows if not row.startswith("7,"))]) + "\n")
    code = main(["--root", str(project.root), "train", "--preset", "seed", "--epochs", "1", "--name", "no7", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "warning: train.csv has no row of label 7: a model trained on it never predicts that digit" in out, out
