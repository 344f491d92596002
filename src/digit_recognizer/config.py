"""Project paths, the competition spec and the one frozen experiment config.

Paths are anchored at the project root with ``pathlib``; every command function
takes a :class:`Paths` so tests can point it at ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from digit_recognizer.errors import UserError, quote

ROOT_ENV = "DIGIT_RECOGNIZER_ROOT"
COMPETITION_ENV = "DIGIT_RECOGNIZER_COMPETITION"
KAGGLE_DIR_ENV = "DIGIT_RECOGNIZER_KAGGLE_DIR"  # stand-in for /kaggle when testing the kernel
KERNEL_ENV = "KAGGLE_KERNEL_RUN_TYPE"
SPEC_RELATIVE = Path("competition") / "competition.json"


@dataclass(frozen=True)
class Competition:
    """The competition's facts, read from ``competition/competition.json``."""

    slug: str
    title: str
    url: str
    rules_url: str
    files: dict
    download_zip: str
    label_column: str
    pixel_prefix: str
    image_shape: tuple
    num_classes: int
    pixel_range: tuple
    rows: dict
    metric: str
    submission_columns: tuple
    image_id_start: int
    kernel_input_dirs: tuple

    @property
    def num_pixels(self) -> int:
        height, width, channels = self.image_shape
        return height * width * channels

    @property
    def pixel_columns(self) -> list[str]:
        return [f"{self.pixel_prefix}{i}" for i in range(self.num_pixels)]

    @property
    def train_columns(self) -> list[str]:
        return [self.label_column, *self.pixel_columns]

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(self.files.values())

    @classmethod
    def from_dict(cls, data: dict) -> Competition:
        fields = {field.name for field in dataclasses.fields(cls)}
        values = {key: data[key] for key in fields}
        for key in ("image_shape", "pixel_range", "submission_columns", "kernel_input_dirs"):
            values[key] = tuple(values[key])
        return cls(**values)


def in_kaggle_kernel() -> bool:
    return bool(os.environ.get(KERNEL_ENV))


def kaggle_dir() -> Path:
    return Path(os.environ.get(KAGGLE_DIR_ENV, "/kaggle"))


def find_project_root(start: Path | None = None) -> Path:
    """The project root: $DIGIT_RECOGNIZER_ROOT, /kaggle/working in a kernel, else the nearest folder above
    ``start`` (default: the working directory) holding competition/competition.json, else ``start`` itself.

    Never the source checkout the package was installed from: a command run in an unrelated folder works there."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    if in_kaggle_kernel():
        return kaggle_dir() / "working"
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / SPEC_RELATIVE).is_file():
            return folder
    return start


def load_competition(root: Path | None = None) -> Competition:
    """Read the competition spec: $DIGIT_RECOGNIZER_COMPETITION, else ``<root>/competition/competition.json``,
    else the one in the source checkout this package came from."""
    candidates = []
    if os.environ.get(COMPETITION_ENV):
        candidates.append(Path(os.environ[COMPETITION_ENV]))
    if root is not None:
        candidates.append(Path(root) / SPEC_RELATIVE)
    candidates.append(Path(__file__).resolve().parents[2] / SPEC_RELATIVE)
    for path in candidates:
        if path.is_file():
            try:
                return Competition.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError) as error:
                raise UserError(f"{path}: not a valid competition spec ({quote(error)})") from None
    raise UserError(f"competition spec not found (looked for {', '.join(map(str, candidates))})")


@dataclass(frozen=True)
class Paths:
    """Where everything lives, all below one root."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def data(self) -> Path:
        """The competition's three files (and the sample's answer key)."""
        return self.inputs / "digit-recognizer"

    @property
    def splits(self) -> Path:
        return self.data / "splits"

    @property
    def cache(self) -> Path:
        return self.data / "cache"

    @property
    def custom_images(self) -> Path:
        return self.inputs / "custom"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def submissions(self) -> Path:
        return self.root / "submissions"

    @property
    def leaderboard(self) -> Path:
        return self.submissions / "leaderboard.csv"

    @property
    def test_labels(self) -> Path:
        """Answer key for the offline sample's test rows (absent for the real competition)."""
        return self.data / "test_labels.csv"

    def data_file(self, competition: Competition, key: str) -> Path:
        return self.data / competition.files[key]

    def experiment_dir(self, experiment: str) -> Path:
        return self.models / experiment

    def report_dir(self, experiment: str) -> Path:
        return self.reports / experiment

    def submission_file(self, experiment: str) -> Path:
        return self.submissions / f"{experiment}.csv"

    @property
    def latest_submission(self) -> Path:
        return self.submissions / "submission.csv"

    @classmethod
    def discover(cls, root: Path | None = None) -> Paths:
        """The project at ``root`` (``--root``), else the one :func:`find_project_root` finds; a file is refused."""
        folder = Path(root).resolve() if root else find_project_root()
        if folder.exists() and not folder.is_dir():
            raise UserError(f"{'--root ' if root else ''}{folder}: is a file, not a project folder")
        return cls(folder)


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
RESERVED_NAMES = frozenset({"submission", "leaderboard", "images", "kernels", "splits", "cache"})


def check_name(name: str, what: str = "experiment") -> str:
    """The one rule for experiment and ensemble names (they name folders and files): 1-80 letters, digits,
    '.', '_' and '-', starting with a letter or digit, and none of the names of files the project owns."""

    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or name.endswith((".csv", ".lock")):
        raise ValueError(
            f"{what} name {quote(name)} must be a plain file name: use letters, digits, '.', '_' and '-' "
            "(at most 80, starting with a letter or digit)"
        )
    if name.lower() in RESERVED_NAMES:
        raise ValueError(
            f"{what} name {quote(name)} is reserved for a file the project owns (submissions/{name.lower()}.csv "
            "or a folder); choose another --name"
        )
    return name


PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
SCHEDULES = ("constant", "cosine")
# the model registry's names (modeling.models.MODEL_BUILDERS)
ARCHITECTURES = ("seed", "compact", "compact-nodrop", "deotte", "deotte-nodrop")


def _option(help: str, **extra) -> dict:
    """Metadata of a hyperparameter that `train` (and `run`, `kernel build`) take as ``--<field-name>``."""
    return {"help": help, **extra}


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines one training run; saved as ``models/<name>/config.json``.

    Each hyperparameter is declared once, here: its type, default, check and command-line help (the
    ``metadata``); presets (modeling/presets.py) are sets of overrides of these defaults, and the command
    line's training options are generated from these fields.
    """

    name: str
    preset: str = "fast"
    architecture: str = field(
        default="compact-nodrop", metadata=_option("override the preset's architecture", choices=ARCHITECTURES)
    )
    partner: str = field(
        default="none",
        metadata=_option(
            "a second model per fold (or holdout) of this architecture, trained the same way with its own seed; the "
            "validation score and `predict` average the two (none = one model per fold)",
            choices=("none", *ARCHITECTURES),
        ),
    )
    epochs: int = field(default=8, metadata=_option("override the preset's epochs"))
    batch_size: int = field(default=128, metadata=_option("override the preset's batch size"))
    learning_rate: float = field(default=3e-3, metadata=_option("override the preset's peak learning rate"))
    schedule: str = field(
        default="cosine",
        metadata=_option("learning-rate schedule: constant, or linear warm-up then cosine decay", choices=SCHEDULES),
    )
    augment: bool = field(default=True, metadata=_option("augmentation on the fly (rotation, zoom, shift)"))
    elastic: float = field(
        default=0.0,
        metadata=_option(
            "share of training images also elastically distorted (Simard 2003; 0 = off, needs --augment)", metavar="P"
        ),
    )
    photo_augment: float = field(
        default=0.0,
        metadata=_option(
            "share of training images also given photo-like changes: stroke width, binarised edges, width stretch, "
            "a box line's leftover (for reading photos with `images`; 0 = off, needs --augment)",
            metavar="P",
        ),
    )
    photo_negatives: float = field(
        default=0.0,
        metadata=_option(
            "share of each training batch replaced by synthetic non-digits made from its digits (two touching digits "
            "as one, a digit's left or right part, a form box's lines) with a uniform target, so that the model is "
            "unsure of them: the photo pipeline's touching-digit cuts are scored by its confidence (0 = off)",
            metavar="P",
        ),
    )
    reader_strings: int = field(
        default=0,
        metadata=_option(
            "also train a string reader for photos of touching digits (`images`): a CNN + GRU read with CTC, trained "
            "on N synthetic strings of 1-5 touching, overlapping or spaced digits made from the training rows "
            "(0 = none; 144000 is the measured setting: 92%% of synthetic strings read right, about an hour on 2 "
            "cores)",
            metavar="N",
        ),
    )
    label_smoothing: float = field(default=0.05, metadata=_option("override the preset's label smoothing"))
    patience: int = field(
        default=0, metadata=_option("early stopping patience in epochs on validation accuracy (0 = off)")
    )
    seed: int = field(
        default=42, metadata=_option("fixes the split, folds, initialisation and augmentation (default 42)")
    )
    holdout: float = field(default=0.1, metadata=_option("stratified validation fraction (default 0.1)"))
    cv: int = field(
        default=0,
        metadata=_option("train K models on K stratified folds and report the out-of-fold accuracy", metavar="K"),
    )
    full_train: bool = field(
        default=False, metadata=_option("after validating, retrain on every row and submit that model")
    )
    max_rows: int = field(
        default=0, metadata=_option("train on a stratified subset of this many rows (quick tries; 0 = all)")
    )
    pseudo_label: float = field(
        default=0.0,
        metadata=_option(
            "a second round: each fold's model labels the test images it is sure of (probability >= P, measured with "
            "the label smoothing undone) and trains again with them (0 = off)",
            metavar="P",
        ),
    )
    pseudo_epochs: int = field(
        default=0,
        metadata=_option(
            "epochs of the second round, fine-tuned from the fold's first-round model at a third of the learning "
            "rate (0 = the second round trains from scratch for --epochs); needs --pseudo-label",
            metavar="N",
        ),
    )
    tta: bool = field(
        default=False,
        metadata=_option(
            "test-time augmentation in this experiment's recipe: its validation score and `predict` average each "
            "image's probabilities with those of four copies shifted by one pixel (`predict --no-tta` overrides)"
        ),
    )
    ema: bool = field(
        default=False, metadata=_option("use an exponential moving average of the weights as the final model")
    )
    precision: str = field(
        default="auto",
        metadata=_option(
            "numeric precision (auto = bfloat16 on CPUs that have it, float16 on GPUs)", choices=PRECISIONS
        ),
    )

    def __post_init__(self):
        check_name(self.name)
        # every numeric field, typed by its annotation (a string: annotations are postponed), so a new one is checked too
        for item in dataclasses.fields(self):
            if item.type not in ("int", "float"):
                continue
            name, kind = item.name, float if item.type == "float" else int
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (kind is int and not float(value).is_integer())
            ):
                raise ValueError(
                    f"--{name.replace('_', '-')} must be {'a number' if kind is float else 'a whole number'}, got {value!r}"
                )
            if not math.isfinite(value):
                raise ValueError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate must be positive, got {self.learning_rate}")
        if self.patience < 0:
            raise ValueError(f"--patience must be 0 (off) or positive, got {self.patience}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"--seed must be between 0 and 2**32 - 1, got {self.seed}")
        if not 0 < self.holdout < 1:
            raise ValueError(f"holdout must be between 0 and 1, got {self.holdout}")
        if self.cv == 1 or self.cv < 0:
            raise ValueError(f"--cv needs at least 2 folds, got {self.cv}")
        if self.max_rows < 0:
            raise ValueError(f"--max-rows must be 0 (all rows) or positive, got {self.max_rows}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be auto, float32, mixed_bfloat16 or mixed_float16, got {self.precision}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {quote(self.architecture)}, choose from {', '.join(ARCHITECTURES)}")
        if self.partner != "none" and self.partner not in ARCHITECTURES:
            raise ValueError(
                f"unknown --partner architecture {quote(self.partner)}, choose from none, {', '.join(ARCHITECTURES)}"
            )
        if self.partner != "none" and self.pseudo_label:
            raise ValueError("--partner and --pseudo-label do not go together yet: choose one of them")
        if self.partner != "none" and self.full_train:
            raise ValueError(
                "--partner and --full-train do not go together: the partners are validated models, not retrained ones"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {quote(self.schedule)}")
        if not 0 <= self.elastic <= 1:
            raise ValueError(f"--elastic must be between 0 and 1 (the share of images distorted), got {self.elastic}")
        if self.elastic and not self.augment:
            raise ValueError("--elastic distorts the augmented images: it needs augmentation on (--augment)")
        if not 0 <= self.photo_augment <= 1:
            raise ValueError(
                f"--photo-augment must be between 0 and 1 (the share of images changed), got {self.photo_augment}"
            )
        if self.photo_augment and not self.augment:
            raise ValueError("--photo-augment changes the augmented images: it needs augmentation on (--augment)")
        if not 0 <= self.photo_negatives < 1:
            raise ValueError(
                f"--photo-negatives must be at least 0 and below 1 (the share of a batch replaced), got {self.photo_negatives}"
            )
        if self.reader_strings < 0:
            raise ValueError(f"--reader-strings must be 0 (no string reader) or positive, got {self.reader_strings}")
        if self.pseudo_label and not 0.5 <= self.pseudo_label <= 1:
            raise ValueError(
                f"--pseudo-label must be 0 (off) or a probability between 0.5 and 1, got {self.pseudo_label}"
            )
        if self.pseudo_epochs < 0:
            raise ValueError(
                f"--pseudo-epochs must be 0 (a second round from scratch) or positive, got {self.pseudo_epochs}"
            )
        if self.pseudo_epochs and not self.pseudo_label:
            raise ValueError("--pseudo-epochs sets the second round's length: it needs --pseudo-label")
        if self.pseudo_label and self.full_train:
            raise ValueError(
                "--pseudo-label and --full-train do not go together: the second round's models are the submission"
            )
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")

    @property
    def num_members(self) -> int:
        """How many models make the experiment's first round: K fold models, or one (each with its partner, if any)."""
        return self.cv if self.cv else 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExperimentConfig:
        """A config from its saved dict; fields added since it was saved take their defaults (which keep the old behaviour)."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    @classmethod
    def normalized(cls, data: dict) -> dict:
        """A saved config dict with today's fields (for comparing a saved run with a new one); {} when it is unreadable."""
        try:
            return cls.from_dict(data).to_dict()
        except (TypeError, ValueError):
            return {}

    @classmethod
    def options(cls) -> list[dataclasses.Field]:
        """The hyperparameters the command line takes (``--<name>``), in declaration order."""
        return [item for item in dataclasses.fields(cls) if "help" in item.metadata]
