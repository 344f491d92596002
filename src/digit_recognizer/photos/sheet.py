"""The prediction sheet: PNG pages showing, per image, what was found and what the model read.

Each row holds the original image with numbered digit boxes, the 28x28 crops
exactly as the model saw them (with each one's top label and probability), and
the prediction with every digit's top-3 probabilities. Rows whose prediction
differs from the known label are framed in red. Pages are written atomically as
``sheet-1.png``, ``sheet-2.png``, ...; stale pages from an earlier, longer run
in the same folder are removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digit_recognizer.atomic import atomic_path

ROWS_PER_PAGE = 10
RIGHT_COLOUR = "#1a7f37"
WRONG_COLOUR = "#cf222e"
BOX_COLOUR = "#ff8c00"


@dataclass
class SheetEntry:
    """One image's row. ``thumbnail`` is grayscale uint8; ``boxes`` are (x, y, w, h) in its pixels."""

    name: str
    thumbnail: np.ndarray | None = None
    boxes: tuple = ()
    crops: np.ndarray | None = None
    probabilities: np.ndarray | None = None  # (n_digits, 10)
    prediction: str = ""
    expected: str | None = None
    note: str = ""  # an error or the reason nothing was read
    polarity: str = ""
    min_confidence: float = 0.0

    @property
    def correct(self) -> bool | None:
        return None if self.expected is None else self.prediction == self.expected


def page_count(entries: int, rows_per_page: int = ROWS_PER_PAGE) -> int:
    return max(1, -(-entries // rows_per_page))


def draw_sheets(entries: list, out_dir: Path, title: str, rows_per_page: int = ROWS_PER_PAGE) -> list[Path]:
    """Draw the entries on as many pages as needed; return the page files."""

    def draw(plt, chunk, page, pages):
        return _draw_page(plt, chunk, f"{title}   (page {page + 1} of {pages})" if pages > 1 else title, rows_per_page)

    return _write_pages(entries, Path(out_dir), "sheet", rows_per_page, draw, dpi=100)


def _write_pages(entries: list, out_dir: Path, prefix: str, rows_per_page: int, draw, dpi: int) -> list[Path]:
    """``<prefix>-N.png`` pages of ``rows_per_page`` entries each, drawn by ``draw(plt, chunk, page, pages)`` and
    written atomically; pages left from an earlier, longer run are removed. Return the page files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if rows_per_page < 1:
        raise ValueError(f"rows_per_page must be at least 1, got {rows_per_page}")
    pages = page_count(len(entries), rows_per_page)
    written = []
    for page in range(pages):
        figure = draw(plt, entries[page * rows_per_page : (page + 1) * rows_per_page], page, pages)
        path = out_dir / f"{prefix}-{page + 1}.png"
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=dpi, facecolor="white")
        plt.close(figure)
        written.append(path)
    for stale in out_dir.glob(f"{prefix}-*.png"):
        suffix = stale.stem.removeprefix(f"{prefix}-")
        if suffix.isdigit() and int(suffix) > pages:
            stale.unlink(missing_ok=True)
    return written


def _draw_page(plt, entries: list, title: str, rows_per_page: int):
    row_height = 2.4
    rows = max(1, len(entries))
    figure = plt.figure(figsize=(14, 1.0 + row_height * rows))
    figure.suptitle(
        title, x=0.01, y=1 - 0.15 / (1.0 + row_height * rows), ha="left", va="top", fontsize=13, fontweight="bold"
    )
    top = 1 - 0.85 / (1.0 + row_height * rows)
    grid = figure.add_gridspec(
        rows, 3, width_ratios=[3.2, 5.6, 4.4], left=0.01, right=0.99, bottom=0.01, top=top, hspace=0.35, wspace=0.06
    )
    for index, entry in enumerate(entries):
        image_axis = figure.add_subplot(grid[index, 0])
        crops_axis = figure.add_subplot(grid[index, 1])
        text_axis = figure.add_subplot(grid[index, 2])
        _draw_original(image_axis, entry)
        _draw_crops(crops_axis, entry)
        _draw_text(text_axis, entry)
        if entry.correct is False:
            _frame_row(figure, grid[index, :].get_position(figure))
    return figure


def _draw_original(axis, entry: SheetEntry) -> None:
    from matplotlib.patches import Rectangle

    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_anchor("W")
    axis.set_title(_shorten(entry.name, 42), fontsize=9, loc="left")
    if entry.thumbnail is None:
        axis.text(
            0.5,
            0.5,
            "not readable",
            ha="center",
            va="center",
            fontsize=10,
            color=WRONG_COLOUR,
            transform=axis.transAxes,
        )
        axis.set_facecolor("#f3f3f3")
        return
    axis.imshow(entry.thumbnail, cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
    for number, (x, y, width, height) in enumerate(entry.boxes, start=1):
        axis.add_patch(Rectangle((x - 0.5, y - 0.5), width, height, fill=False, edgecolor=BOX_COLOUR, linewidth=1.8))
        axis.text(x, y - 2, str(number), color=BOX_COLOUR, fontsize=8, fontweight="bold", va="bottom")


def _draw_crops(axis, entry: SheetEntry) -> None:
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)
    if entry.crops is None or len(entry.crops) == 0:
        axis.text(
            0.02,
            0.5,
            entry.note or "no digits",
            ha="left",
            va="center",
            fontsize=9,
            wrap=True,
            transform=axis.transAxes,
        )
        return
    axis.set_title("28x28 as the model saw them", fontsize=9, loc="left")
    gap = 4
    count = len(entry.crops)
    strip = np.full((28, count * 28 + (count - 1) * gap), 128, np.uint8)
    for index, crop in enumerate(entry.crops):
        strip[:, index * (28 + gap) : index * (28 + gap) + 28] = crop
    # Keep crops a readable size: one crop never takes more than a fifth of the axis.
    width = max(strip.shape[1], 5 * (28 + gap))
    axis.imshow(strip, cmap="gray", vmin=0, vmax=255, interpolation="nearest", extent=(0, strip.shape[1], 28, 0))
    axis.set_xlim(0, width)
    axis.set_ylim(40, -2)
    if entry.probabilities is not None:
        for index, probabilities in enumerate(entry.probabilities):
            label = int(np.argmax(probabilities))
            doubt = probabilities[label] < entry.min_confidence
            axis.text(
                index * (28 + gap) + 14,
                34,
                f"{'?' if doubt else label} {probabilities[label]:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color=WRONG_COLOUR if doubt else "black",
            )


def _draw_text(axis, entry: SheetEntry) -> None:
    axis.axis("off")
    lines = []
    if entry.note and not entry.prediction:
        lines.append(("no prediction", 11, "bold", WRONG_COLOUR if entry.thumbnail is None else "black"))
    else:
        lines.append((f"read: {entry.prediction}", 14, "bold", "black"))
    if entry.expected is not None:
        verdict, colour = ("right", RIGHT_COLOUR) if entry.correct else ("WRONG", WRONG_COLOUR)
        lines.append((f"expected: {entry.expected or '(no digit)'}   {verdict}", 10, "bold", colour))
    if entry.probabilities is not None:
        for number, probabilities in enumerate(entry.probabilities[:6], start=1):
            top = np.argsort(probabilities)[::-1][:3]
            lines.append(
                (
                    f"{number}: " + "   ".join(f"{label} {probabilities[label]:.2f}" for label in top),
                    9,
                    "normal",
                    "#222222",
                )
            )
        if len(entry.probabilities) > 6:
            lines.append((f"... {len(entry.probabilities) - 6} more digits in predictions.csv", 8, "normal", "#555555"))
    if entry.polarity:
        lines.append((f"ink: {entry.polarity}", 8, "normal", "#555555"))
    # Step down in points so lines never overlap whatever the row's height.
    height_points = max(1.0, axis.get_window_extent().height * 72.0 / axis.figure.dpi)
    y = 1.0
    for text, size, weight, line_colour in lines:
        axis.text(
            0.0,
            y,
            text,
            fontsize=size,
            fontweight=weight,
            color=line_colour,
            va="top",
            ha="left",
            family="monospace" if text[:1].isdigit() else None,
            transform=axis.transAxes,
        )
        y -= 1.45 * size / height_points


def _frame_row(figure, cell) -> None:
    """A red frame around a row (``cell``: the row's bounding box in figure coordinates)."""
    from matplotlib.patches import Rectangle

    x0, y0 = cell.x0 - 0.004, cell.y0 - 0.008
    x1, y1 = cell.x1 + 0.004, cell.y1 + 0.025
    figure.add_artist(
        Rectangle(
            (x0, y0), x1 - x0, y1 - y0, transform=figure.transFigure, fill=False, edgecolor=WRONG_COLOUR, linewidth=2.5
        )
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def thumbnail(gray: np.ndarray, boxes: tuple, longest: int = 400) -> tuple[np.ndarray, tuple]:
    """A small copy of the image for the sheet (longer side at most ``longest``) and the boxes scaled to it."""
    import cv2

    height, width = gray.shape[:2]
    scale = min(1.0, longest / max(height, width))
    if scale < 1.0:
        gray = cv2.resize(
            gray, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
    scaled = tuple((x * scale, y * scale, w * scale, h * scale) for x, y, w, h in boxes)
    return gray, scaled


def draw_debug_sheets(entries: list, out_dir: Path, title: str, rows_per_page: int = ROWS_PER_PAGE) -> list[Path]:
    """Pages ``debug-N.png``: per image (``(name, ((step title, RGB image), ...))``) its intermediate masks side by
    side (page found, ink, lines removed in red, cuts), so a misreading can be traced to its step."""

    def draw(plt, chunk, page, pages):
        columns = max([len(steps) for _, steps in chunk] + [1])
        figure, axes = plt.subplots(
            max(1, len(chunk)), columns, figsize=(3.2 * columns, 0.6 + 2.6 * max(1, len(chunk))), squeeze=False
        )
        figure.suptitle(
            f"{title}   (page {page + 1} of {pages})" if pages > 1 else title,
            x=0.01,
            ha="left",
            fontsize=12,
            fontweight="bold",
        )
        for row, (name, steps) in enumerate(chunk):
            for column in range(columns):
                axis = axes[row, column]
                axis.set_xticks([])
                axis.set_yticks([])
                if column < len(steps):
                    step_title, picture = steps[column]
                    axis.imshow(picture, interpolation="antialiased")
                    axis.set_title(
                        f"{_shorten(name, 28)}: {step_title}" if column == 0 else step_title, fontsize=9, loc="left"
                    )
                else:
                    axis.axis("off")
            if not steps:
                axes[row, 0].axis("on")
                axes[row, 0].text(
                    0.5,
                    0.5,
                    f"{_shorten(name, 28)}: not read",
                    ha="center",
                    va="center",
                    fontsize=9,
                    transform=axes[row, 0].transAxes,
                )
        height = figure.get_size_inches()[1]
        figure.tight_layout(rect=(0, 0, 1, 1 - 0.45 / height))  # room for the title above the first row
        return figure

    return _write_pages(entries, Path(out_dir), "debug", rows_per_page, draw, dpi=80)
