"""The one exception type for problems a user can cause and fix, and the bound on what a message quotes."""

from __future__ import annotations

QUOTE_LIMIT = 60  # characters of a user's value (a cell, a name, a line) that a message quotes


class UserError(Exception):
    """A bad file, bad argument, missing credential or refusal from Kaggle.

    The command line prints ``error: <message>`` on one line and exits non-zero,
    without a traceback. The message names the file/row/column or the fix.
    """

    exit_code = 2


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks a cut); control characters escaped."""
    text = str(text)
    if len(text) > 4 * limit:  # never escape a huge value whole
        text = text[: 4 * limit]
    text = text.encode("unicode_escape", "backslashreplace").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(value, limit: int = QUOTE_LIMIT) -> str:
    """A user's value (or an exception's first line) quoted for a one-line message, bounded to ``limit`` characters."""
    if isinstance(value, BaseException):
        text = str(value).strip()
        return shorten(text.splitlines()[0] if text else type(value).__name__, 2 * limit)
    return f"'{shorten(value, limit)}'"
