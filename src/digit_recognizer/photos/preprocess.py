"""From a photo to an ink mask: reading files, finding the page, ink by contrast to the local paper, lines removed.

A photo differs from MNIST's binary scans in every respect; this module brings it to a clean mask of ink,
white on black, which :mod:`.segment` cuts into digits:

1. reading: the file decoded (EXIF orientation applied, alpha composited away, never over 40 megapixels);
2. working size: downscaled or upscaled so the longer side is in [400, 1200] pixels;
3. the page (:func:`find_page`): on a dark or busy background, the paper or sticky note is the large bright
   quadrilateral; it is perspective-corrected to a rectangle and read alone;
4. polarity (:func:`detect_polarity`): dark ink on paper or light ink on a dark board;
5. ink (:func:`ink_contrast`): each pixel's darkness relative to the local paper, whose brightness is a
   morphological closing: over small discs at full resolution, which follows a hard shadow's edge
   (:func:`near_paper_brightness`), and, inside strokes too wide for those (a marker's), over wide discs
   (:func:`paper_brightness`); on coloured paper a pixel's colour distance to the paper's colour counts too;
6. threshold (:func:`binarize`): Otsu, never below a minimum contrast nor within the paper's noise, with
   hysteresis, except along a hard shadow's edge (:func:`shadow_edges`), where strokes broken across it are
   closed again (:func:`bridge_shadow_edges`);
7. printed structure removed: ruled and squared lines across the page (:func:`remove_ruled_lines`) and the
   rectangles of form boxes (:func:`find_form_boxes`, also in the faint ink, :func:`faint_ink`), repairing the
   handwritten strokes that crossed them.

Every step is a pure function of pixels (no model), testable alone.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
UNREADABLE_SUFFIXES = {
    ".gif": "GIF is not supported (OpenCV cannot decode it); save it as PNG",
    ".heic": "HEIC is not supported; export it as JPEG",
    ".heif": "HEIF is not supported; export it as JPEG",
    ".svg": "SVG is a drawing, not a photo; export it as PNG",
    ".pdf": "PDF is not an image; export the page as PNG",
}
MAX_PIXELS = 40_000_000  # refuse (or, for JPEG, decode at reduced size) anything larger
WORK_MAX_SIDE = 1200  # photos are analysed at most this large...
WORK_MIN_SIDE = 400  # ...and small images are upscaled to at least this
MIN_INK_CONTRAST = 0.12  # ink must be at least 12% darker (or lighter) than its background
HYSTERESIS = 0.6  # faint pixels joined to ink count down to this fraction of the ink threshold
NOISE_MARGIN = 5.0  # ...and stand out from the paper's noise by this many standard deviations
PAPER_KERNEL_FRACTION = 0.35  # the paper's brightness is estimated over windows this fraction of the shorter side...
NEAR_PAPER_FRACTION = (
    0.15  # ...and, to follow hard shadow edges, also over discs this fraction across at full resolution
)
SHADOW_STEP = 0.2  # the paper's brightness changing by this fraction within a few pixels is a hard shadow's edge
ALONG_EDGE_FRACTION = 0.15  # on a shadow's edge the paper is also estimated along lines this x the shorter side
DARKEST_PAPER = 24.0  # grey level below which a background is too dark to hold visible dark ink
MIN_COLOUR_DISTANCE = 12.0  # Lab a*b* distance from the paper's colour under which a colour difference is noise
PAGE_MIN_AREA = 0.08  # a page (a sticky note) covers at least this fraction of the photo...
PAGE_MAX_AREA = 0.92  # ...and leaves some background around it
PAGE_MAX_BORDER = 0.3  # at most this fraction of the page's outline may run along the photo's edge
PAGE_MAX_BACKGROUND = 0.6  # what lies around a page is at most this bright relative to it...
PAGE_MAX_COLOURED_BACKGROUND = 0.75  # ...or this, when the page's colour differs from it...
PAGE_MIN_COLOUR_DISTANCE = 20.0  # ...by at least this Lab a*b* distance (a sticky note on a mid-grey desk)
ALONG_LINE = 3.0  # a stroke lying along a form's line for this x the line's thickness is kept where it covers it
DARK_ON_LIGHT = "dark-on-light"
LIGHT_ON_DARK = "light-on-dark"


class ImageReadError(Exception):
    """A file that cannot be used as an image: missing, unreadable, truncated, too large."""


# ---------------------------------------------------------------- files
def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def collect_image_files(inputs) -> tuple[list[Path], list[Path]]:
    """Expand files and folders into image files (folders: their images, sorted, not recursive).

    Returns ``(files, missing)``: a file named explicitly is kept whatever its
    suffix (so a non-image gets an error row rather than being skipped silently);
    ``missing`` lists inputs that do not exist. Files in a folder that look like
    pictures but cannot be read (GIF, HEIC, ...) are listed by :func:`skipped_files`.
    """
    files, missing = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(
                sorted(
                    child
                    for child in path.iterdir()
                    if child.is_file() and is_image_file(child) and not child.name.startswith(".")
                )
            )
        elif path.exists():
            files.append(path)
        else:
            missing.append(path)
    return files, missing


def skipped_files(inputs) -> list[tuple[Path, str]]:
    """Pictures in the given folders that are not read, with why: ``[(path, reason)]`` (GIF, HEIC, SVG, PDF)."""
    skipped = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            skipped.extend(
                (child, UNREADABLE_SUFFIXES[child.suffix.lower()])
                for child in sorted(path.iterdir())
                if child.is_file() and child.suffix.lower() in UNREADABLE_SUFFIXES and not child.name.startswith(".")
            )
    return skipped


def expected_from_name(path: Path) -> str | None:
    """The label a file name starts with, like ``7_mine.jpg`` -> "7" or ``2026-bill.png`` -> "2026"."""
    match = re.match(r"^(\d+)(?:[_\-. ]|$)", Path(path).stem)
    return match.group(1) if match else None


def read_grayscale(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file to a 2-D uint8 grayscale array (see :func:`read_image`)."""
    return to_gray(read_image(path, max_pixels))


def to_gray(image: np.ndarray) -> np.ndarray:
    """HxW gray, HxWx3 RGB or HxWx4 RGBA uint8 -> HxW gray uint8 (luminance)."""
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxW gray or HxWx3 RGB image, got shape {image.shape}")
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def read_image(path: Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image file to uint8 pixels: HxWx3 RGB for colour files, HxW for gray ones; never more than
    ``max_pixels``.

    The dimensions are read from the header before decoding. A larger JPEG is
    decoded at a reduced scale (1/2, 1/4 or 1/8, done by the decoder itself);
    any other larger image is refused. EXIF rotation is applied; transparency is
    composited onto a background that contrasts with the visible pixels.
    Raises :class:`ImageReadError` with a one-line reason.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    path = Path(path)
    if not path.exists():
        raise ImageReadError("file not found")
    if path.is_dir():
        raise ImageReadError("is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageReadError("file is empty")
    if path.suffix.lower() in UNREADABLE_SUFFIXES:
        raise ImageReadError(UNREADABLE_SUFFIXES[path.suffix.lower()])
    pillow_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # the header is checked here, against max_pixels, before any decoding
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    if image.format != "JPEG":
                        raise ImageReadError(
                            f"image is {width}x{height} = {width * height / 1e6:.0f} MP, over the "
                            f"{max_pixels / 1e6:.0f} MP limit; downscale it first"
                        )
                    factor = int(np.ceil(np.sqrt(width * height / max_pixels)))
                    image.draft("L", (width // factor, height // factor))
                    if image.size[0] * image.size[1] > max_pixels:
                        raise ImageReadError(
                            f"image is {width}x{height}, over the {max_pixels / 1e6:.0f} MP limit "
                            "and cannot be decoded smaller; downscale it first"
                        )
                image.load()
                image = ImageOps.exif_transpose(image)
                return _to_array(image)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageReadError(f"image is over the pixel limit ({error})") from None
    except UnidentifiedImageError:
        if path.suffix.lower() in UNREADABLE_SUFFIXES:
            raise ImageReadError(UNREADABLE_SUFFIXES[path.suffix.lower()]) from None
        raise ImageReadError(f"not an image file (or a format not supported: {', '.join(IMAGE_SUFFIXES)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # truncated or corrupt data
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ImageReadError(f"cannot decode the image: truncated or corrupt ({reason})") from None
    except MemoryError:
        raise ImageReadError("image is too large to decode in memory") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit


def _to_array(image) -> np.ndarray:
    """A PIL image (any mode) -> uint8 RGB (colour modes) or 2-D luminance, with alpha composited away."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        return (
            np.zeros(values.shape, np.uint8)
            if high <= low
            else ((values - low) * (255.0 / (high - low))).astype(np.uint8)
        )
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:] / 255.0
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        visible = alpha[..., 0] > 0.5
        # Strokes drawn on a transparent canvas: put them on a background they contrast with.
        background = 0.0 if visible.any() and gray[visible].mean() > 127 else 255.0
        return np.clip(rgba[..., :3] * alpha + background * (1 - alpha), 0, 255).astype(np.uint8)
    if image.mode in ("1", "L", "P") and (image.mode != "P" or _palette_is_gray(image)):
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _palette_is_gray(image) -> bool:
    palette = image.getpalette() or []
    colours = np.asarray(palette[: 3 * (len(palette) // 3)]).reshape(-1, 3)
    return bool((colours.max(axis=1) == colours.min(axis=1)).all())


# ---------------------------------------------------------------- pixels
def _odd(value: float, minimum: int = 3) -> int:
    value = max(minimum, int(round(value)))
    return value if value % 2 else value + 1


def resize_longer_side(gray: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Scale so the longer side is ``side`` pixels; returns (image, scale factor)."""
    import cv2

    height, width = gray.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(gray, size, interpolation=interpolation), scale


def to_working_size(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The image at a size the analysis is tuned for (longer side in [WORK_MIN_SIDE, WORK_MAX_SIDE])."""
    longer = max(gray.shape[:2])
    if longer > WORK_MAX_SIDE:
        return resize_longer_side(gray, WORK_MAX_SIDE)
    if longer < WORK_MIN_SIDE:
        return resize_longer_side(gray, WORK_MIN_SIDE)
    return gray, 1.0


def detect_polarity(gray: np.ndarray) -> str:
    """``"dark-on-light"`` (ink on paper) or ``"light-on-dark"`` (chalk on a board, a negative).

    The local background is the median over a window much larger than a stroke
    (ink covers less than half of any such window); ink is what lies far from it.
    Whichever side, darker or lighter, holds clearly more of those far pixels is
    the ink; when neither does, a light background means dark ink and a dark
    one light ink. Works on uneven lighting because the background is local.
    """
    import cv2

    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale image, got shape {gray.shape}")
    small, _ = resize_longer_side(gray.astype(np.uint8), 160)
    backgrounds = []
    for fraction in (0.6, 0.15):
        window = _odd(fraction * min(small.shape), minimum=5)
        padded = cv2.copyMakeBorder(small, window, window, window, window, cv2.BORDER_REFLECT)
        backgrounds.append(cv2.medianBlur(padded, window)[window:-window, window:-window].astype(np.float32))
    deviation = small.astype(np.float32) - backgrounds[0]
    noise = 1.4826 * float(np.median(np.abs(deviation - np.median(deviation))))
    margin = max(3.0 * noise, 8.0)
    darker = float(np.clip(-deviation - margin, 0, None).sum())
    lighter = float(np.clip(deviation - margin, 0, None).sum())
    # A hard shadow's edge leaves a band on each side where the wide window's median is the other side's
    # brightness (a lighter band on the lit side). A narrow window follows the edge: where it also sees
    # clearly more dark ink than light, the ink is dark (its strokes are narrower than its window).
    narrow = small.astype(np.float32) - backgrounds[1]
    narrow_darker = float(np.clip(np.minimum(-deviation, -narrow) - margin, 0, None).sum())
    narrow_lighter = float(np.clip(np.minimum(deviation, narrow) - margin, 0, None).sum())
    clearly_dark = narrow_darker > 2.0 * narrow_lighter
    # The background's brightness is the prior: paper is light, boards are dark. The other polarity must be
    # clearly stronger to win (a blank page keeps its natural reading). The background is the brightest part
    # of the wide median (a page half in shadow is still light paper; chalk is too thin to be background).
    if np.percentile(backgrounds[0], 90) >= 128:
        if lighter <= 2.0 * darker or clearly_dark:
            return DARK_ON_LIGHT
        # Light paper whose shadow's edge looks like light ink to both medians: strokes are narrow ridges
        # with background on both sides, and a step is not one; clearly more dark ridges than light is dark ink.
        ridge_darker, ridge_lighter = _ridges(gray.astype(np.uint8))
        return DARK_ON_LIGHT if ridge_darker > 2.0 * ridge_lighter else LIGHT_ON_DARK
    return DARK_ON_LIGHT if darker > 2.0 * lighter or clearly_dark else LIGHT_ON_DARK


def _ridges(gray: np.ndarray, side: int = 320, fraction: float = 0.05) -> tuple[float, float]:
    """How much narrow dark and narrow light ridge an image has: ``(dark, light)``, the relative black-hat and
    top-hat over discs ``fraction`` of the shorter side (at ``side`` pixels), beyond the noise, summed.

    A closing erases dark ridges narrower than its disc and an opening light ones, and both leave a straight
    step as it is: ink strokes count, a hard shadow's edge does not.
    """
    import cv2

    small, _ = resize_longer_side(gray, side)
    size = _odd(fraction * min(small.shape), minimum=3)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    padded = cv2.copyMakeBorder(small, size, size, size, size, cv2.BORDER_REPLICATE)
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[size:-size, size:-size].astype(np.float32)
    opened = cv2.morphologyEx(padded, cv2.MORPH_OPEN, kernel)[size:-size, size:-size].astype(np.float32)
    pixels = small.astype(np.float32)
    dark = (closed - pixels) / np.maximum(closed, DARKEST_PAPER)
    light = (pixels - opened) / np.maximum(closed, DARKEST_PAPER)
    noise = 1.4826 * sum(float(np.median(np.abs(values - np.median(values)))) for values in (dark, light))
    margin = max(3.0 * noise, 0.03)
    return float(np.clip(dark - margin, 0, None).sum()), float(np.clip(light - margin, 0, None).sum())


def paper_brightness(image: np.ndarray) -> np.ndarray:
    """The paper's brightness under dark ink (float32, the image's size): a morphological closing.

    The closing (a maximum, then a minimum, over discs a third of the shorter side) erases every stroke
    narrower than the disc, even a marker's; it runs at low resolution (200 px), lightly smoothed and scaled
    back, and is never darker than the pixels themselves. (A closing at full resolution with squares was
    tried for hard shadow edges: it fills the shadow's corners with false ink, so it is not used.)
    """
    import cv2

    height, width = image.shape
    small, _ = resize_longer_side(image, 200)
    kernel_size = _odd(PAPER_KERNEL_FRACTION * min(small.shape), minimum=5)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    padded = cv2.copyMakeBorder(small, kernel_size, kernel_size, kernel_size, kernel_size, cv2.BORDER_REPLICATE)
    paper = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[kernel_size:-kernel_size, kernel_size:-kernel_size]
    # Only a light blur: a wide one would brighten the darker edge of a lighting gradient into false ink.
    paper = cv2.GaussianBlur(paper.astype(np.float32), (0, 0), 1.5, borderType=cv2.BORDER_REPLICATE)
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.maximum(paper, image.astype(np.float32))


def near_paper_brightness(image: np.ndarray) -> np.ndarray:
    """The paper's brightness near each pixel (float32, the image's size): a closing at full resolution over
    discs :data:`NEAR_PAPER_FRACTION` of the shorter side.

    A closing leaves a straight step unchanged, so this follows a hard shadow's edge to the pixel, where the
    wide, smoothed, low-resolution estimate (:func:`paper_brightness`) spills the lit side's brightness over
    the edge as a false line of ink. It erases only strokes narrower than its disc: the middle of a stroke
    wider than that is left to :func:`enclosed_by_ink`.
    """
    import cv2

    size = _odd(NEAR_PAPER_FRACTION * min(image.shape[:2]), minimum=5)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    padded = cv2.copyMakeBorder(image, size, size, size, size, cv2.BORDER_REPLICATE)
    return cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[size:-size, size:-size].astype(np.float32)


def enclosed_by_ink(
    near: np.ndarray,
    wide: np.ndarray,
    image: np.ndarray,
    min_enclosed: float = 0.75,
    min_contrast: float = MIN_INK_CONTRAST,
) -> np.ndarray:
    """Where the wide paper estimate's ink (``wide``, a mask) is to be trusted though the near one's (``near``, a
    mask) is not: regions only ``wide`` calls ink whose outline is, for at least ``min_enclosed`` of its
    length, ``near``'s ink or paper clearly brighter than the region (``image``, dark ink on light): the
    middles of strokes wider than the near estimate's disc, which are dark all across. The band of false
    ink the wide estimate sees along a shadow's edge is as dark as the shadow beyond it, so it stays out.
    Boolean, the masks' shape."""
    import cv2

    disputed = ((wide > 0) & (near == 0)).astype(np.uint8)
    count, labels = cv2.connectedComponents(disputed, connectivity=8)
    if count <= 1:
        return np.zeros(near.shape, bool)
    pixels = image.astype(np.float64)
    inside = disputed > 0
    darkness = np.bincount(labels[inside], weights=pixels[inside], minlength=count) / np.maximum(
        np.bincount(labels[inside], minlength=count), 1
    )
    neighbour = cv2.dilate(labels.astype(np.float32), np.ones((3, 3), np.uint8))
    outline = ~inside & (neighbour > 0)
    owners = neighbour[outline].astype(np.int64)
    bounded = (near[outline] > 0) | (pixels[outline] > (1 + min_contrast) * darkness[owners])
    enclosed = np.bincount(owners, weights=bounded.astype(np.float64), minlength=count) >= min_enclosed * np.maximum(
        np.bincount(owners, minlength=count), 1
    )
    enclosed[0] = False
    return enclosed[labels] & inside


def ink_contrast(
    gray: np.ndarray, polarity: str, colour: np.ndarray | None = None, min_contrast: float = MIN_INK_CONTRAST
) -> np.ndarray:
    """Ink strength in [0, 1], white ink on black: the relative contrast to the local paper.

    The image is made dark-ink-on-light first (inverted for ``light-on-dark``); dividing by the paper's
    brightness evens out shadows and lighting gradients. The paper is estimated twice: near each pixel
    (:func:`near_paper_brightness`, which follows a hard shadow's edge) and over wide windows
    (:func:`paper_brightness`, which sees through a marker's wide strokes); the near one is used except inside
    strokes too wide for it (:func:`enclosed_by_ink`). With ``colour`` (the
    same image in RGB), a pixel that is darker than the paper and of another colour than the paper around it
    (red ink on a yellow note) is ink by its Lab colour distance too.
    """
    if polarity not in (DARK_ON_LIGHT, LIGHT_ON_DARK):
        raise ValueError(f"polarity must be '{DARK_ON_LIGHT}' or '{LIGHT_ON_DARK}', got {polarity!r}")
    image = gray.astype(np.uint8)
    if polarity == LIGHT_ON_DARK:
        image = 255 - image
    paper = paper_brightness(image)
    # Relative contrast. Where the paper is much darker than usual (deep shadow, the dark side of an
    # inverted board) dividing would amplify noise into false ink, so the divisor has a floor; and on
    # a black image nothing is ink.
    floor = max(DARKEST_PAPER, 0.4 * float(np.median(paper)))
    pixels = image.astype(np.float32)
    wide = np.clip((paper - pixels) / np.maximum(paper, floor), 0.0, 1.0)
    near_paper = np.maximum(np.minimum(near_paper_brightness(image), paper), pixels)
    near = np.clip((near_paper - pixels) / np.maximum(near_paper, floor), 0.0, 1.0)
    near_ink, wide_ink = binarize(near, min_contrast), binarize(wide, min_contrast)
    # The wide estimate's (stronger) contrast wherever its ink is confirmed: by the near estimate, or, in a
    # stroke too wide for the near one, by the ink around it.
    confirmed = (wide_ink > 0) & (
        (near_ink > 0) | enclosed_by_ink(near_ink, wide_ink, image, min_contrast=min_contrast)
    )
    contrast = np.where(confirmed, wide, near)
    if colour is not None and polarity == DARK_ON_LIGHT:
        contrast = np.maximum(contrast, np.where(contrast > 0.05, colour_contrast(colour), 0.0))
    return contrast


def shadow_edges(gray: np.ndarray, polarity: str = DARK_ON_LIGHT) -> np.ndarray:
    """Where a hard shadow's edge runs (boolean, the image's size): the paper's brightness near each pixel
    (:func:`near_paper_brightness`, strokes erased) changes by more than :data:`SHADOW_STEP` of itself across a
    small disc (2.5% of the shorter side), widened by that disc. A stroke is no such step: the paper on its two
    sides is alike."""
    import cv2

    image = gray.astype(np.uint8)
    if polarity == LIGHT_ON_DARK:
        image = 255 - image
    near = near_paper_brightness(image)
    size = _odd(0.025 * min(image.shape[:2]), minimum=3)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    high, low = cv2.dilate(near, kernel), cv2.erode(near, kernel)
    steps = ((high - low) > SHADOW_STEP * np.maximum(high, DARKEST_PAPER)).astype(np.uint8)
    return cv2.dilate(steps, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * size + 1, 2 * size + 1))) > 0


def along_edge_paper(image: np.ndarray, edges: np.ndarray, fraction: float = ALONG_EDGE_FRACTION, most: int = 3):
    """The paper's brightness on a hard shadow's edge (float32, the image's size; dark ink on light), estimated along
    the edge: a closing with a line :data:`ALONG_EDGE_FRACTION` of the shorter side long, laid along the edge's
    direction (from the paper's gradient over each of the ``most`` largest bands of ``edges``); 0 off the edges and
    where the line would leave the photo.

    The disc closing of :func:`near_paper_brightness` mixes the lit side into the shadow's foot (the ramp is not a
    perfect step), so a faint stroke on the ramp is as dark as the paper it sees there; along the edge the paper's
    brightness does not change, so a stroke crossing it stands out. A stroke lying along the edge for longer than
    the line is erased instead: :func:`ink_on_shadow_edges` adds this ink to the usual, not in its place."""
    import cv2

    paper = np.zeros(image.shape, np.float32)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(edges.astype(np.uint8), connectivity=8)
    if count <= 1:
        return paper
    near = near_paper_brightness(image)
    gx, gy = cv2.Sobel(near, cv2.CV_32F, 1, 0, ksize=5), cv2.Sobel(near, cv2.CV_32F, 0, 1, ksize=5)
    length = _odd(fraction * min(image.shape[:2]))
    padded = cv2.copyMakeBorder(image, length, length, length, length, cv2.BORDER_REPLICATE)
    for label in sorted(range(1, count), key=lambda label: -stats[label, cv2.CC_STAT_AREA])[:most]:
        band = labels == label
        xx, yy, xy = (float(values.sum()) for values in (gx[band] ** 2, gy[band] ** 2, gx[band] * gy[band]))
        along = 0.5 * np.arctan2(2 * xy, xx - yy) + np.pi / 2  # across the paper's gradient
        kernel = np.zeros((length, length), np.uint8)
        centre, reach = (length - 1) / 2, (length - 1) / 2
        ends = [
            (int(round(centre + sign * reach * np.cos(along))), int(round(centre + sign * reach * np.sin(along))))
            for sign in (-1, 1)
        ]
        cv2.line(kernel, ends[0], ends[1], 1, 1)
        closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, kernel)[length:-length, length:-length]
        # Only where the whole line lies in the photo: the border's padding does not run along the edge.
        whole = cv2.erode(np.ones(image.shape, np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        paper[band & whole] = closed[band & whole]
    return paper


def ink_on_shadow_edges(
    gray: np.ndarray, polarity: str, contrast: np.ndarray, edges: np.ndarray, min_contrast: float = MIN_INK_CONTRAST
) -> np.ndarray:
    """The ink mask (uint8 0/255) with a hard shadow's ``edges`` (:func:`shadow_edges`) read twice: as
    :func:`binarize` reads them (only clear ink there, so the false ink along the edge stays out) and, added to it,
    with the contrast to the paper estimated along the edge (:func:`along_edge_paper`) and the usual hysteresis,
    which keeps a faint stroke lying on the shadow's ramp."""
    ink = binarize(contrast, min_contrast, edges)
    if not edges.any():
        return ink
    image = gray.astype(np.uint8)
    if polarity == LIGHT_ON_DARK:
        image = 255 - image
    pixels = image.astype(np.float32)
    paper = np.maximum(along_edge_paper(image, edges), pixels)
    along = np.clip((paper - pixels) / np.maximum(paper, DARKEST_PAPER), 0.0, 1.0)
    return np.maximum(ink, binarize(np.where(edges, along, contrast), min_contrast))


def bridge_shadow_edges(mask: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Strokes broken where they cross a shadow's edge joined again: a closing over small discs (5% of the
    shorter side) of the ink mask (uint8 0/255), kept only on the ``edges`` (:func:`shadow_edges`)."""
    import cv2

    if not edges.any():
        return mask
    size = _odd(0.05 * min(mask.shape[:2]), minimum=3)
    closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    return np.where(edges, closed, mask).astype(np.uint8)


def colour_contrast(rgb: np.ndarray) -> np.ndarray:
    """How far each pixel's colour (Lab a*, b*) is from the local paper's colour, in [0, 1].

    The paper's colour is the median over windows a fifth of the shorter side (ink is a minority of any
    such window), at low resolution; distances under :data:`MIN_COLOUR_DISTANCE` are noise (JPEG chroma).
    """
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB)
    chroma = lab[..., 1:].astype(np.float32)
    small, _ = resize_longer_side(lab[..., 1:].copy(), 160)
    window = _odd(0.2 * min(small.shape[:2]), minimum=3)
    window = min(window, 255)
    paper = np.stack(
        [cv2.medianBlur(np.ascontiguousarray(small[..., channel]), window) for channel in range(2)], axis=-1
    )
    paper = cv2.resize(paper.astype(np.float32), (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    distance = np.sqrt(((chroma - paper) ** 2).sum(axis=-1))
    return np.clip((distance - MIN_COLOUR_DISTANCE) / 60.0, 0.0, 1.0)


def binarize(
    contrast: np.ndarray, min_contrast: float = MIN_INK_CONTRAST, edges: np.ndarray | None = None
) -> np.ndarray:
    """Ink mask (uint8 0/255): denoise, then Otsu's threshold, never below ``min_contrast``; fainter pixels
    (down to :data:`HYSTERESIS` of the threshold, above the paper's noise) joined to ink are ink too, except on
    ``edges`` (a boolean mask, :func:`shadow_edges`): there only clear ink counts, so the faint false ink a
    shadow's edge leaves along itself (its blur, JPEG's ringing) is not joined to a stroke that crosses it."""
    import cv2

    if not 0 < min_contrast < 1:
        raise ValueError(f"min_contrast must be in (0, 1), got {min_contrast}")
    smooth = cv2.GaussianBlur(contrast.astype(np.float32), (0, 0), 1.0)
    levels = np.clip(smooth * 255.0, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ceiling = 255.0 * _paper_ceiling(smooth)
    threshold = max(float(otsu), min_contrast * 255.0, ceiling)
    # Hysteresis: fainter ink (a pencil stroke fading into a shadow, a stroke's thin joint) counts when it is
    # joined to clear ink and still stands out from the paper's noise.
    faint = levels > max(HYSTERESIS * threshold, ceiling)
    if edges is not None:
        faint &= ~edges | (levels > threshold)
    faint = faint.astype(np.uint8)
    count, labels = cv2.connectedComponents(faint, connectivity=8)
    joined = np.zeros(count, bool)
    joined[np.unique(labels[levels > threshold])] = True
    joined[0] = False
    return np.where(joined[labels], 255, 0).astype(np.uint8)


def faint_ink(contrast: np.ndarray, min_contrast: float = MIN_INK_CONTRAST) -> np.ndarray:
    """Everything that stands out from the paper's noise, down to half ``min_contrast`` (uint8 0/255), joined to
    clear ink or not: where a form's thin, light printed frame is whole, though the ink mask (:func:`binarize`,
    whose threshold is set by the dark handwriting) keeps only pieces of it."""
    import cv2

    smooth = cv2.GaussianBlur(contrast.astype(np.float32), (0, 0), 1.0)
    level = max(_paper_ceiling(smooth), 0.5 * min_contrast)
    return np.where(smooth > level, 255, 0).astype(np.uint8)


def _paper_ceiling(contrast: np.ndarray, margin: float = NOISE_MARGIN) -> float:
    """The contrast that paper texture and sensor noise stay under: median + ``margin`` robust deviations.

    Ink is a minority of the pixels, so the median and the median absolute
    deviation describe the paper.
    """
    values = contrast[::2, ::2].ravel()
    median = float(np.median(values))
    deviation = 1.4826 * float(np.median(np.abs(values - median)))
    return median + margin * deviation


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a binary shape: twice its area over its perimeter."""
    import cv2

    binary = (mask > 0).astype(np.uint8)
    area = float(binary.sum())
    if area == 0:
        return 0.0
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(contour, True) for contour in contours)
    return 2.0 * area / perimeter if perimeter > 0 else float(min(binary.shape))


def remove_ruled_lines(mask: np.ndarray) -> np.ndarray:
    """Remove the long thin straight lines of ruled paper; repair the strokes they crossed.

    A horizontal line must run across 80% of the image, a vertical one (a margin)
    95%, and be thin. A lone line must also reach both edges of the image, as
    lines printed across the page do, or be clearly thinner than the writing;
    several parallel lines are ruling anyway.
    Where a digit's stroke crossed a line, the gap is closed again by a short
    closing across it. A pass that would leave almost no ink is undone: then the
    "line" was the digit itself (a straight 1 or a 7's bar in a tight crop).
    """
    import cv2

    height, width = mask.shape
    cleaned = mask.copy()
    for horizontal, reach in ((True, 0.8), (False, 0.95)):
        extent = width if horizontal else height
        length = int(reach * extent)
        if length < 50:
            continue
        bar = (length, 1) if horizontal else (1, length)
        lines = cv2.morphologyEx(cleaned, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, bar))
        if not lines.any():
            continue
        thickness = _line_thickness(lines, horizontal)
        if thickness > max(6, 0.03 * (height if horizontal else width)):
            continue  # a thick band (a shadow's edge, a table) is judged later, as a shape
        # The line's faint edges (kept by the hysteresis, but not straight enough to survive the opening) go too.
        edges = cv2.dilate(lines, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3) if horizontal else (3, 1)))
        lines = cv2.bitwise_and(edges, cleaned)
        remaining = cv2.subtract(cleaned, lines)
        count, _, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
        start, size = (cv2.CC_STAT_LEFT, cv2.CC_STAT_WIDTH) if horizontal else (cv2.CC_STAT_TOP, cv2.CC_STAT_HEIGHT)
        edge = 0.02 * extent
        edge_to_edge = stats[1, start] <= edge and stats[1, start] + stats[1, size] >= extent - edge
        thinner_than_writing = thickness <= 0.6 * stroke_width(remaining)
        if count - 1 == 1 and not (edge_to_edge or thinner_than_writing):
            continue
        span = int(2 * thickness + 3)
        across = (1, span) if horizontal else (span, 1)
        closed = cv2.morphologyEx(remaining, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, across))
        repaired = cv2.bitwise_or(remaining, cv2.bitwise_and(closed, lines))
        if np.count_nonzero(repaired) >= 0.1 * np.count_nonzero(cleaned):
            cleaned = repaired
    return cleaned


def _line_thickness(lines: np.ndarray, horizontal: bool) -> float:
    """Median thickness in pixels of the lines: line pixels per run, across the lines."""
    binary = (lines > 0) if horizontal else (lines > 0).T
    counts = binary.sum(axis=0)
    runs = (np.diff(binary.astype(np.int8), axis=0) == 1).sum(axis=0) + binary[0]
    crossed = runs > 0
    return float(np.median(counts[crossed] / runs[crossed])) if crossed.any() else 0.0


# ---------------------------------------------------------------- the page
def find_page(rgb: np.ndarray) -> np.ndarray | None:
    """The corners (4x2 float32: top-left, top-right, bottom-right, bottom-left) of a page or sticky note lying on a
    clearly darker background, or None when the photo is all page.

    The page is the largest bright region (Otsu's threshold on Lab lightness at low resolution) that is a
    convex quadrilateral covering 8-92% of the photo, lies mostly inside it (at most 30% of its outline
    along the photo's edge: a shadow across a page leaves a lit part that runs along the edges) and is much
    brighter than what surrounds it (or somewhat brighter and of a clearly different colour: a coloured note on a
    mid-grey desk), and bright all over (not a chalk ring on a board).
    """
    import cv2

    image = np.asarray(rgb)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"expected an HxW gray or HxWx3 RGB image, got shape {image.shape}")
    small, scale = resize_longer_side(np.ascontiguousarray(image), 400)
    lightness = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2LAB)[..., 0], (5, 5), 0)
    threshold, bright = cv2.threshold(lightness, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9)))
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea)
    area = cv2.contourArea(outline)
    total = small.shape[0] * small.shape[1]
    if not PAGE_MIN_AREA * total <= area <= PAGE_MAX_AREA * total:
        return None
    hull = cv2.convexHull(outline)
    if area < 0.9 * cv2.contourArea(hull):
        return None  # not a convex shape: a bright patch, not a sheet
    corners = cv2.approxPolyDP(hull, 0.04 * cv2.arcLength(hull, True), True).reshape(-1, 2)
    if len(corners) != 4:
        corners = cv2.boxPoints(cv2.minAreaRect(hull))
    if _border_fraction(outline.reshape(-1, 2), small.shape) > PAGE_MAX_BORDER:
        return None
    inside = np.zeros(small.shape[:2], np.uint8)
    cv2.fillPoly(inside, [corners.astype(np.int32)], 255)
    if float((bright[inside > 0] > 0).mean()) < 0.85:
        return None  # a page is bright all over; a bright ring (a chalk 0 on a board) is not a page
    page_level = float(np.median(lightness[inside > 0]))
    background_level = float(np.median(lightness[inside == 0]))
    if background_level > PAGE_MAX_BACKGROUND * page_level:
        # Only a page of another colour than what lies around it (a sticky note on a grey or brown desk) may stand
        # out less in brightness; lighting (a gradient, a shadow across a page) changes brightness, not colour.
        chroma = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)[..., 1:].astype(np.float32)
        colour_distance = float(
            np.linalg.norm(np.median(chroma[inside > 0], axis=0) - np.median(chroma[inside == 0], axis=0))
        )
        if background_level > PAGE_MAX_COLOURED_BACKGROUND * page_level or colour_distance < PAGE_MIN_COLOUR_DISTANCE:
            return None
    return order_corners(corners.astype(np.float32) / scale)


def _border_fraction(points: np.ndarray, shape: tuple, margin: int = 3) -> float:
    """The fraction of an outline (points in order) that runs within ``margin`` pixels of the image's edge."""
    height, width = shape[:2]
    starts, ends = points.astype(np.float64), np.roll(points, -1, axis=0).astype(np.float64)
    lengths = np.hypot(*(ends - starts).T)
    middles = (starts + ends) / 2
    near = (
        (middles[:, 0] <= margin)
        | (middles[:, 1] <= margin)
        | (middles[:, 0] >= width - 1 - margin)
        | (middles[:, 1] >= height - 1 - margin)
    )
    return float(lengths[near].sum() / lengths.sum()) if lengths.sum() > 0 else 1.0


def order_corners(corners: np.ndarray) -> np.ndarray:
    """Four points as top-left, top-right, bottom-right, bottom-left."""
    corners = np.asarray(corners, np.float32).reshape(4, 2)
    sums, differences = corners.sum(axis=1), corners[:, 0] - corners[:, 1]
    return np.float32(
        [
            corners[np.argmin(sums)],
            corners[np.argmax(differences)],
            corners[np.argmax(sums)],
            corners[np.argmin(differences)],
        ]
    )


def rectify(image: np.ndarray, corners: np.ndarray, inset: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """The page cut out and perspective-corrected to a rectangle, its edges ``inset`` trimmed (the page's own
    border is not ink): ``(page image, 3x3 matrix from page pixels to the input image's pixels)``."""
    import cv2

    corners = order_corners(corners)
    width = int(round(max(np.linalg.norm(corners[1] - corners[0]), np.linalg.norm(corners[2] - corners[3]))))
    height = int(round(max(np.linalg.norm(corners[3] - corners[0]), np.linalg.norm(corners[2] - corners[1]))))
    if width < 8 or height < 8:
        raise ValueError(f"the page is too small to read ({width}x{height} pixels)")
    margin_x, margin_y = inset * width, inset * height
    target = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])
    shift = np.float32([[1, 0, -margin_x], [0, 1, -margin_y], [0, 0, 1]])
    to_page = shift @ cv2.getPerspectiveTransform(corners, target)
    out_width, out_height = max(8, int(round(width - 2 * margin_x))), max(8, int(round(height - 2 * margin_y)))
    page = cv2.warpPerspective(
        image, to_page, (out_width, out_height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return page, np.linalg.inv(to_page)


# ---------------------------------------------------------------- form boxes
@dataclass(frozen=True)
class FormBoxes:
    """Printed boxes found in an ink mask: ``boxes`` (x, y, w, h) inside their frame lines, left to right, and
    ``lines`` the frame's pixels (uint8 0/255)."""

    boxes: tuple
    lines: np.ndarray


def find_form_boxes(mask: np.ndarray, min_boxes: int = 2) -> FormBoxes:
    """Rows of printed boxes (a postcode's comb or separate boxes) in an ink mask.

    A row is two long thin horizontal lines, one above the other, joined at the same columns by thin
    vertical lines that run the whole way between them (a handwritten stroke does not: it is not straight
    and upright for that long, and it lies inside a box). Consecutive vertical lines at least half the row's
    height apart enclose a box. A row whose boxes all lie inside another row's taller boxes is a digit's flat
    stroke (a 2's base) taken for a line together with the box's sides: it is dropped, and its "line" stays ink;
    so is a row of one box that lines up with no other box (:func:`_aligned`). Fewer than ``min_boxes`` boxes is no
    form.
    """
    import cv2

    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    height, width = mask.shape
    binary = (mask > 0).astype(np.uint8) * 255
    length = max(15, int(0.03 * max(height, width)))
    thin = max(4, int(0.012 * max(height, width)))
    horizontal = cv2.morphologyEx(binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(horizontal, connectivity=8)
    segments = [
        tuple(int(value) for value in stats[label][:4])
        for label in range(1, count)
        if stats[label][2] >= length and _thin_in_part(labels, stats[label], label, thin + 2)
    ]
    rows = [
        row
        for top in segments
        for bottom in segments
        if (row := _box_row(binary, horizontal, top, bottom, thin, min_span=max(20, int(1.2 * length))))
    ]
    rows = [
        (row_boxes, row_lines)
        for row_boxes, row_lines in rows
        if not all(any(_nested(box, other, thin) for other in _other_rows_boxes(rows, row_boxes)) for box in row_boxes)
    ]
    lines = np.zeros_like(binary)
    boxes = []
    for row_boxes, row_lines in rows:
        if len(row_boxes) < 2 and not any(
            _aligned(row_boxes[0], other) for other in _other_rows_boxes(rows, row_boxes)
        ):
            continue
        boxes.extend(row_boxes)
        lines |= row_lines
    if len(boxes) < min_boxes:
        return FormBoxes((), np.zeros_like(binary))
    return FormBoxes(tuple(_distinct(sorted(boxes))), lines)


def _other_rows_boxes(rows: list, boxes: list) -> list:
    """The boxes of every row in ``rows`` ((boxes, lines) pairs) but the one whose boxes are ``boxes``."""
    return [box for other_boxes, _lines in rows if other_boxes is not boxes for box in other_boxes]


def _aligned(box: tuple, other: tuple) -> bool:
    """Whether two boxes (x, y, w, h) stand side by side as a form's printed boxes do: alike in height, their tops or
    their bottoms level (a 7's bar along one box's top line lowers that box's top). A row of one box is a separate
    box of a form only beside another such; a digit's flat strokes and upright ones (a 3 or a 6 in a photo of a
    number) can frame one "box", rarely two that line up."""
    height = max(box[3], other[3])
    level = min(abs(box[1] - other[1]), abs(box[1] + box[3] - other[1] - other[3]))
    return abs(box[3] - other[3]) <= 0.3 * height and level <= 0.25 * height


def _thin_in_part(labels: np.ndarray, stats: np.ndarray, label: int, thin: int) -> bool:
    """Whether a horizontal segment (component ``label``, ``stats`` its row of connectedComponentsWithStats) is at
    most ``thin`` pixels thick along a quarter of its length at least: a frame's line is thin where no digit's bar
    lies along it (a 7's bar may thicken most of its box's top line); a shadow's edge or a thick stroke is thick
    all along. Thickness is counted per column, so a slightly tilted line is still thin."""
    x, y, width, height = (int(value) for value in stats[:4])
    counts = (labels[y : y + height, x : x + width] == label).sum(axis=0)
    return float(np.percentile(counts, 25)) <= thin


def _nested(inner: tuple, outer: tuple, tolerance: int) -> bool:
    """Whether box ``inner`` (x, y, w, h) lies within ``outer`` (give or take ``tolerance`` pixels) and is clearly
    less tall."""
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return (
        x >= ox - tolerance
        and x + w <= ox + ow + tolerance
        and y >= oy - tolerance
        and y + h <= oy + oh + tolerance
        and h < 0.9 * oh
    )


def _distinct(boxes: list) -> list:
    """Boxes with the same box found twice (from two pieces of a broken frame line) kept once."""
    kept = []
    for box in boxes:
        x, y, w, h = box
        if not any(
            abs(x + w / 2 - (k[0] + k[2] / 2)) < k[2] / 2 and abs(y + h / 2 - (k[1] + k[3] / 2)) < k[3] / 2
            for k in kept
        ):
            kept.append(box)
    return kept


def _box_row(binary: np.ndarray, horizontal: np.ndarray, top: tuple, bottom: tuple, thin: int, min_span: int = 20):
    """The boxes between a top and a bottom horizontal line, and the frame's pixels; None if they frame nothing.

    A horizontal line's pixels are those of the straight band it runs in (:func:`_line_band`, from ``horizontal``,
    the long horizontal runs of ink): a digit's stroke lying along it from inside the box (a 7's bar, a 0's top)
    stays, where its part beyond the line's own thickness would otherwise go with the line. Both lines are printed
    alike: their thickness is the thinner one's (a box's own top line may be thickened over most of its length by
    a 7's bar along it, in separate boxes). Vertical lines are looked for a line's width beyond the horizontal lines' ends: a blurred frame's rounded
    corner ends its horizontal lines short of its outer sides, and a side found only in part leaves a sliver that
    joins the digit touching it."""
    x0, x1 = max(top[0], bottom[0]), min(top[0] + top[2], bottom[0] + bottom[2])
    upper, lower = top[1], bottom[1] + bottom[3]
    span = bottom[1] - (top[1] + top[3])
    if span < min_span or x1 - x0 < 0.6 * min(top[2], bottom[2]) or x1 - x0 < 0.8 * span:
        return None
    outer_left, outer_right = max(0, x0 - thin), min(binary.shape[1], x1 + thin)
    inner = binary[top[1] + top[3] : bottom[1], outer_left:outer_right] > 0
    coverage = inner.mean(axis=0)
    columns = np.flatnonzero(coverage >= 0.93)
    if columns.size == 0:
        return None
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    # a vertical line, or two close together (the sides of neighbouring boxes a few pixels apart)
    verticals = _without_upright_strokes(
        [
            tuple(value + outer_left for value in _with_ragged_edges(int(run[0]), int(run[-1]), coverage))
            for run in runs
            if run[-1] - run[0] + 1 <= 2 * (thin + 2)
        ],
        span,
    )
    boxes = []
    for (_left_start, left_end), (right_start, _) in zip(verticals, verticals[1:]):
        if right_start - left_end >= 0.5 * span:
            boxes.append((left_end + 1, top[1] + top[3], right_start - left_end - 1, span))
    if not boxes:
        return None
    lines = np.zeros_like(binary)
    frame_left, frame_right = boxes[0][0] - thin - 2, boxes[-1][0] + boxes[-1][2] + thin + 2
    runs = []
    for x, y, w, h in (top, bottom):
        left, right = max(x, frame_left), min(x + w, frame_right)
        runs.append((y, left, horizontal[y : y + h, left:right] > 0))
    thickness = min(_run_thickness(segment_runs) for *_corner, segment_runs in runs)
    for y, left, segment_runs in runs:
        height, width = segment_runs.shape
        band = _line_band(segment_runs, thickness)
        lines[y : y + height, left : left + width] = np.where(band, binary[y : y + height, left : left + width], 0)
    for start, end in verticals:
        if frame_left <= start <= frame_right:
            lines[upper:lower, start : end + 1] = binary[upper:lower, start : end + 1]
    return boxes, lines


def _with_ragged_edges(start: int, end: int, coverage: np.ndarray, most: int = 2) -> tuple[int, int]:
    """A vertical line's columns (first, last) with up to ``most`` columns each side that it covers at least half
    of the way (``coverage``, per column): a thin coloured line's edges, ragged in a JPEG, left out of the line
    would stay as dashes along the box's side and join the digit that touches it."""
    for _ in range(most):
        if start > 0 and coverage[start - 1] >= 0.5:
            start -= 1
        if end < len(coverage) - 1 and coverage[end + 1] >= 0.5:
            end += 1
    return start, end


def _without_upright_strokes(verticals: list, span: int) -> list:
    """The vertical lines (first, last column) of a row of boxes without a straight upright stroke taken for one: a
    1 touching its box's top and bottom lines splits the box into two parts that, with the stroke, are as wide as
    the row's other boxes (printed boxes are all alike), each narrower than they are; in a row of one box (separate
    boxes), or of boxes all split, as wide as the box is tall. The gap between the close sides of neighbouring boxes
    is no such part."""
    widths = [right_start - left_end - 1 for (_, left_end), (right_start, _) in zip(verticals, verticals[1:])]
    boxes = [width for width in widths if width >= 0.5 * span]
    usual = float(np.median(boxes)) if len(boxes) >= 2 else float(span)
    kept = list(verticals)
    index = 1
    while index < len(kept) - 1:
        (_, before_end), (start, end), (after_start, _) = kept[index - 1 : index + 2]
        parts = (start - before_end - 1, after_start - end - 1)
        whole = after_start - before_end - 1
        if 0.15 * usual <= min(parts) and max(parts) < 0.8 * usual and abs(whole - usual) <= 0.15 * usual:
            del kept[index]
        else:
            index += 1
    return kept


def _run_thickness(runs: np.ndarray) -> float:
    """The median thickness of a horizontal line's long runs of ink (boolean) over the columns it is in."""
    counts = runs.sum(axis=0)
    return float(np.median(counts[counts > 0])) if counts.any() else 0.0


def _line_band(runs: np.ndarray, thickness: float) -> np.ndarray:
    """The straight band a thin horizontal line ``thickness`` pixels thick runs in (boolean, ``runs``' shape), from
    ``runs``: its long horizontal runs of ink, which include any stroke lying along the line. The line's centre in
    each column is fitted by a straight line through the columns' middles (twice: the second time without the
    columns where a stroke thickens it); the band is the line's thickness, a pixel wider each side."""
    height, width = runs.shape
    counts = runs.sum(axis=0)
    columns = np.flatnonzero(counts > 0)
    if columns.size < 2:
        return runs
    rows = np.arange(height)[:, None]
    middles = (runs * rows).sum(axis=0)[columns] / counts[columns]
    usual = counts[columns] <= thickness + 1
    if usual.sum() < 2:
        return runs
    slope, offset = np.polyfit(columns[usual], middles[usual], 1)
    fitted = slope * columns + offset
    close = usual & (np.abs(middles - fitted) <= 1.0)
    if close.sum() >= 2:
        slope, offset = np.polyfit(columns[close], middles[close], 1)
    centre = slope * np.arange(width) + offset
    return np.abs(rows - centre[None, :]) <= thickness / 2 + 1


def remove_lines(mask: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """``mask`` without ``lines`` (both uint8 0/255), strokes that crossed a line joined again across it."""
    import cv2

    remaining = cv2.subtract(mask, lines)
    joined = remaining
    for across in ((1, 9), (9, 1)):
        closed = cv2.morphologyEx(remaining, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, across))
        joined = cv2.bitwise_or(joined, cv2.bitwise_and(closed, lines))
    # A stroke lying along a line (a digit's top touching its box) makes the ink there clearly thicker than
    # the line: those pixels are kept (with the line's own under them; a little extra thickness is harmless),
    # where that runs along the line for ALONG_LINE x its thickness. A stroke that only comes down onto the line
    # (a 6's loop sitting on its box's bottom) would keep a stub of the line under it: a leg the model reads.
    horizontal = cv2.morphologyEx(lines, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (25, 1)))
    thickness = _line_thickness(horizontal, True) if horizontal.any() else 0.0
    if thickness > 0:
        size = int(np.ceil(1.6 * thickness)) + 2
        tall = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, size)))
        sides = cv2.dilate(cv2.subtract(lines, horizontal), np.ones((1, 5), np.uint8))  # not the boxes' sides
        along = cv2.bitwise_and(cv2.subtract(tall, sides), horizontal)
        run = cv2.getStructuringElement(cv2.MORPH_RECT, (int(ALONG_LINE * thickness) + 1, 1))
        joined = cv2.bitwise_or(joined, cv2.morphologyEx(along, cv2.MORPH_OPEN, run))
    return joined
