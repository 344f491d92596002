"""``digit-recognizer app``: a local Gradio page where people draw or drop their own digits.

- :mod:`.reading`  what the page shows, without Gradio: images in, readings, boxes drawn, crops, top-3 tables
- :mod:`.page`     the Gradio Blocks (:func:`~.page.build_app`) and the server (:func:`~.page.start`)

Nothing heavy is imported here: Gradio and TensorFlow load only when the command runs.
"""

DEFAULT_HOST = "127.0.0.1"  # this computer only; never a public share link
DEFAULT_PORT = 7860
