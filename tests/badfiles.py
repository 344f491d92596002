"""Builders of good and bad input files for the robustness tests, and a snapshot of a project's outputs.

Each bad case is a small edit of a good file, so a test names one problem at a time:
CSV text edits (:func:`edit_cell`, ...), Kaggle-layout zips (:func:`competition_zip`)
with hostile entries, and submission texts.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import zipfile
from pathlib import Path

SNAPSHOT_DIRS = ("inputs", "models", "submissions")


# ---------------------------------------------------------------- project files
def write_sample(data_dir: Path, competition, frames) -> None:
    """train.csv, test.csv, sample_submission.csv and test_labels.csv from the sample frames."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in zip((*competition.file_names, "test_labels.csv"), frames):
        frame.to_csv(data_dir / name, index=False)


def snapshot(root: Path) -> dict:
    """(kind, size, mtime_ns, sha256) of every file and folder under inputs/, models/ and submissions/."""
    state = {}
    for top in SNAPSHOT_DIRS:
        base = Path(root) / top
        if not base.exists():
            continue
        for path in sorted(base.rglob("*")):
            if path.name.endswith(".lock"):  # the leaderboard's lock file: opened, never written
                continue
            if path.is_dir():
                state[str(path.relative_to(root))] = ("dir",)
            else:
                stat = path.stat()
                state[str(path.relative_to(root))] = (
                    "file",
                    stat.st_size,
                    stat.st_mtime_ns,
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                )
    return state


def copy_project(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, dirs_exist_ok=True)
    return destination


# ---------------------------------------------------------------- CSV text edits
def lines_of(text: str) -> list[str]:
    return text.splitlines()


def join_lines(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def edit_cell(text: str, row: int, column: int, value: str) -> str:
    """Set data row ``row`` (1-based, the header is row 0) and 0-based ``column`` to ``value``."""
    lines = lines_of(text)
    fields = lines[row].split(",")
    fields[column] = value
    lines[row] = ",".join(fields)
    return join_lines(lines)


def edit_header(text: str, column: int, value: str) -> str:
    return edit_cell(text, 0, column, value)


def append_field(text: str, row: int | None, value: str = "0") -> str:
    """Add a field to one row (``row``) or, with ``row=None``, to every line."""
    lines = lines_of(text)
    for index in range(len(lines)) if row is None else [row]:
        lines[index] += f",{value}"
    return join_lines(lines)


def drop_last_field(text: str, row: int | None) -> str:
    lines = lines_of(text)
    for index in range(len(lines)) if row is None else [row]:
        lines[index] = lines[index].rsplit(",", 1)[0]
    return join_lines(lines)


def append_to_data_rows(text: str, suffix: str) -> str:
    """``suffix`` added to every data row, the header unchanged (`awk 'NR==1{print;next}{print $0",0"}'`)."""
    header, *rows = lines_of(text)
    return join_lines([header, *(row + suffix for row in rows)])


def keep_rows(text: str, rows: int) -> str:
    """The header and the first ``rows`` data rows."""
    return join_lines(lines_of(text)[: rows + 1])


def delete_row(text: str, row: int) -> str:
    lines = lines_of(text)
    del lines[row]
    return join_lines(lines)


def duplicate_row(text: str, row: int) -> str:
    lines = lines_of(text)
    lines.insert(row + 1, lines[row])
    return join_lines(lines)


# ---------------------------------------------------------------- zips
def competition_zip(path: Path, texts: dict, extra: dict | None = None, compression=zipfile.ZIP_DEFLATED) -> Path:
    """A zip in Kaggle's layout: {name: text} entries, plus ``extra`` entries ({arcname: bytes})."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, text in texts.items():
            archive.writestr(name, text)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return Path(path)


def _central_headers(data: bytes):
    """Offsets of the central directory's file headers."""
    offset = data.find(b"PK\x01\x02")
    while offset != -1:
        yield offset
        offset = data.find(b"PK\x01\x02", offset + 4)


def patch_declared_size(path: Path, entry: str, size: int) -> Path:
    """Make the central directory claim ``size`` uncompressed bytes for ``entry`` (a zip bomb's declared size),
    without writing that much: zipfile reads sizes from the central directory."""
    data = bytearray(Path(path).read_bytes())
    for offset in _central_headers(bytes(data)):
        name_length = struct.unpack_from("<H", data, offset + 28)[0]
        if data[offset + 46 : offset + 46 + name_length].decode() == entry:
            struct.pack_into("<I", data, offset + 24, size)
            Path(path).write_bytes(bytes(data))
            return Path(path)
    raise AssertionError(f"{entry} not in {path}")


def mark_encrypted(path: Path, entry: str) -> Path:
    """Set the 'encrypted' flag of ``entry`` in the central directory (extraction then needs a password)."""
    data = bytearray(Path(path).read_bytes())
    for offset in _central_headers(bytes(data)):
        name_length = struct.unpack_from("<H", data, offset + 28)[0]
        if data[offset + 46 : offset + 46 + name_length].decode() == entry:
            data[offset + 8] |= 0x01
            Path(path).write_bytes(bytes(data))
            return Path(path)
    raise AssertionError(f"{entry} not in {path}")


def corrupt_entry_data(path: Path, entry: str) -> Path:
    """Flip bytes in the middle of ``entry``'s compressed data (a CRC or inflate error on extraction)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(entry)
    data = bytearray(Path(path).read_bytes())
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    middle = start + info.compress_size // 2
    for index in range(middle, middle + 16):
        data[index] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    return Path(path)


def zeros_entry(size: int) -> bytes:
    return bytes(size)


def to_bytes(text: str, bom: bool = False, crlf: bool = False) -> bytes:
    if crlf:
        text = text.replace("\n", "\r\n")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def csv_text(frame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


# ---------------------------------------------------------------- the cases
CSV_ROWS = 12  # every train.csv case below edits rows 1..CSV_ROWS only, so it applies to any larger file too

# (id, edit of a good train.csv's text -> bad text or bytes, what the one-line message must contain)
BAD_TRAIN_CSVS = [
    ("semicolons", lambda t: t.replace(",", ";"), "columns are separated by ';'"),
    ("tabs", lambda t: t.replace(",", "\t"), "separated by tabs"),
    ("duplicate-header", lambda t: edit_header(t, 2, "pixel0"), "header repeats column 'pixel0'"),
    (
        "extra-column",
        lambda t: append_field(t, None, "7").replace("pixel783,7", "pixel783,extra", 1),
        "extra column 'extra'",
    ),
    ("missing-column", lambda t: drop_last_field(t, None), "missing 'pixel783'"),
    ("header-typo", lambda t: edit_header(t, 6, "pixle5"), "header column 7 is 'pixle5', expected 'pixel5'"),
    ("no-header", lambda t: t.split("\n", 1)[1], "the first line is data, not the header label,pixel0,...,pixel783"),
    ("row-too-long", lambda t: append_field(t, 3), "row 3 (line 4) has 786 fields, expected 785"),
    ("row-too-short", lambda t: drop_last_field(t, 3), "row 3, column 'pixel783': missing value"),
    ("empty-cell", lambda t: edit_cell(t, 5, 100, ""), "row 5, column 'pixel99': missing value"),
    ("float-pixel", lambda t: edit_cell(t, 4, 101, "3.5"), "row 4, column 'pixel100': '3.5' is not an integer"),
    (
        "integral-float-pixel",
        lambda t: edit_cell(t, 9, 101, "7.0"),
        "row 9, column 'pixel100': '7.0' is not an integer",
    ),
    ("text-pixel", lambda t: edit_cell(t, 2, 1, "abc"), "row 2, column 'pixel0': 'abc' is not an integer"),
    (
        "huge-pixel",
        lambda t: edit_cell(t, 2, 1, "99999999999999999999"),
        "row 2, column 'pixel0': '99999999999999999999'",
    ),
    ("negative-pixel", lambda t: edit_cell(t, 6, 300, "-1"), "row 6, column 'pixel299': pixel -1 is outside 0-255"),
    (
        "pixel-256",
        lambda t: edit_cell(t, CSV_ROWS, 784, "256"),
        f"row {CSV_ROWS}, column 'pixel783': pixel 256 is outside 0-255",
    ),
    ("label-10", lambda t: edit_cell(t, 7, 0, "10"), "row 7, column 'label': label 10 is outside 0-9"),
    ("label-negative", lambda t: edit_cell(t, 1, 0, "-1"), "row 1, column 'label': label -1 is outside 0-9"),
    ("label-float", lambda t: edit_cell(t, 8, 0, "3.0"), "row 8, column 'label': '3.0' is not an integer"),
    ("header-only", lambda t: keep_rows(t, 0), "has a header but no rows"),
    ("empty-file", lambda t: "", "file is empty"),
    ("not-utf8", lambda t: b"\xff\xfe\x00\x01garbage\n", "not a UTF-8 text CSV file"),
    # issue 13: an extra field on every data row once made pandas take the labels as the index (silently all 0)
    ("extra-field-every-row", lambda t: append_to_data_rows(t, ",0"), "row 1 (line 2) has 786 fields, expected 785"),
    (
        "trailing-comma",
        lambda t: append_to_data_rows(t, ","),
        "row 1 (line 2) has 786 fields, expected 785 (it ends with a comma",
    ),
    ("first-row-short", lambda t: drop_last_field(t, 1), "row 1 (line 2) has 784 fields, expected 785"),
    ("cr-only", lambda t: t.replace("\n", "\r"), "line 1 ends in a lone CR (old Mac line endings)"),
    ("arabic-indic-label", lambda t: edit_cell(t, 2, 0, "\u0663"), "row 2, column 'label': '\u0663' is not an integer"),
    ("fullwidth-pixel", lambda t: edit_cell(t, 3, 6, "\uff15"), "row 3, column 'pixel5': '\uff15' is not an integer"),
    ("huge-cell", lambda t: edit_cell(t, 2, 6, "7" * 10_000_000), "line 3 is longer than 12624 characters"),
    ("long-text-cell", lambda t: edit_cell(t, 4, 9, "x" * 1000), "row 4, column 'pixel8': 'xxxxxxxx"),
    ("long-header-name", lambda t: edit_header(t, 3, "p" * 1000), "header column 4 is 'pppppppp"),
    ("nul-bytes", lambda t: b"\0" * 100_000, "not a UTF-8 text CSV file (line 1 holds NUL bytes)"),
    ("latin1-cell", lambda t: edit_cell(t, 2, 5, "caf\xe9").encode("latin-1"), "not a UTF-8 text CSV file"),
]


# (id, edit of a good submission's text (the sample's 200-row answer key), what the message must contain)
BAD_SUBMISSIONS = [
    ("duplicate-id", lambda t: edit_cell(t, 5, 0, "4"), "row 5: ImageId 4 appears more than once"),
    ("duplicate-row", lambda t: duplicate_row(t, 9), "row 10: ImageId 9 appears more than once"),
    ("missing-id", lambda t: delete_row(t, 17), "has 199 rows, expected 200 (one per test image); missing ImageId 17"),
    ("missing-rows", lambda t: keep_rows(t, 150), "has 150 rows, expected 200"),
    ("header-only", lambda t: keep_rows(t, 0), "has 0 rows, expected 200"),
    ("extra-row", lambda t: t + "201,3\n", "row 201, column 'ImageId': 201 is outside 1-200"),
    ("id-zero", lambda t: edit_cell(t, 1, 0, "0"), "row 1, column 'ImageId': 0 is outside 1-200"),
    ("header-typo", lambda t: edit_header(t, 0, "ImageID"), "header is 'ImageID,Label', expected 'ImageId,Label'"),
    ("header-missing", lambda t: t.split("\n", 1)[1], "expected 'ImageId,Label'"),
    ("semicolons", lambda t: t.replace(",", ";"), "header is 'ImageId;Label'"),
    ("extra-column", lambda t: append_field(t, None, "x"), "header is 'ImageId,Label,x'"),
    ("row-too-long", lambda t: append_field(t, 3, "1"), "row 3 (line 4) has 3 fields, expected 2"),
    ("float-label", lambda t: edit_cell(t, 7, 1, "3.0"), "row 7, column 'Label': '3.0' is not an integer"),
    ("float-id", lambda t: edit_cell(t, 2, 0, "2.0"), "row 2, column 'ImageId': '2.0' is not an integer"),
    ("text-label", lambda t: edit_cell(t, 3, 1, "seven"), "row 3, column 'Label': 'seven' is not an integer"),
    ("empty-label", lambda t: edit_cell(t, 4, 1, ""), "row 4, column 'Label': '' is not an integer"),
    ("label-10", lambda t: edit_cell(t, 8, 1, "10"), "row 8, column 'Label': 10 is outside 0-9"),
    ("label-negative", lambda t: edit_cell(t, 8, 1, "-1"), "row 8, column 'Label': -1 is outside 0-9"),
    ("empty-file", lambda t: "", "file is empty"),
    ("not-utf8", lambda t: t.encode("utf-8") + b"\xff\xfe,1\n", "not a UTF-8 text CSV file"),
    # issue 13
    ("arabic-indic-label", lambda t: edit_cell(t, 6, 1, "\u0663"), "row 6, column 'Label': '\u0663' is not an integer"),
    ("fullwidth-label", lambda t: edit_cell(t, 6, 1, "\uff15"), "row 6, column 'Label': '\uff15' is not an integer"),
    ("fullwidth-id", lambda t: edit_cell(t, 2, 0, "\uff12"), "row 2, column 'ImageId': '\uff12' is not an integer"),
    ("extra-field-every-row", lambda t: append_to_data_rows(t, ",0"), "row 1 (line 2) has 3 fields, expected 2"),
    ("trailing-comma", lambda t: append_to_data_rows(t, ","), "(it ends with a comma"),
    ("cr-only", lambda t: t.replace("\n", "\r"), "line 1 ends in a lone CR"),
    ("huge-cell", lambda t: edit_cell(t, 3, 1, "9" * 10_000_000), "line 4 is longer than 256 characters"),
    ("long-text-label", lambda t: edit_cell(t, 3, 1, "x" * 240), "row 3, column 'Label': 'xxxx"),
    ("long-header", lambda t: edit_header(t, 1, "L" * 240), "header is 'ImageId,LLLL"),
]


def bad_zips():
    """(id, build(tmp_path, texts) -> zip path, expected message part)."""

    def with_entries(extra, drop=()):
        def build(tmp_path, texts):
            kept = {name: text for name, text in texts.items() if name not in drop}
            return competition_zip(tmp_path / "bad.zip", kept, extra=extra)

        return build

    def truncated(tmp_path, texts):
        path = competition_zip(tmp_path / "bad.zip", texts)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return path

    def raw(content):
        def build(tmp_path, texts):
            path = tmp_path / "bad.zip"
            path.write_bytes(content)
            return path

        return build

    def directory(tmp_path, texts):
        (tmp_path / "bad.zip").mkdir()
        return tmp_path / "bad.zip"

    def declared_huge(tmp_path, texts):
        return patch_declared_size(competition_zip(tmp_path / "bad.zip", texts), "train.csv", 0x7FFF_FFFF)

    def declared_small(tmp_path, texts):
        return patch_declared_size(competition_zip(tmp_path / "bad.zip", texts), "train.csv", 100)

    def corrupt(tmp_path, texts):
        return corrupt_entry_data(competition_zip(tmp_path / "bad.zip", texts), "train.csv")

    def encrypted(tmp_path, texts):
        return mark_encrypted(competition_zip(tmp_path / "bad.zip", texts), "test.csv")

    def bad_header(tmp_path, texts):
        return competition_zip(tmp_path / "bad.zip", dict(texts, **{"train.csv": texts["train.csv"].replace(",", ";")}))

    def stored_bomb(tmp_path, texts):
        return competition_zip(tmp_path / "bad.zip", texts, extra={"padding.bin": zeros_entry((16 << 20) + 4096)})

    return [
        (
            "zip-slip-parent",
            with_entries({"../evil.csv": b"x"}),
            "'../evil.csv' would be written outside the destination",
        ),
        ("zip-slip-nested", with_entries({"data/../../evil.csv": b"x"}), "would be written outside the destination"),
        ("zip-slip-absolute", with_entries({"/tmp/evil.csv": b"x"}), "'/tmp/evil.csv' would be written outside"),
        ("zip-slip-backslash", with_entries({"..\\evil.csv": b"x"}), "would be written outside"),
        ("zip-slip-drive", with_entries({"C:/evil.csv": b"x"}), "would be written outside"),
        ("zip-slip-as-train", with_entries({"../train.csv": b"x"}, drop=("train.csv",)), "would be written outside"),
        ("missing-test", with_entries({}, drop=("test.csv",)), "does not contain test.csv"),
        (
            "missing-two",
            with_entries({}, drop=("train.csv", "sample_submission.csv")),
            "does not contain train.csv, sample_submission.csv",
        ),
        ("truncated", truncated, "not a zip file or truncated"),
        ("empty-file", raw(b""), "not a zip file or truncated"),
        ("not-a-zip", raw(b"label,pixel0\n1,0\n"), "not a zip file or truncated"),
        ("directory", directory, "is a directory"),
        ("declared-huge", declared_huge, "likely zip bomb"),
        ("declared-small", declared_small, "entry 'train.csv' is corrupt or truncated"),
        ("corrupt-data", corrupt, "entry 'train.csv' is corrupt or truncated"),
        ("encrypted", encrypted, "entry 'test.csv' cannot be extracted (it is password-protected)"),
        ("bad-csv-inside", bad_header, "train.csv: columns are separated by ';'"),
        ("ratio-bomb", stored_bomb, "likely zip bomb"),
    ]
