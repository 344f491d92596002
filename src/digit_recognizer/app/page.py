"""The Gradio page: draw or drop digits, see what the model sees; and the ``/read`` API endpoint.

:func:`build_app` makes the Blocks; :func:`start` serves them on 127.0.0.1 (unless told otherwise) without a
share link, analytics or version checks, and returns the URL. Importing this module imports Gradio, so only
the ``app`` command and its tests do.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from digit_recognizer.app import DEFAULT_HOST, DEFAULT_PORT, reading
from digit_recognizer.photos.pipeline import DEFAULT_MIN_CONFIDENCE

TITLE = "digit-recognizer: draw or drop digits"
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: the page works offline
MONO_FONTS = ["ui-monospace", "monospace"]
CANVAS_SIZE = (480, 320)
BRUSH_SIZE = 14
DRAWING, PHOTOS = "drawing", "photos"  # which input was read last
MAX_FILE_SIZE = "100mb"  # an upload larger than this is refused by the server (a phone photo is a few MB)


def theme():
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def build_app(
    paths,
    experiment: str | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    cache: reading.ModelCache | None = None,
) -> gr.Blocks:
    """The page for the project at ``paths``; reads with ``experiment`` (default: the best on the leaderboard)."""
    from digit_recognizer.photos.pipeline import check_min_confidence, choose_experiment

    check_min_confidence(min_confidence)
    chosen, why = choose_experiment(paths, experiment)
    choices = reading.experiment_choices(paths)
    if chosen not in choices:
        choices.insert(0, chosen)
    cache = cache or reading.ModelCache(paths)

    def read_drawing(value, experiment_name, confidence):
        result = reading.read_input(
            reading.DRAWING_NAME, lambda: reading.sketch_to_gray(value), cache, experiment_name, confidence
        )
        return (*page_outputs([result], confidence, named=False), DRAWING)

    def read_dropped(files, experiment_name, confidence):
        results = reading.read_photos(files, cache, experiment_name, confidence)
        if not results:
            return "-", [], [], [], "- drop one or more photos first", PHOTOS
        return (*page_outputs(results, confidence, named=True), PHOTOS)

    def read_again(last, value, files, experiment_name, confidence):
        """The last input read again (another experiment or minimum confidence chosen); nothing before a first read."""
        if last == DRAWING:
            return read_drawing(value, experiment_name, confidence)
        if last == PHOTOS:
            return read_dropped(files, experiment_name, confidence)
        return (gr.skip(),) * 6

    def read_api(image, confidence, experiment_name):
        """An image file in; the number read (text, '?' for doubtful digits), the digits with their top-3
        probabilities and boxes (a JSON list), and why nothing was read ('' when a number was)."""
        confidence = DEFAULT_MIN_CONFIDENCE if confidence is None else float(confidence)
        if not 0.0 <= confidence <= 1.0:
            return "", [], f"min_confidence must be between 0 and 1, got {confidence}"
        if not image:
            return "", [], "no image given"
        result = reading.read_input(
            Path(image).name, lambda: reading.load_photo(image), cache, experiment_name or chosen, confidence
        )
        return result.number, reading.digits_list(result.reading), result.message

    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        gr.Markdown(
            f"## {TITLE}\nDraw a digit or a number, or drop photos of handwritten digits: each is cut into "
            "MNIST-style 28x28 digits (shown below exactly as the model sees them) and read left to right."
        )
        with gr.Row():
            picker = gr.Dropdown(
                choices=choices,
                value=chosen,
                label="Experiment",
                info=f"default: {chosen} ({why})",
                elem_id="experiment",
                scale=2,
            )
            slider = gr.Slider(
                0.0,
                1.0,
                value=min_confidence,
                step=0.05,
                label="Minimum confidence",
                info="a digit whose top probability is under this is shown as ?",
                elem_id="min-confidence",
                scale=2,
            )
        link = gr.Markdown(reading.report_link(paths, chosen), elem_id="report-link")
        with gr.Row():
            with gr.Column():
                with gr.Tab("Draw"):
                    sketch = gr.Sketchpad(
                        label="Draw here",
                        type="numpy",
                        image_mode="RGBA",
                        canvas_size=CANVAS_SIZE,
                        brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=BRUSH_SIZE),
                        value=blank_canvas(),
                        layers=False,
                        transforms=(),
                        elem_id="sketchpad",
                    )
                    draw_button = gr.Button("Read the drawing", variant="primary", elem_id="read-drawing")
                with gr.Tab("Drop photos"):
                    files = gr.File(
                        file_count="multiple",
                        type="filepath",
                        label="Photos (png, jpg, webp, ...; several at once)",
                        elem_id="photos",
                    )
                    photos_button = gr.Button("Read the photos", variant="primary", elem_id="read-photos")
            with gr.Column():
                result = gr.Textbox(label="Read", lines=1, max_lines=12, interactive=False, elem_id="result")
                messages = gr.Markdown(label="Messages", elem_id="messages")
                shown = gr.Gallery(
                    label="What was found (boxes)",
                    columns=2,
                    height="auto",
                    object_fit="contain",
                    format="png",
                    elem_id="boxes",
                )
        crops = gr.Gallery(
            label="Each digit as the model saw it (28x28, white on black)",
            columns=10,
            height=190,
            allow_preview=False,
            fit_columns=False,
            object_fit="contain",
            format="png",
            elem_id="crops",
        )
        table = gr.Dataframe(
            headers=reading.TABLE_HEADERS, label="Top-3 probabilities per digit", interactive=False, elem_id="top3"
        )
        with gr.Row(visible=False):
            api_image = gr.File(
                type="filepath", label="image"
            )  # decoded by us: EXIF, pixel limit, a message for bad files
            api_confidence = gr.Number(value=min_confidence, label="min_confidence")
            api_experiment = gr.Textbox(value=chosen, label="experiment")
            api_number = gr.Textbox(label="number")
            api_digits = gr.JSON(label="digits")
            api_message = gr.Textbox(label="message")

        last = gr.State("")
        outputs = [result, shown, crops, table, messages, last]
        draw_button.click(read_drawing, [sketch, picker, slider], outputs, api_name="read_drawing")
        photos_button.click(read_dropped, [files, picker, slider], outputs, api_name="read_photos")
        files.upload(read_dropped, [files, picker, slider], outputs, api_visibility="private")
        picker.change(lambda name: reading.report_link(paths, name), picker, link, api_visibility="private")
        picker.change(read_again, [last, sketch, files, picker, slider], outputs, api_visibility="private")
        slider.release(read_again, [last, sketch, files, picker, slider], outputs, api_visibility="private")
        api_image.change(
            read_api,
            [api_image, api_confidence, api_experiment],
            [api_number, api_digits, api_message],
            api_name="read",
        )
    return blocks


def blank_canvas() -> dict:
    """White paper to draw on (with a background the draw tool is selected from the start)."""
    import numpy as np

    width, height = CANVAS_SIZE
    return {"background": np.full((height, width, 4), 255, np.uint8), "layers": [], "composite": None}


def page_outputs(results: list, min_confidence: float, named: bool) -> tuple:
    """(result text, images with boxes, crops, top-3 rows, messages) for the page."""
    return (
        reading.result_text(results, named),
        reading.shown_images(results),
        reading.crop_tiles(results, named),
        reading.top_rows(results),
        reading.messages_text(results, min_confidence),
    )


def start(
    paths,
    experiment: str | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> tuple[gr.Blocks, str]:
    """Load the experiment's models, serve the page on ``host:port`` (no share link) and return (blocks, URL)."""
    from digit_recognizer.photos.pipeline import choose_experiment

    if not 1 <= port <= 65535:
        raise ValueError(f"port must be in 1..65535, got {port}")
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # no telemetry, no version check: nothing waits on the network
    chosen, _ = choose_experiment(paths, experiment)
    cache = reading.ModelCache(paths)
    cache.models(chosen)  # a missing or damaged model is reported now, not on the first drawing
    blocks = build_app(paths, experiment, min_confidence, cache)
    blocks.queue(default_concurrency_limit=1)
    _, url, _ = blocks.launch(
        server_name=host,
        server_port=port,
        share=False,
        quiet=True,
        prevent_thread_lock=True,
        inbrowser=False,
        allowed_paths=[str(paths.reports.resolve())],
        ssr_mode=False,
        mcp_server=False,
        theme=theme(),
        show_error=True,
        max_file_size=MAX_FILE_SIZE,
    )
    return blocks, url
