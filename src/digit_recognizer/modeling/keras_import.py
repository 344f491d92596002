"""Import Keras without TensorFlow's start-up notices on stderr.

Shared by every stage that loads or builds models (train, predict), so that a
failing command's stderr stays its one ``error:`` line.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# What TensorFlow's C++ code prints to stderr while it is imported, whatever TF_CPP_MIN_LOG_LEVEL says
# (absl logging is not initialised yet); dropped so that a failing command's stderr is its one `error:` line.
_IMPORT_NOTICES = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:. ]+\d+ (port|cpu_feature_guard)\.cc:\d+\] .*"
    r"|To enable the following instructions: .*"
)


def import_keras_quietly() -> None:
    """Import Keras (and TensorFlow) with their start-up notices removed from stderr; other output is kept."""
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import keras  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [
                line
                for line in capture.read().decode("utf-8", "replace").splitlines()
                if line.strip() and not _IMPORT_NOTICES.fullmatch(line)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
