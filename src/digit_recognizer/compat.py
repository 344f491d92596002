"""Every use of a pinned library's private internals, in one guarded place.

Keras, kagglesdk and the kaggle client are pinned in requirements.txt; the project relies on a few of their
private names. Each is reached only through this module, which checks the names exist and fails with one clear
line (:class:`CompatError`) naming the library and the attribute when a new version removes one.
``tests/test_compat.py`` checks each of them against the installed versions, so a version bump fails there
first, loudly, instead of somewhere in a training run.

- Keras ``BackupAndRestore``: ``_save_model``, ``_weights_path``, ``_training_metadata_path``,
  ``_current_epoch``, ``_last_batch_seen`` (its backup is written atomically here).
- Keras ``EarlyStopping``: ``best``, ``best_epoch``, ``wait``, ``best_weights`` (state restored after a resume).
- kagglesdk ``kaggle_env._env_to_endpoint`` (the API's address, pointed at a loopback stand-in in tests).
- kaggle client ``http_client()._init_session`` and ``._session`` (a timeout on every request, no proxy to loopback).
- kaggle client module ``kaggle.api.kaggle_api_extended.requests`` (``kernels_output`` downloads each file with a bare
  ``requests.get``: no timeout, and an HTTP error page saved as the file; bounded and checked here).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

BACKUP_ATTRIBUTES = ("_save_model", "_weights_path", "_training_metadata_path", "_current_epoch", "_last_batch_seen")
EARLY_STOPPING_ATTRIBUTES = ("best", "best_epoch", "wait", "best_weights")
BACKUP_WEIGHTS = "latest.weights.h5"  # the file names keras.callbacks.BackupAndRestore uses
BACKUP_METADATA = "training_metadata.json"


class CompatError(RuntimeError):
    """A pinned library no longer has a private name this project relies on (a version change)."""


def _require(owner, names, where: str) -> None:
    missing = [name for name in names if not hasattr(owner, name)]
    if missing:
        raise CompatError(
            f"{where} has no {', '.join(missing)}: this version is not supported; "
            "install the versions in requirements.txt"
        )


# ---------------------------------------------------------------- Keras
def atomic_backup_callback(backup_dir: Path):
    """``keras.callbacks.BackupAndRestore`` whose two files are each written to a temporary name and renamed,
    so a kill during a save leaves the previous epoch's backup intact (Keras writes them in place)."""
    import keras

    from digit_recognizer.atomic import atomic_path, write_json

    class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
        def _save_model(self):
            Path(self.backup_dir).mkdir(parents=True, exist_ok=True)
            with atomic_path(Path(self._weights_path), suffix=".weights.h5") as tmp:
                self.model.save_weights(filepath=str(tmp), overwrite=True)
            write_json(
                Path(self._training_metadata_path), {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            )

    callback = AtomicBackupAndRestore(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
    _require(callback, BACKUP_ATTRIBUTES, "keras.callbacks.BackupAndRestore")
    if (
        Path(callback._weights_path).name != BACKUP_WEIGHTS
        or Path(callback._training_metadata_path).name != BACKUP_METADATA
    ):
        raise CompatError("keras.callbacks.BackupAndRestore names its files differently: this version is not supported")
    return callback


def restore_early_stopping(callback, best: float, best_epoch: int, wait: int, best_weights) -> None:
    """Put a ``keras.callbacks.EarlyStopping`` back in the state it had after ``best_epoch`` and ``wait`` more epochs."""
    _require(callback, EARLY_STOPPING_ATTRIBUTES, "keras.callbacks.EarlyStopping")
    callback.best, callback.best_epoch, callback.wait, callback.best_weights = best, best_epoch, wait, best_weights


def early_stopping_best_epoch(callback) -> int:
    _require(callback, ("best_epoch",), "keras.callbacks.EarlyStopping")
    return callback.best_epoch


# ---------------------------------------------------------------- kagglesdk and the kaggle client
def point_kagglesdk_at(endpoint: str) -> None:
    """Make kagglesdk's LOCAL environment (``KAGGLE_API_ENVIRONMENT=LOCALHOST``) talk to ``endpoint``."""
    from kagglesdk import kaggle_env

    _require(kaggle_env, ("_env_to_endpoint", "KaggleEnv"), "kagglesdk.kaggle_env")
    _require(kaggle_env.KaggleEnv, ("LOCAL",), "kagglesdk.kaggle_env.KaggleEnv")
    kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL] = endpoint


def bound_client_session(kaggle_client, timeout: float, trust_env: bool = True) -> None:
    """Give every request of the client's HTTP session a ``timeout`` (the client sets none), and with
    ``trust_env=False`` ignore proxy variables (no proxy between the client and a loopback stand-in)."""
    http = kaggle_client.http_client()
    _require(http, ("_init_session",), "the kaggle client's http_client()")
    http._init_session()
    _require(http, ("_session",), "the kaggle client's http_client()")
    send = http._session.send
    http._session.send = lambda request, **kwargs: send(request, **{"timeout": timeout, **kwargs})
    if not trust_env:
        http._session.trust_env = False


@contextlib.contextmanager
def checked_client_downloads(timeout: float):
    """While the block runs, the client's file downloads (``requests.get`` in ``kaggle_api_extended``, used by
    ``kernels_output``) get a ``timeout`` and raise ``requests.HTTPError`` on an error status instead of saving
    the error page as the file."""
    from kaggle.api import kaggle_api_extended

    _require(kaggle_api_extended, ("requests",), "kaggle.api.kaggle_api_extended")
    real = kaggle_api_extended.requests
    _require(real, ("get",), "kaggle.api.kaggle_api_extended.requests")

    class CheckedRequests:
        """The requests module, but ``get`` is bounded and checked."""

        def __getattr__(self, name):
            return getattr(real, name)

        @staticmethod
        def get(url, **kwargs):
            response = real.get(url, **{"timeout": timeout, **kwargs})
            response.raise_for_status()
            return response

    kaggle_api_extended.requests = CheckedRequests()
    try:
        yield
    finally:
        kaggle_api_extended.requests = real
