"""Per-experiment report: see what the model gets right and wrong.

:func:`build_report` reads what training left in ``models/<experiment>/`` and
writes, under ``reports/<experiment>/`` (every file atomically):

- ``confusion_counts.png`` / ``confusion_normalized.png``  the validation confusion
  matrix (holdout rows, or the out-of-fold predictions with ``--cv``): counts and
  row-normalised (each row is a true class and sums to 1, so the diagonal is recall)
- ``confusion_matrix.csv``           the counts (rows: true label, columns: predicted)
- ``classification_report.txt/.csv`` per-class precision, recall, F1 and support
- ``curves.png``                     accuracy and loss per epoch, train and validation,
  one colour per fold
- ``errors.png`` / ``errors.csv``    the most confidently wrong validation digits
- ``index.html``                     all of the above with the config and scores;
  only relative links, so the folder can be opened from disk or copied elsewhere

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas
(no pyplot state, no GUI) at fixed pixel sizes (:data:`FIGURE_SIZES` x :data:`DPI`).
"""

from __future__ import annotations

import datetime
import html
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from digit_recognizer.atomic import atomic_path, write_text
from digit_recognizer.config import Competition, Paths
from digit_recognizer.errors import UserError
from digit_recognizer.experiment import FULL_MEMBER, Experiment, Validation, find
from digit_recognizer.tracking.stats import accuracy_interval

DPI = 100
# Figure sizes in inches; the PNGs are exactly these times DPI pixels.
FIGURE_SIZES = {
    "confusion_counts.png": (7.0, 6.0),
    "confusion_normalized.png": (7.0, 6.0),
    "curves.png": (12.0, 4.5),
}
GALLERY_COLUMNS = 8
GALLERY_MAX = 32  # at most 4 rows of 8
GALLERY_TILE = (1.25, 1.6)  # inches per digit tile (width, height)
GALLERY_HEADER = 0.75  # inches for the title

FILES = (
    "index.html",
    "confusion_counts.png",
    "confusion_normalized.png",
    "confusion_matrix.csv",
    "classification_report.txt",
    "classification_report.csv",
    "curves.png",
    "errors.png",
    "errors.csv",
)


@dataclass(frozen=True)
class ReportResult:
    experiment: str
    directory: Path
    files: dict  # file name -> Path, every file written
    score: float  # accuracy from the confusion matrix (equals metrics.json's score)
    validation_rows: int
    confusion: np.ndarray  # (classes, classes) counts: rows true, columns predicted
    errors_shown: int
    warnings: tuple = field(default_factory=tuple)

    @property
    def index(self) -> Path:
        return self.files["index.html"]


def gallery_pixels(errors_shown: int) -> tuple[int, int]:
    """(width, height) in pixels of ``errors.png`` showing this many digits."""
    rows = max(1, math.ceil(errors_shown / GALLERY_COLUMNS))
    width, height = gallery_inches(rows)
    return round(width * DPI), round(height * DPI)


def gallery_inches(rows: int) -> tuple[float, float]:
    return GALLERY_COLUMNS * GALLERY_TILE[0], GALLERY_HEADER + rows * GALLERY_TILE[1]


def figure_pixels(name: str) -> tuple[int, int]:
    """(width, height) in pixels of one of the fixed-size figures."""
    width, height = FIGURE_SIZES[name]
    return round(width * DPI), round(height * DPI)


# ---------------------------------------------------------------- inputs
def read_history(path: Path) -> pd.DataFrame | None:
    """A Keras CSVLogger file: one row per epoch (the last one kept when a resume repeated an epoch)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return None
    if "epoch" not in frame.columns:
        return None
    frame = frame.apply(pd.to_numeric, errors="coerce").dropna(subset=["epoch"])  # drops repeated header lines
    frame["epoch"] = frame["epoch"].astype(int)
    return frame.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def _member_histories(experiment: Experiment, num_members: int) -> list[tuple[str, pd.DataFrame | None]]:
    labels = ["holdout model"] if num_members == 1 else [f"fold {k + 1}" for k in range(num_members)]
    histories = [(labels[k], read_history(experiment.history_file(k))) for k in range(num_members)]
    for prefix, kind in (("p", "second round"), ("b", "partner")):  # --pseudo-label and --partner runs
        extra = [
            (f"{labels[k]}, {kind}", read_history(experiment.history_file(f"{prefix}{k}"))) for k in range(num_members)
        ]
        histories += [(label, frame) for label, frame in extra if frame is not None]
    full = read_history(experiment.history_file(FULL_MEMBER))
    if full is not None:
        histories.append(("full-data model", full))
    return histories


# ---------------------------------------------------------------- figures
def _matplotlib():
    """matplotlib with the Agg backend unless the caller already chose one through pyplot."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure


def _save(figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
    return path


def _confusion_figure(confusion: np.ndarray, normalized: bool, title: str):
    from sklearn.metrics import ConfusionMatrixDisplay

    Figure = _matplotlib()
    figure = Figure(
        figsize=FIGURE_SIZES["confusion_normalized.png" if normalized else "confusion_counts.png"], layout="constrained"
    )
    axes = figure.add_subplot()
    if normalized:
        totals = confusion.sum(axis=1, keepdims=True)
        values = np.divide(confusion, totals, out=np.zeros(confusion.shape, dtype=float), where=totals > 0)
        display = ConfusionMatrixDisplay(values, display_labels=list(range(len(confusion))))
        display.plot(ax=axes, cmap="Blues", values_format=".2f", colorbar=True, im_kw={"vmin": 0.0, "vmax": 1.0})
    else:
        values = confusion
        display = ConfusionMatrixDisplay(values, display_labels=list(range(len(confusion))))
        display.plot(ax=axes, cmap="Blues", values_format="d", colorbar=True)
    for (i, j), text in np.ndenumerate(display.text_):
        if values[i, j] == 0:
            text.set_text("")  # blank zero cells: the mistakes stand out
        elif normalized and i != j:
            text.set_fontsize(8)
    axes.set_xlabel("Predicted label")
    axes.set_ylabel("True label")
    axes.set_title(title, fontsize=11)
    return figure


def _curves_figure(histories, title: str):
    Figure = _matplotlib()
    figure = Figure(figsize=FIGURE_SIZES["curves.png"], layout="constrained")
    panels = figure.subplots(1, 2)
    colours = [f"C{k % 10}" for k in range(len(histories))]
    for axes, metric, name in ((panels[0], "accuracy", "Accuracy"), (panels[1], "loss", "Loss")):
        drawn = 0
        for colour, (label, frame) in zip(colours, histories):
            if frame is None or frame.empty:
                continue
            epochs = frame["epoch"] + 1
            if metric in frame:
                axes.plot(
                    epochs,
                    frame[metric],
                    color=colour,
                    linestyle="--",
                    marker="o",
                    markersize=3,
                    label=f"{label}: train",
                )
                drawn += 1
            if f"val_{metric}" in frame and frame[f"val_{metric}"].notna().any():
                axes.plot(
                    epochs,
                    frame[f"val_{metric}"],
                    color=colour,
                    linestyle="-",
                    marker="o",
                    markersize=3,
                    label=f"{label}: validation",
                )
                drawn += 1
        if not drawn:
            axes.text(
                0.5, 0.5, "no training history found", ha="center", va="center", transform=axes.transAxes, color="grey"
            )
        else:
            axes.legend(fontsize=8, loc="lower right" if metric == "accuracy" else "upper right")
            from matplotlib.ticker import MaxNLocator

            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            if metric == "loss":
                from matplotlib.ticker import FormatStrFormatter

                axes.set_yscale("log")  # a high first epoch would otherwise flatten every later one
                axes.yaxis.set_major_formatter(FormatStrFormatter("%g"))
                axes.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
        axes.set_xlabel("Epoch")
        axes.set_ylabel(name)
        axes.set_title(
            name + (" (higher is better)" if metric == "accuracy" else " (lower is better, log scale)"), fontsize=10
        )
        axes.grid(True, alpha=0.3)
    figure.suptitle(title, fontsize=12)
    return figure


def _gallery_figure(images, errors: pd.DataFrame, title: str, note: str | None):
    Figure = _matplotlib()
    shown = len(errors) if images is not None else 0
    rows = max(1, math.ceil(shown / GALLERY_COLUMNS))
    width, height = gallery_inches(rows)
    figure = Figure(figsize=(width, height))
    figure.suptitle(title, fontsize=11, y=1 - 0.08 / height, va="top")
    top = 1 - GALLERY_HEADER / height
    if not shown:
        import textwrap

        message = textwrap.fill(note or "no misclassified validation digits", 90)
        figure.text(0.5, top / 2, message, ha="center", va="center", fontsize=11, color="grey", wrap=True)
        return figure
    tile_w, tile_h = 1 / GALLERY_COLUMNS, top / rows
    for index, error in enumerate(errors.itertuples(index=False)):
        row, column = divmod(index, GALLERY_COLUMNS)
        # the digit fills the lower part of its tile; the caption sits above it
        left = column * tile_w + tile_w * 0.1
        bottom = top - (row + 1) * tile_h + tile_h * 0.03
        axes = figure.add_axes((left, bottom, tile_w * 0.8, tile_h * 0.72))
        axes.imshow(images[index].squeeze(), cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        for spine in axes.spines.values():
            spine.set_color("#c62828")
        axes.set_title(
            f"true {error.true_label} → pred {error.predicted_label}\n"
            f"p({error.predicted_label})={error.predicted_probability:.2f}  p({error.true_label})={error.true_probability:.2f}",
            fontsize=7.5,
            color="#b71c1c",
            pad=3,
        )
    return figure


# ---------------------------------------------------------------- tables
def confusion_counts(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(labels, predictions, labels=list(range(num_classes)))


def worst_errors(validation: Validation, limit: int = GALLERY_MAX) -> pd.DataFrame:
    """Misclassified validation digits, most confident first."""
    predictions = validation.predictions
    wrong = np.flatnonzero(predictions != validation.labels)
    index = np.arange(len(wrong))
    confidence = validation.probabilities[wrong, predictions[wrong]]
    frame = pd.DataFrame(
        {
            "train_row": validation.rows[wrong],
            "true_label": validation.labels[wrong],
            "predicted_label": predictions[wrong],
            "predicted_probability": confidence.round(5),
            "true_probability": validation.probabilities[wrong, validation.labels[wrong]].round(5),
        }
    )
    if validation.folds is not None:
        frame["fold"] = validation.folds[wrong] + 1
    order = np.lexsort((index, -confidence))  # stable: ties keep validation order
    return frame.iloc[order].head(limit).reset_index(drop=True)


def _classification(labels, predictions, num_classes: int) -> tuple[str, pd.DataFrame]:
    from sklearn.metrics import classification_report

    kwargs = dict(labels=list(range(num_classes)), target_names=[str(k) for k in range(num_classes)], zero_division=0)
    text = classification_report(labels, predictions, digits=4, **kwargs)
    table = pd.DataFrame(classification_report(labels, predictions, output_dict=True, **kwargs)).T
    if "accuracy" in table.index:  # a scalar broadcast over every column: keep it readable
        accuracy = float(table.loc["accuracy", "precision"])
        table.loc["accuracy"] = [np.nan, np.nan, accuracy, float(len(labels))]
    table["support"] = table["support"].astype(int)
    table.index.name = "class"
    return text, table


def _load_images(paths: Paths, competition: Competition, rows: np.ndarray, fingerprint: str):
    """The validation digits from train.csv, or (None, why not)."""
    from digit_recognizer.data import load_train

    try:
        dataset = load_train(paths, competition)
    except UserError as error:
        return None, f"digits unavailable: {error}"
    if fingerprint and not str(fingerprint).startswith(dataset.fingerprint):
        return None, "digits unavailable: train.csv changed since this experiment was trained"
    if len(rows) and rows.max() >= len(dataset):
        return None, "digits unavailable: train.csv has fewer rows than when this experiment was trained"
    return dataset.images[rows], None


# ---------------------------------------------------------------- html
def _html_table(pairs) -> str:
    body = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>" for key, value in pairs
    )
    return f"<table class='kv'>{body}</table>"


def _frame_table(frame: pd.DataFrame, float_format: str = "{:.4f}") -> str:
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in [frame.index.name or "", *frame.columns])
    rows = []
    for key, values in frame.iterrows():
        cells = []
        for value in values:
            if isinstance(value, (float, np.floating)):
                cells.append("" if np.isnan(value) else float_format.format(value))
            else:
                cells.append(str(value))
        rows.append(
            f"<tr><th>{html.escape(str(key))}</th>"
            + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
            + "</tr>"
        )
    return f"<table class='grid'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _relative(target: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(target, start)).as_posix()


def _index_html(
    experiment: str,
    directory: Path,
    paths: Paths,
    record: dict,
    metrics: dict,
    score: float,
    label: str,
    rows: int,
    report_table: pd.DataFrame,
    errors: pd.DataFrame,
    notes: list[str],
) -> str:
    config = record.get("config", {})
    e = html.escape
    fold_accuracies = metrics.get("fold_accuracies") or []
    facts = [
        ("validation", f"{label}: {score:.5f} accuracy on {rows} rows ({accuracy_interval(score, rows)})"),
        ("fold accuracies", ", ".join(f"{value:.5f}" for value in fold_accuracies) if fold_accuracies else None),
        ("training rows", metrics.get("train_rows")),
        ("training time", f"{metrics['train_seconds']:.1f} s" if metrics.get("train_seconds") is not None else None),
        ("throughput", f"{metrics['images_per_second']:.0f} images/s" if metrics.get("images_per_second") else None),
        ("finished", metrics.get("finished")),
        ("data fingerprint", record.get("data_fingerprint")),
        ("split file", record.get("split_file")),
    ]
    links = [
        "<a href='confusion_matrix.csv'>confusion_matrix.csv</a>",
        "<a href='classification_report.txt'>classification_report.txt</a>",
        "<a href='classification_report.csv'>classification_report.csv</a>",
        "<a href='errors.csv'>errors.csv</a>",
    ]
    for target, text in ((paths.submission_file(experiment), "submission"), (paths.leaderboard, "leaderboard")):
        if target.is_file():
            links.append(f"<a href='{e(_relative(target, directory))}'>{e(text)}: {e(target.name)}</a>")
    error_table = errors.copy()
    error_table.index = pd.RangeIndex(1, len(error_table) + 1, name="#")
    notes_html = "".join(f"<p class='note'>{e(note)}</p>" for note in notes)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{e(experiment)}: {score:.5f} ({e(label)})</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1250px; color: #222; padding: 0 1em; }}
h1 {{ margin-bottom: 0.2em; }} .score {{ font-size: 1.3em; color: #1b5e20; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }}
table.kv th, table.grid tbody th {{ text-align: left; background: #f5f5f5; }}
img {{ max-width: 100%; height: auto; border: 1px solid #eee; }}
.row {{ display: flex; flex-wrap: wrap; gap: 1em; }} .row img {{ width: 560px; }}
.note {{ color: #b71c1c; }} .columns {{ display: flex; flex-wrap: wrap; gap: 2em; }}
</style>
</head>
<body>
<h1>{e(experiment)}</h1>
<p class="score">{e(label)} accuracy <b>{score:.5f}</b> on {rows} validation rows ({e(accuracy_interval(score, rows))})</p>
{notes_html}
<div class="columns">
<div><h2>Scores</h2>{_html_table([(key, value) for key, value in facts if value not in (None, "")])}</div>
<div><h2>Config</h2>{_html_table(sorted(config.items()))}</div>
</div>
<h2>Confusion matrix ({e(label)})</h2>
<p>Rows are the true digit, columns the prediction. Left: counts (they sum to {rows}); right: each row divided by its total, so the diagonal is the per-class recall.</p>
<div class="row"><a href="confusion_counts.png"><img src="confusion_counts.png" alt="confusion matrix, counts"></a>
<a href="confusion_normalized.png"><img src="confusion_normalized.png" alt="confusion matrix, row-normalised"></a></div>
<h2>Learning curves</h2>
<p>Dashed: training set; solid: validation set{", one colour per fold" if config.get("cv") else ""}.</p>
<a href="curves.png"><img src="curves.png" alt="accuracy and loss per epoch"></a>
<h2>Most confidently wrong validation digits</h2>
<a href="errors.png"><img src="errors.png" alt="gallery of misclassified digits"></a>
{_frame_table(error_table, "{:.3f}") if len(error_table) else "<p>No misclassified validation digits.</p>"}
<h2>Per-class precision, recall and F1</h2>
{_frame_table(report_table)}
<h2>Files</h2>
<p>{" &middot; ".join(links)}</p>
<p><small>Generated {e(datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))} by <code>digit-recognizer report --experiment {e(experiment)}</code>.</small></p>
</body>
</html>
"""


# ---------------------------------------------------------------- build
def build_report(paths: Paths, competition: Competition, experiment: str) -> ReportResult:
    """Write every report file for a finished experiment under ``reports/<experiment>/``."""
    found = find(paths, experiment)
    metrics = found.read_metrics()
    record = found.read_record()
    config = record.get("config", {})
    cv = int(config.get("cv") or 0)
    label = f"out-of-fold ({cv}-fold CV)" if cv else f"{float(config.get('holdout', 0.1)) * 100:g}% holdout"
    validation = found.read_validation()
    if not cv:  # a holdout's validation has folds all 0: nothing to show
        validation = Validation(validation.rows, validation.labels, validation.probabilities, None)
    num_classes = competition.num_classes
    predictions = validation.predictions
    confusion = confusion_counts(validation.labels, predictions, num_classes)
    rows = int(confusion.sum())
    score = float(np.trace(confusion) / rows) if rows else 0.0
    directory = found.report_dir
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    notes: list[str] = []

    headline = f"{experiment} — {label} accuracy {score:.4f} ({accuracy_interval(score, rows)})"
    for name, normalized in (("confusion_counts.png", False), ("confusion_normalized.png", True)):
        kind = "row-normalised" if normalized else "counts"
        figure = _confusion_figure(
            confusion, normalized, f"{experiment}: confusion matrix ({kind})\n{label} accuracy {score:.4f}, {rows} rows"
        )
        files[name] = _save(figure, directory / name)
    frame = pd.DataFrame(
        confusion, index=pd.Index(range(num_classes), name="true\\predicted"), columns=range(num_classes)
    )
    write_text(directory / "confusion_matrix.csv", frame.to_csv(lineterminator="\n"))
    files["confusion_matrix.csv"] = directory / "confusion_matrix.csv"

    text, table = _classification(validation.labels, predictions, num_classes)
    write_text(directory / "classification_report.txt", f"{headline}\n\n{text}")
    write_text(directory / "classification_report.csv", table.to_csv(float_format="%.5f", lineterminator="\n"))
    files["classification_report.txt"] = directory / "classification_report.txt"
    files["classification_report.csv"] = directory / "classification_report.csv"

    histories = _member_histories(found, max(1, cv))
    if all(frame is None for _, frame in histories):
        notes.append("no training history (history-*.csv) found: the curves are empty")
    files["curves.png"] = _save(
        _curves_figure(histories, f"{experiment}: learning curves — {label} accuracy {score:.4f}"),
        directory / "curves.png",
    )

    errors = worst_errors(validation)
    images, note = _load_images(paths, competition, errors["train_row"].to_numpy(), record.get("data_fingerprint", ""))
    if note:
        notes.append(note)
    wrong = int((predictions != validation.labels).sum())
    which = f"all {wrong}" if len(errors) == wrong else f"the {len(errors)} most confidently wrong of {wrong}"
    gallery_title = (
        f"{experiment}: {which} misclassified validation digits, most confident first\n"
        f"{label} accuracy {score:.4f} on {rows} rows; p(d) = predicted probability of digit d"
    )
    files["errors.png"] = _save(_gallery_figure(images, errors, gallery_title, note), directory / "errors.png")
    write_text(directory / "errors.csv", errors.to_csv(index=False, lineterminator="\n"))
    files["errors.csv"] = directory / "errors.csv"

    page = _index_html(experiment, directory, paths, record, metrics, score, label, rows, table, errors, notes)
    write_text(directory / "index.html", page)
    files["index.html"] = directory / "index.html"
    return ReportResult(
        experiment, directory, files, score, rows, confusion, len(errors) if images is not None else 0, tuple(notes)
    )
