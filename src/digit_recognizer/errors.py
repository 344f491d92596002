"""The one exception type for problems a user can cause and fix."""


class UserError(Exception):
    """A bad file, bad argument, missing credential or refusal from Kaggle.

    The command line prints ``error: <message>`` on one line and exits non-zero,
    without a traceback. The message names the file/row/column or the fix.
    """

    exit_code = 2
