"""Getting the data: a hand-downloaded zip (safely: no zip-slip, no zip bombs, nothing half-written) and the offline sample."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from badfiles import bad_zips, competition_zip, csv_text, snapshot, zeros_entry
from conftest import run_cli
from digit_recognizer import fetch
from digit_recognizer.config import Paths
from digit_recognizer.errors import UserError


@pytest.fixture(scope="module")
def texts(competition, sample_frames):
    """The three competition files (small) as text, keyed by file name."""
    train, test, sample_submission, _ = sample_frames
    return dict(
        zip(
            competition.file_names,
            (csv_text(train.head(30)), csv_text(test.head(10)), csv_text(sample_submission.head(10))),
        )
    )


def _fetch_zip(root, competition, zip_path, force=False):
    return fetch.fetch(Paths(root), competition, source="zip", zip_path=zip_path, force=force)


# ---------------------------------------------------------------- good zips
@pytest.mark.parametrize("prefix", ["", "digit-recognizer/"])
def test_zip_extracts_the_three_files(tmp_path, competition, texts, prefix):
    # Kaggle's flat layout or one folder deep: the three files land in inputs/digit-recognizer/, byte for byte
    zip_path = competition_zip(
        tmp_path / "digit-recognizer.zip",
        {prefix + name: text for name, text in texts.items()},
        extra={prefix + "README.txt": b"not needed"},
    )
    root = tmp_path / "project"
    result = _fetch_zip(root, competition, zip_path)
    data = Paths(root).data
    assert sorted(p.name for p in data.iterdir()) == sorted(competition.file_names)
    for name, text in texts.items():
        assert (data / name).read_text() == text
    assert any("30 rows" in warning for warning in result.warnings)  # not the full competition: said, not refused


def test_zip_keeps_present_files_unless_forced(tmp_path, competition, texts, sample_frames):
    # raw inputs are immutable: a second fetch skips; --force replaces them and drops the sample's answer key
    zip_path = competition_zip(tmp_path / "a.zip", texts)
    root = tmp_path / "project"
    _fetch_zip(root, competition, zip_path)
    data = Paths(root).data
    (data / "test_labels.csv").write_text("ImageId,Label\n1,0\n")
    before = snapshot(root)
    assert _fetch_zip(root, competition, zip_path).skipped
    assert snapshot(root) == before
    changed = dict(
        texts,
        **{
            "test.csv": csv_text(sample_frames[1].head(12)),
            "sample_submission.csv": csv_text(sample_frames[2].head(12)),
        },
    )
    result = _fetch_zip(root, competition, competition_zip(tmp_path / "b.zip", changed), force=True)
    assert not result.skipped
    assert len(pd.read_csv(data / "test.csv")) == 12
    assert not (data / "test_labels.csv").exists()


def test_fetch_zip_through_the_command_line(tmp_path, texts):
    # the real command: exit 0, a line saying where the data went, the files in place
    zip_path = competition_zip(tmp_path / "digit-recognizer.zip", texts)
    root = tmp_path / "project"
    root.mkdir()
    result = run_cli("fetch", "--zip", str(zip_path), root=root)
    assert result.returncode == 0, result.stderr
    assert "fetched from zip" in result.stdout and "Traceback" not in result.stderr
    assert (root / "inputs" / "digit-recognizer" / "train.csv").read_text() == texts["train.csv"]


# ---------------------------------------------------------------- hostile and broken zips
BAD_ZIPS = bad_zips()


@pytest.mark.parametrize("build, expected", [case[1:] for case in BAD_ZIPS], ids=[case[0] for case in BAD_ZIPS])
def test_bad_zip_is_refused_with_nothing_written(tmp_path, competition, texts, build, expected):
    # one-line UserError naming the problem; inputs/ gets no file and no folder, and nothing escapes the project
    zip_path = build(tmp_path, texts)
    root = tmp_path / "project"
    root.mkdir()
    outside = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UserError) as caught:
        _fetch_zip(root, competition, zip_path)
    message = str(caught.value)
    assert expected in message and "\n" not in message, message
    assert list(root.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == outside


def test_missing_zip(tmp_path, competition):
    # a wrong path is named
    with pytest.raises(UserError, match="nope.zip: file not found"):
        _fetch_zip(tmp_path, competition, tmp_path / "nope.zip")


def test_total_size_limit_refuses_before_extracting(tmp_path, competition, texts, monkeypatch):
    # the declared total is checked against the limit before a byte is written
    zip_path = competition_zip(tmp_path / "a.zip", texts)
    total = sum(len(text) for text in texts.values())
    monkeypatch.setattr(fetch, "MAX_UNCOMPRESSED_BYTES", total - 1)
    opened = []
    monkeypatch.setattr(
        zipfile.ZipFile, "open", lambda *args, **kwargs: opened.append(args) or pytest.fail("extracted")
    )
    with pytest.raises(UserError, match="over the .* limit; refusing a likely zip bomb"):
        _fetch_zip(tmp_path / "project", competition, zip_path)
    assert not opened and not (tmp_path / "project").exists()


def test_total_size_limit_allows_exactly_the_limit(tmp_path, competition, texts, monkeypatch):
    # the limit is inclusive: an archive of exactly that size is accepted
    zip_path = competition_zip(tmp_path / "a.zip", texts)
    monkeypatch.setattr(fetch, "MAX_UNCOMPRESSED_BYTES", sum(len(text) for text in texts.values()))
    _fetch_zip(tmp_path / "project", competition, zip_path)
    assert (tmp_path / "project" / "inputs" / "digit-recognizer" / "train.csv").is_file()


@pytest.mark.parametrize("size, refused", [(1 << 20, True), (100_000, False)])
def test_compression_ratio_check(tmp_path, competition, texts, monkeypatch, size, refused):
    # an entry above the size floor that expands more than MAX_COMPRESSION_RATIO times is refused; small ones pass
    monkeypatch.setattr(fetch, "RATIO_CHECK_BYTES", 500_000)
    zip_path = competition_zip(tmp_path / "a.zip", texts, extra={"zeros.bin": zeros_entry(size)})
    with zipfile.ZipFile(zip_path) as archive:
        info = archive.getinfo("zeros.bin")
        assert info.file_size / info.compress_size > fetch.MAX_COMPRESSION_RATIO
    if refused:
        with pytest.raises(UserError, match="entry 'zeros.bin' expands .*x; refusing a likely zip bomb"):
            _fetch_zip(tmp_path / "project", competition, zip_path)
    else:
        _fetch_zip(tmp_path / "project", competition, zip_path)


# ---------------------------------------------------------------- the offline sample
def test_fetch_sample_writes_kaggle_layout_and_answer_key(tmp_path, competition, sample_frames, monkeypatch):
    # the sample's frames land as the three competition files plus test_labels.csv, and a second fetch keeps
    # them (the real 4,000/1,000 sizes are checked where `run` fetches the sample, in test_pipeline.py)
    monkeypatch.setattr(fetch, "build_sample_frames", lambda competition: sample_frames)
    paths = Paths(tmp_path)
    result = fetch.fetch(paths, competition, source="sample")
    assert result.source == "sample" and not result.skipped
    assert sorted(p.name for p in paths.data.iterdir()) == sorted([*competition.file_names, "test_labels.csv"])
    for name, frame in zip((*competition.file_names, "test_labels.csv"), sample_frames):
        written = pd.read_csv(paths.data / name)
        assert list(written.columns) == list(frame.columns) and np.array_equal(written.to_numpy(), frame.to_numpy()), (
            name
        )
    before = snapshot(tmp_path)
    assert fetch.fetch(paths, competition, source="sample").skipped
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- issue 13: nested copies, installing all files together
def test_top_level_file_is_preferred_over_a_nested_copy(tmp_path, competition, texts, sample_frames):
    # a zip holding old/train.csv (10 rows) before train.csv installs the top-level train.csv and says what it ignored
    nested = csv_text(sample_frames[0].head(10))
    zip_path = tmp_path / "a.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("old/train.csv", nested)
        for name, text in texts.items():
            archive.writestr(name, text)
    result = _fetch_zip(tmp_path / "project", competition, zip_path)
    assert (Paths(tmp_path / "project").data / "train.csv").read_text() == texts["train.csv"]
    assert any("used 'train.csv', ignored 'old/train.csv'" in warning for warning in result.warnings), result.warnings


def test_failed_install_puts_every_previous_file_back(tmp_path, competition, texts, sample_frames, monkeypatch):
    # the checked files replace the old ones together: a failure after the first rename restores them all
    root = tmp_path / "project"
    _fetch_zip(root, competition, competition_zip(tmp_path / "a.zip", texts))
    data = Paths(root).data
    (data / "test_labels.csv").write_text("ImageId,Label\n1,0\n")
    before = snapshot(root)
    changed = {name: csv_text(frame.head(12)) for name, frame in zip(competition.file_names, sample_frames)}
    real_replace, installed = fetch.os.replace, []

    def failing_replace(source, target):
        if source.parent.name.startswith(".extract-"):  # a checked file moving into place: the second one fails
            installed.append(target)
            if len(installed) == 2:
                raise OSError(28, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(fetch.os, "replace", failing_replace)
    with pytest.raises(
        UserError, match="cannot install the files .*No space left on device.*the previous files are kept"
    ):
        _fetch_zip(root, competition, competition_zip(tmp_path / "b.zip", changed), force=True)
    assert snapshot(root) == before


def test_fetch_sample_validates_before_installing(tmp_path, competition, sample_frames, monkeypatch):
    # the sample goes through the same checks: a bad frame is refused and the data present is kept
    paths = Paths(tmp_path)
    monkeypatch.setattr(fetch, "build_sample_frames", lambda competition: sample_frames)
    fetch.fetch(paths, competition, source="sample")
    before = snapshot(tmp_path)
    broken = sample_frames[0].astype("int64")
    broken.loc[broken.index[2], "pixel7"] = 300
    monkeypatch.setattr(fetch, "build_sample_frames", lambda competition: (broken, *sample_frames[1:]))
    with pytest.raises(UserError, match="train.csv: row 3, column 'pixel7': pixel 300 is outside 0-255"):
        fetch.fetch(paths, competition, source="sample", force=True)
    assert snapshot(tmp_path) == before


def test_fetch_warns_when_train_csv_lacks_a_class(tmp_path, competition, sample_frames):
    # a zip whose train.csv has no 3 is installed (it is valid) with a warning naming the missing label
    train = sample_frames[0][sample_frames[0]["label"] != 3].head(40)
    texts = dict(
        zip(
            competition.file_names,
            (csv_text(train), csv_text(sample_frames[1].head(10)), csv_text(sample_frames[2].head(10))),
        )
    )
    result = _fetch_zip(tmp_path / "project", competition, competition_zip(tmp_path / "a.zip", texts))
    assert any("train.csv has no row of label 3" in warning for warning in result.warnings), result.warnings
