"""Build a Kaggle kernel folder: ``kernel-metadata.json`` plus one self-contained script.

The script is :mod:`digit_recognizer.kaggle.kernel_template` (a real module) with its constants marked
``# kernel build fills this in`` replaced: the preset, the training options and ``BUNDLE``, a base64 zip of
this package and the competition spec. So the kernel needs nothing but Kaggle's preinstalled packages
(TensorFlow/Keras, pandas, scikit-learn, OpenCV, matplotlib; never ``mlxtend`` or the ``kaggle`` client).

Kaggle's preinstalled TensorFlow and Keras run it, not this project's pins: the oldest supported pair is
TensorFlow 2.18 with Keras 3.8 (``MINIMUM_TENSORFLOW``/``MINIMUM_KERAS`` in the template, which stops with one
clear line on anything older; ``scripts/ci_kernel_compat.sh`` runs a built script under that pair in CI).

Run in a kernel, the script unpacks the bundle, puts it first on ``sys.path``, runs ``digit-recognizer run``
on the mounted input and writes ``/kaggle/working/submission.csv`` and ``kernel-run.json``. Locally,
``DIGIT_RECOGNIZER_KAGGLE_DIR`` points it at a folder laid out like ``/kaggle``.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from digit_recognizer import __version__
from digit_recognizer.atomic import write_json, write_text
from digit_recognizer.config import Competition, Paths
from digit_recognizer.errors import UserError
from digit_recognizer.kaggle.kernel_template import (  # noqa: F401 (re-exported)
    MINIMUM_KERAS,
    MINIMUM_TENSORFLOW,
    RUN_FILE,
)

METADATA_FILE = "kernel-metadata.json"
CODE_FILE = "digit_recognizer_kernel.py"
DEFAULT_SLUG = "digit-recognizer-cnn"
KERNEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[a-z0-9][a-z0-9-]{4,49}$")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same sources give the same script


def kernel_folder(paths: Paths) -> Path:
    return paths.root / "competition" / "kernel"


def check_folder(folder: Path) -> Path:
    """``folder`` when it is a folder or can be one (nothing in its place or its parents' is a file)."""
    folder = Path(folder)
    for place in (folder, *folder.parents):
        if place.exists() and not place.is_dir():
            what = "" if place == folder else f" (in {folder})"
            raise UserError(f"{place} is a file, not a folder{what}: pass --folder a folder (it is created if missing)")
    return folder


def read_metadata(folder: Path) -> dict:
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        raise UserError(f"{path} not found; run `digit-recognizer kernel build` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise UserError(f"{path}: not valid JSON ({error}); run `digit-recognizer kernel build` again") from None
    if not isinstance(data, dict) or not data.get("id"):
        raise UserError(f"{path}: has no kernel id; run `digit-recognizer kernel build --kernel-id USER/SLUG`")
    return data


def check_kernel_id(kernel_id: str) -> str:
    if not KERNEL_ID_PATTERN.match(kernel_id or ""):
        raise UserError(
            f"kernel id '{kernel_id}' must look like USER/SLUG: your Kaggle user name, a slash, "
            "and a slug of 5-50 lowercase letters, digits and hyphens (e.g. jane/digit-recognizer-cnn)"
        )
    return kernel_id


def title_for(slug: str) -> str:
    """A title that Kaggle turns back into ``slug`` (so the client warns of no mismatch)."""
    acronyms = {"cnn": "CNN", "mnist": "MNIST", "gpu": "GPU", "tta": "TTA"}
    return " ".join(acronyms.get(part, part.capitalize()) for part in slug.split("-") if part)


# ---------------------------------------------------------------- bundle
def package_files(package_dir: Path) -> list[Path]:
    """The package's files, sorted, without caches."""
    return sorted(
        path
        for path in Path(package_dir).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    )


def build_bundle(competition: Competition, package_dir: Path | None = None) -> bytes:
    """A deterministic zip of ``digit_recognizer/`` and ``competition.json``."""
    import digit_recognizer

    package_dir = Path(package_dir or Path(digit_recognizer.__file__).parent)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:

        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)

        for path in package_files(package_dir):
            add(f"digit_recognizer/{path.relative_to(package_dir).as_posix()}", path.read_bytes())
        spec = json.dumps(dataclasses.asdict(competition), indent=2, sort_keys=True) + "\n"
        add("competition.json", spec.encode("utf-8"))
    return buffer.getvalue()


def _bundle_literal(bundle: bytes, width: int = 100) -> str:
    text = base64.b64encode(bundle).decode("ascii")
    lines = [f'    "{text[start : start + width]}"' for start in range(0, len(text), width)]
    return "(\n" + "\n".join(lines) + "\n)"


TEMPLATE_FILE = Path(__file__).with_name("kernel_template.py")
FILLED_IN = "  # kernel build fills this in"


def render_script(bundle: bytes, preset: str, run_args: list[str], template: str | None = None) -> str:
    """The kernel script: ``kernel_template.py`` with each constant marked ``# kernel build fills this in`` replaced."""
    template = TEMPLATE_FILE.read_text(encoding="utf-8") if template is None else template
    values = {
        "BUILT_WITH": repr(f"digit-recognizer {__version__}"),
        "PRESET": repr(preset),
        "RUN_ARGS": repr(list(run_args)),
        "BUNDLE": _bundle_literal(bundle),
    }
    script = template
    for name, value in values.items():
        pattern = re.compile(rf"^{name} = .*{re.escape(FILLED_IN)}$", flags=re.M)
        if len(pattern.findall(script)) != 1:
            raise ValueError(f"{TEMPLATE_FILE.name}: needs exactly one line `{name} = ...{FILLED_IN}`")
        script = pattern.sub(lambda _match, name=name, value=value: f"{name} = {value}", script)
    return script


# ---------------------------------------------------------------- folder
@dataclass(frozen=True)
class KernelBuild:
    folder: Path
    metadata: dict
    script: Path
    bundle_bytes: int


def default_kernel_id(folder: Path) -> str | None:
    """The id of an earlier build, else USER/digit-recognizer-cnn from the credentials' user name."""
    metadata_file = Path(folder) / METADATA_FILE
    if metadata_file.is_file():
        try:
            kernel_id = json.loads(metadata_file.read_text(encoding="utf-8")).get("id")
        except (ValueError, AttributeError):
            kernel_id = None
        if kernel_id:
            return kernel_id
    from digit_recognizer.kaggle.api import username

    user = username()
    return f"{user}/{DEFAULT_SLUG}" if user else None


def build_kernel(
    paths: Paths,
    competition: Competition,
    kernel_id: str | None = None,
    title: str | None = None,
    preset: str = "fast",
    run_args: list[str] | None = None,
    enable_gpu: bool = True,
    is_private: bool = True,
    folder: Path | None = None,
) -> KernelBuild:
    """Write ``kernel-metadata.json`` and the self-contained script into ``folder`` (default competition/kernel/)."""
    from digit_recognizer.modeling.presets import get_preset

    try:
        get_preset(preset)
    except ValueError as error:
        raise UserError(str(error)) from None
    folder = check_folder(Path(folder) if folder else kernel_folder(paths))
    kernel_id = kernel_id or default_kernel_id(folder)
    if not kernel_id:
        raise UserError(
            f"no kernel id: pass --kernel-id USER/SLUG (your Kaggle user name and a slug, e.g. jane/{DEFAULT_SLUG})"
        )
    check_kernel_id(kernel_id)
    title = title or title_for(kernel_id.split("/", 1)[1])
    if len(title) < 5:
        raise UserError(f"kernel title '{title}' must be at least 5 characters")
    bundle = build_bundle(competition)
    script = render_script(bundle, preset, run_args or [])
    metadata = {
        "id": kernel_id,
        "title": title,
        "code_file": CODE_FILE,
        "language": "python",
        "kernel_type": "script",
        "is_private": bool(is_private),
        "enable_gpu": bool(enable_gpu),
        "enable_tpu": False,
        "enable_internet": False,
        "dataset_sources": [],
        "competition_sources": [competition.slug],
        "kernel_sources": [],
        "model_sources": [],
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the kernel folder {folder} ({error.strerror}); pass another --folder") from None
    write_text(folder / CODE_FILE, script)
    write_json(folder / METADATA_FILE, metadata)
    return KernelBuild(folder, metadata, folder / CODE_FILE, len(bundle))


def bundle_from_script(script_text: str) -> bytes:
    """The zip carried by a built script (for checks and tests)."""
    match = re.search(r"^BUNDLE = \((.*?)^\)", script_text, flags=re.S | re.M)
    if not match:
        raise UserError("not a digit-recognizer kernel script (no BUNDLE)")
    return base64.b64decode("".join(re.findall(r'"([A-Za-z0-9+/=]*)"', match.group(1))))
