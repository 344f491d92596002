"""``digit-recognizer app``: a local Gradio page where people draw or drop their own digits.

- :mod:`.reading`  what the page shows, without Gradio: images in, readings, boxes drawn, crops, top-3 tables
- :mod:`.page`     the Gradio Blocks (:func:`~.page.build_app`) and the server (:func:`~.page.start`)

Nothing heavy is imported here: Gradio and TensorFlow load only when the command runs.
"""

DEFAULT_HOST = "127.0.0.1"  # this computer only; never a public share link
DEFAULT_PORT = 7860


def check_address(host: str, port: int) -> None:
    """Raise :class:`~digit_recognizer.errors.UserError` unless ``host:port`` can be listened on now (a port in use,
    an address not of this computer), so the command says so at once rather than after loading the model."""
    import errno
    import socket

    from digit_recognizer.errors import UserError

    if not 1 <= port <= 65535:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UserError(f"--host {host}: unknown address ({error})") from None
    family, kind, protocol, _, address = infos[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            reason = (
                "the port is in use (another app running? choose one with --port)"
                if error.errno == errno.EADDRINUSE
                else error.strerror
            )
            raise UserError(f"cannot serve on {host}:{port}: {reason}") from None
