"""``digit-recognizer app``: the page and its /read API, tested against the real server.

The server is the real command (``python -m digit_recognizer app``) on 127.0.0.1 and a free port, reading with a
small experiment trained here in seconds. Scripts talk to it through ``gradio_client``; a headless Chromium
(Debian's ``chromium``, driven over the DevTools protocol: tests/browser.py) draws on its sketchpad.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, run_cli, write_sample

EXPERIMENT = "drawn"
NUMBER_DIGITS = 3
TILE = 140  # a 28x28 digit enlarged 5x, as a photo of a digit on paper
GAP = 40
MARGIN = 60
SCREENSHOT_ENV = "DIGIT_RECOGNIZER_APP_SCREENSHOT"  # also save the browser test's screenshots here (docs/app.png)
EXAMPLE_PHOTOS = [
    REPO_ROOT / "inputs" / "custom" / name for name in ("2026_number.jpg", "0_marker.jpg", "3_uneven_light.jpg")
]


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def app_project(tmp_path_factory, competition):
    """A project with one experiment good enough to read clean digits (compact CNN, 3 epochs on 2,000 digits)."""
    from digit_recognizer.cli import main
    from digit_recognizer.config import Paths
    from digit_recognizer.fetch import build_sample_frames

    paths = Paths(tmp_path_factory.mktemp("app"))
    write_sample(paths.data, competition, build_sample_frames(competition, seed=0, train_rows=2000, test_rows=100))
    assert (
        main(
            [
                "--root",
                str(paths.root),
                "train",
                "--preset",
                "fast",
                "--epochs",
                "3",
                "--no-augment",
                "--name",
                EXPERIMENT,
                "--quiet",
            ]
        )
        == 0
    )
    return paths


@pytest.fixture(scope="session")
def models(app_project):
    from digit_recognizer.modeling.inference import load_members

    return load_members(app_project, EXPERIMENT)


@pytest.fixture(scope="session")
def confident_digits(app_project, models):
    """NUMBER_DIGITS training digits of different labels that the model itself reads right and surely (> 0.9),
    chosen on the 28x28 images alone: whether the app reads them from a photo is what the tests check."""
    import pandas as pd

    from digit_recognizer.modeling.inference import ensemble_probabilities

    train = pd.read_csv(app_project.data / "train.csv", nrows=400)
    labels = train.pop("label").to_numpy()
    images = train.to_numpy().astype(np.uint8).reshape(-1, 28, 28)
    probabilities = ensemble_probabilities(models, images[..., None])
    chosen, seen = [], set()
    for index in np.flatnonzero((probabilities.argmax(axis=1) == labels) & (probabilities.max(axis=1) > 0.9)):
        if labels[index] not in seen and labels[index] != 1:  # a 1 alone is too easy to read from any stroke
            seen.add(labels[index])
            chosen.append((images[index], str(labels[index])))
        if len(chosen) == NUMBER_DIGITS:
            return chosen
    pytest.fail(f"the test model reads fewer than {NUMBER_DIGITS} different digits surely; train it better")


def render_number(digits) -> tuple[np.ndarray, str, list]:
    """A photo-like image of the digits side by side: dark ink on white paper, each enlarged 5x.

    Returns (image, the number, each digit's tile (x, y, width, height) in the image)."""
    import cv2

    width = 2 * MARGIN + len(digits) * TILE + (len(digits) - 1) * GAP
    page = np.full((TILE + 2 * MARGIN, width), 255, np.uint8)
    tiles = []
    for position, (image, _) in enumerate(digits):
        x = MARGIN + position * (TILE + GAP)
        page[MARGIN : MARGIN + TILE, x : x + TILE] = 255 - cv2.resize(
            image, (TILE, TILE), interpolation=cv2.INTER_CUBIC
        )
        tiles.append((x, MARGIN, TILE, TILE))
    return page, "".join(label for _, label in digits), tiles


def png_bytes(image: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="session")
def number_photo(tmp_path_factory, confident_digits):
    """(a PNG of the rendered number, the number, the digits' tiles)."""
    image, number, tiles = render_number(confident_digits)
    path = tmp_path_factory.mktemp("photos") / "number.png"
    path.write_bytes(png_bytes(image))
    return path, number, tiles


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(app_project):
    """The real ``digit-recognizer app`` command serving the test project; yields its URL."""
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "digit_recognizer", "--root", str(app_project.root), "app", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    said = []
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None:
            line = process.stdout.readline()
            if not line:
                pytest.fail(f"the app exited with {process.wait()} before serving:\n{''.join(said)}")
            said.append(line)
            found = re.search(r"running on (http://\S+)", line)
            url = found.group(1) if found else None
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not start within 120 s:\n{''.join(said)}")
        yield url.rstrip("/") + "/", port, said
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # the client's telemetry thread reads only this
    return Client(server[0], verbose=False, download_files=False, analytics_enabled=False)


# ---------------------------------------------------------------- read_array (no server)
@pytest.mark.slow
def test_read_array_reads_a_rendered_number_with_boxes_in_input_pixels(models, confident_digits):
    from digit_recognizer.photos.pipeline import read_array

    image, number, tiles = render_number(confident_digits)
    reading = read_array(image, models)
    assert reading.number == number and reading.message == ""
    assert reading.crops.shape == (len(number), 28, 28) and reading.crops.dtype == np.uint8
    assert reading.probabilities.shape == (len(number), 10)
    assert reading.confidence == pytest.approx(float(np.prod(reading.probabilities.max(axis=1))))
    for (x, y, width, height), (tile_x, tile_y, tile_width, tile_height) in zip(reading.boxes, tiles):
        assert tile_x <= x and x + width <= tile_x + tile_width, "each box lies inside its digit's tile"
        assert tile_y <= y and y + height <= tile_y + tile_height
        assert width >= 0.25 * tile_width or height >= 0.5 * tile_height, "a box spans its digit, not a speck"
    in_color = read_array(np.dstack([image] * 3), models)
    assert in_color.number == number and in_color.boxes == reading.boxes
    assert read_array(image, models, min_confidence=1.0).number == "?" * len(number)


@pytest.mark.slow
def test_read_array_on_a_blank_image_says_why(models):
    from digit_recognizer.photos.pipeline import read_array

    reading = read_array(np.full((200, 300), 255, np.uint8), models)
    assert reading.number == "" and reading.confidence is None and "no ink" in reading.message
    assert reading.crops.shape == (0, 28, 28) and reading.boxes == ()


def test_read_array_rejects_bad_arguments():
    from digit_recognizer.photos.pipeline import read_array

    unused_model = object()  # every check comes before a model is used
    with pytest.raises(ValueError, match="at least one model"):
        read_array(np.zeros((10, 10), np.uint8), [])
    with pytest.raises(ValueError, match="min_confidence"):
        read_array(np.zeros((10, 10), np.uint8), [unused_model], min_confidence=1.5)
    with pytest.raises(ValueError, match="uint8"):
        read_array(np.zeros((10, 10), np.float32), [unused_model])
    with pytest.raises(ValueError, match="HxWx3"):
        read_array(np.zeros((10, 10, 5), np.uint8), [unused_model])


# ---------------------------------------------------------------- the page's pieces (no server)
def test_sketch_to_gray_composites_transparent_strokes_onto_white():
    from digit_recognizer.app.reading import sketch_to_gray

    canvas = np.zeros((40, 60, 4), np.uint8)  # transparent
    canvas[10:30, 28:32] = (0, 0, 0, 255)  # a black stroke
    gray = sketch_to_gray({"background": None, "layers": [], "composite": canvas})
    assert gray.shape == (40, 60) and gray[20, 30] == 0 and gray[0, 0] == 255
    assert sketch_to_gray({"composite": np.full((40, 60, 4), 255, np.uint8)}) is None, (
        "an empty canvas is nothing drawn"
    )
    assert sketch_to_gray(None) is None and sketch_to_gray({"composite": None}) is None


def test_top_probabilities_are_the_three_most_likely_in_order():
    from digit_recognizer.app.reading import top_probabilities

    probabilities = np.array([0.05, 0.6, 0.0, 0.25, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0])
    assert top_probabilities(probabilities) == [(1, 0.6), (3, 0.25), (7, 0.1)]
    with pytest.raises(ValueError):
        top_probabilities(probabilities, count=0)


@pytest.fixture
def empty_project(tmp_path):
    """A project folder with nothing in it (the competition spec comes from the source checkout)."""
    from digit_recognizer.config import Paths

    return Paths(tmp_path / "empty")


def test_experiment_choices_put_the_leaderboard_order_first(empty_project):
    from digit_recognizer.app.reading import experiment_choices

    project = empty_project
    for name in ("old", "best", "unranked"):
        (project.models / name).mkdir(parents=True)
        (project.models / name / "metrics.json").write_text("{}")
        time.sleep(0.01)  # finished() orders by metrics.json's time
    (project.models / "unfinished").mkdir()
    assert experiment_choices(project) == ["unranked", "best", "old"], "without a leaderboard: newest first"
    from digit_recognizer.tracking.leaderboard import upsert

    for name, score in (("old", 0.9), ("best", 0.99), ("ensemble-x", 0.995)):  # an ensemble: not trained, not listed
        upsert(project.leaderboard, name, score=score)
    choices = experiment_choices(project)
    assert choices[:2] == ["best", "old"] and set(choices) == {"best", "old", "unranked"}


# ---------------------------------------------------------------- the command line (no server)
def test_app_help_is_instant_and_imports_no_gradio():
    code = (
        "import sys; from digit_recognizer.cli import build_parser; build_parser().parse_args(['app']); "
        "heavy = [m for m in ('gradio', 'gradio_client', 'tensorflow', 'keras') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    result = subprocess.run(
        [sys.executable, "-m", "digit_recognizer", "app", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (
        result.returncode == 0
        and "--port" in result.stdout
        and "--host" in result.stdout
        and "127.0.0.1" in result.stdout
    )


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_app_with_an_unknown_experiment_is_one_error_line(empty_project):
    assert "not found" in one_error_line(run_cli("app", "--experiment", "nope", root=empty_project.root, timeout=60))


def test_app_on_a_port_in_use_is_one_error_line(empty_project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_error_line(run_cli("app", "--port", str(port), root=empty_project.root, timeout=60))
    assert f"127.0.0.1:{port}" in line and "in use" in line


def test_app_rejects_a_bad_min_confidence(empty_project):
    assert "--min-confidence" in one_error_line(
        run_cli("app", "--min-confidence", "1.5", root=empty_project.root, timeout=60)
    )


# ---------------------------------------------------------------- the running server
def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                addresses.add(address)
    return addresses


@pytest.mark.slow
def test_the_app_listens_on_127_0_0_1_only_by_default(server):
    url, port, said = server
    assert url == f"http://127.0.0.1:{port}/"
    assert listening_addresses(port) == {"0100007F"}, "only 127.0.0.1 (little-endian hex in /proc/net/tcp)"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200 and b"<html" in response.read().lower()
    assert any(f"experiment {EXPERIMENT} (the best on the leaderboard)" in line for line in said), said


@pytest.mark.slow
def test_api_read_returns_the_number_then_the_digits(client, number_photo):
    from gradio_client import handle_file

    path, number, _ = number_photo
    read, digits, message = client.predict(handle_file(str(path)), api_name="/read")
    assert read == number and message == ""
    assert [digit["read"] for digit in digits] == list(number)
    for digit in digits:
        probabilities = [top["probability"] for top in digit["top3"]]
        assert (
            len(probabilities) == 3
            and probabilities == sorted(probabilities, reverse=True)
            and sum(probabilities) <= 1.0001
        )
        assert str(digit["top3"][0]["digit"]) == digit["read"] and len(digit["box"]) == 4
    doubtful, _, _ = client.predict(handle_file(str(path)), 1.0, api_name="/read")
    assert doubtful == "?" * len(number), "the minimum confidence turns every digit under it into '?'"


@pytest.mark.slow
def test_api_reads_a_phone_jpeg_upright_from_its_exif_rotation(client, confident_digits, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    image, number, _ = render_number(confident_digits)
    stored = np.ascontiguousarray(np.rot90(image))  # as a phone held sideways stores it ...
    exif = Image.Exif()
    exif[0x0112] = 6  # ... with "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, "JPEG", quality=95, exif=exif.tobytes())
    read, digits, message = client.predict(handle_file(str(path)), api_name="/read")
    assert read == number and message == ""
    lefts = [digit["box"][0] for digit in digits]
    assert lefts == sorted(lefts) and lefts[-1] - lefts[0] >= TILE, "boxes side by side in the upright image"
    assert all(digit["box"][0] + digit["box"][2] <= image.shape[1] for digit in digits)


def bad_uploads(folder: Path, good_png: bytes) -> dict:
    """{file: words its message must contain}: not an image, a truncated PNG, one over the 40-megapixel limit."""
    import cv2

    files = {folder / "notes.png": "not an image", folder / "cut.png": "truncated", folder / "huge.png": "MP limit"}
    (folder / "notes.png").write_text("this is not a picture\n")
    (folder / "cut.png").write_bytes(good_png[: len(good_png) // 2])
    assert cv2.imwrite(str(folder / "huge.png"), np.full((6200, 6500), 255, np.uint8))  # 40.3 megapixels
    return files


@pytest.mark.slow
def test_bad_uploads_become_messages_and_the_others_are_still_read(client, number_photo, tmp_path):
    from gradio_client import handle_file

    path, number, _ = number_photo
    bad = bad_uploads(tmp_path, path.read_bytes())
    for file, words in bad.items():
        read, digits, message = client.predict(handle_file(str(file)), api_name="/read")
        assert read == "" and digits == [] and words in message, (file.name, message)
    dropped = [handle_file(str(file)) for file in (*bad, path)]
    text, shown, crops, table, messages = client.predict(dropped, EXPERIMENT, 0.5, api_name="/read_photos")
    lines = dict(line.split(": ", 1) for line in text.splitlines())
    assert lines == {"notes.png": "-", "cut.png": "-", "huge.png": "-", "number.png": number}
    for file, words in bad.items():
        assert re.search(rf"\*\*{re.escape(file.name)}\*\*: .*{re.escape(words)}", messages), messages
    assert len(shown) == 1 and len(crops) == len(number) and len(table["data"]) == len(number)
    read, _, _ = client.predict(handle_file(str(path)), api_name="/read")
    assert read == number, "the server still reads after the bad uploads"


def find_chromium() -> str:
    from browser import find_chromium

    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI installs Debian's chromium: scripts/ci_browser.sh)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return executable


def draw_seven(browser, canvas: dict) -> None:
    """A 7 with the mouse: the bar left to right, then the stroke down to the left."""
    centre_x, centre_y = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    size = canvas["height"] * 0.3
    bar = [(centre_x - size / 2 + step * size / 10, centre_y - size) for step in range(11)]
    stem = [(centre_x + size / 2 - step * size / 20, centre_y - size + step * size / 5) for step in range(1, 11)]
    browser.drag(bar + stem)


@pytest.mark.slow
def test_headless_chromium_draws_a_digit_and_reads_it(server, tmp_path):
    from browser import Browser

    url = server[0]
    result = "document.querySelector('#result textarea, #result input').value"
    with Browser(find_chromium(), width=1280, height=1000) as browser:
        browser.navigate(url)
        canvas = browser.wait_for(lambda: browser.rect("#sketchpad canvas"), "the sketchpad")
        assert browser.evaluate(result) == ""
        time.sleep(0.5)  # the canvas finishes setting up its drawing tool
        draw_seven(browser, canvas)
        browser.click("#read-drawing")
        read = browser.wait_for(lambda: browser.evaluate(result), "the result text", timeout=60)
        assert re.fullmatch(r"[0-9?]+", read), f"the result is a number read (digits or '?'), not {read!r}"
        crops = browser.wait_for(
            lambda: browser.evaluate("document.querySelectorAll('#crops img').length"), "the crops"
        )
        assert crops == len(read), "one 28x28 crop shown per digit read"
        rows = browser.evaluate(
            "Array.from(document.querySelectorAll('#top3 tbody tr'))"
            ".map(row => Array.from(row.querySelectorAll('td')).map(cell => cell.textContent.trim()))"
        )
        assert len(rows) == len(read) and all(
            row[0] == "drawing" and row[2] == digit for row, digit in zip(rows, read)
        ), rows
        link = browser.evaluate("document.querySelector('#report-link a').href")
        time.sleep(1.0)  # the galleries' images finish loading for the screenshot
        screenshot = browser.screenshot(tmp_path / "app.png")

        photos = [*EXAMPLE_PHOTOS, tmp_path / "notes.png"]
        photos[-1].write_text("not a picture\n")
        browser.evaluate(
            "Array.from(document.querySelectorAll('button[role=tab]'))"
            ".find(tab => tab.textContent.includes('Drop photos')).click()"
        )
        browser.drop_files("#photos input[type=file]", photos)
        text = browser.wait_for(
            lambda: "notes.png" in browser.evaluate(result) and browser.evaluate(result),
            "the photos' results",
            timeout=60,
        )
        lines = dict(line.split(": ", 1) for line in text.splitlines())
        assert list(lines) == [photo.name for photo in photos], text
        assert all(re.fullmatch(r"[0-9?]+", lines[photo.name]) for photo in EXAMPLE_PHOTOS), text
        assert lines["notes.png"] == "-" and "not an image" in browser.evaluate(
            "document.querySelector('#messages').innerText"
        )
        assert browser.evaluate("document.querySelectorAll('#boxes img').length") >= len(EXAMPLE_PHOTOS)
        time.sleep(1.0)
        photos_screenshot = browser.screenshot(tmp_path / "app-photos.png")
    assert (
        screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        and photos_screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    )
    with urllib.request.urlopen(link, timeout=30) as response:
        assert response.status == 200 and b"confusion" in response.read(), "the report link serves the report"
    if os.environ.get(SCREENSHOT_ENV):
        target = Path(os.environ[SCREENSHOT_ENV])
        shutil.copyfile(screenshot, target)
        shutil.copyfile(photos_screenshot, target.with_name(f"{target.stem}-photos{target.suffix}"))
