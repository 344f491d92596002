"""Every private name of Keras, kagglesdk and the kaggle client that compat.py relies on, checked against the
installed versions: a version bump that removes or renames one fails here, loudly, naming it."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from digit_recognizer import compat
from fake_kaggle import write_kaggle_json


def test_compat_error_names_the_missing_attribute():
    with pytest.raises(compat.CompatError, match="somewhere has no _gone: this version is not supported"):
        compat._require(object(), ("__class__", "_gone"), "somewhere")


# ---------------------------------------------------------------- Keras
def test_backup_and_restore_has_the_attributes_the_atomic_backup_overrides(tmp_path):
    import keras

    callback = compat.atomic_backup_callback(tmp_path / "backup")
    assert isinstance(callback, keras.callbacks.BackupAndRestore)
    for name in compat.BACKUP_ATTRIBUTES:
        assert hasattr(keras.callbacks.BackupAndRestore(str(tmp_path / "plain")), name), (
            f"BackupAndRestore.{name} is gone"
        )
    assert callback._weights_path.endswith(compat.BACKUP_WEIGHTS)
    assert callback._training_metadata_path.endswith(compat.BACKUP_METADATA)
    assert callable(keras.callbacks.BackupAndRestore._save_model)


def test_backup_is_written_atomically_through_the_overridden_save(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    callback = compat.atomic_backup_callback(tmp_path / "backup")
    callback.set_model(model)
    callback._current_epoch, callback._last_batch_seen = 3, 7
    callback._save_model()
    files = sorted(path.name for path in (tmp_path / "backup").iterdir())
    assert files == sorted([compat.BACKUP_METADATA, compat.BACKUP_WEIGHTS]), "no temporary file left"
    assert '"epoch": 3' in (tmp_path / "backup" / compat.BACKUP_METADATA).read_text()


def test_restore_early_stopping_sets_the_state_keras_keeps():
    import keras

    callback = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=3, restore_best_weights=True)
    callback.on_train_begin()
    for name in compat.EARLY_STOPPING_ATTRIBUTES:
        assert hasattr(callback, name), f"EarlyStopping.{name} is gone"
    compat.restore_early_stopping(callback, 0.9, 4, 2, [1, 2])
    assert (callback.best, callback.best_epoch, callback.wait, callback.best_weights) == (0.9, 4, 2, [1, 2])
    assert compat.early_stopping_best_epoch(callback) == 4


# ---------------------------------------------------------------- kagglesdk and the kaggle client
def test_point_kagglesdk_at_changes_the_local_endpoint(monkeypatch):
    from kagglesdk import kaggle_env

    assert hasattr(kaggle_env, "_env_to_endpoint") and hasattr(kaggle_env.KaggleEnv, "LOCAL")
    monkeypatch.setitem(
        kaggle_env._env_to_endpoint, kaggle_env.KaggleEnv.LOCAL, kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL]
    )
    compat.point_kagglesdk_at("http://127.0.0.1:9")
    assert kaggle_env.get_endpoint(kaggle_env.KaggleEnv.LOCAL) == "http://127.0.0.1:9"


@pytest.fixture
def silent_server():
    """A loopback socket that accepts connections and never answers (stopped after the test)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    for connection in accepted:
        connection.close()
    server.close()


def test_bound_client_session_times_out_every_request(silent_server):
    import requests
    from kagglesdk import KaggleClient, KaggleEnv

    client = KaggleClient(env=KaggleEnv.LOCAL, username="someone", password="not-a-real-key")
    http = client.http_client()
    assert hasattr(http, "_init_session"), "the kaggle client's http_client()._init_session is gone"
    compat.bound_client_session(client, 0.3, trust_env=False)
    assert http._session.trust_env is False
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        http._session.send(requests.Request("GET", silent_server).prepare())
    assert time.monotonic() - started < 5


def test_checked_client_downloads_raise_instead_of_saving_an_error_page(
    fake_kaggle, kaggle_home, monkeypatch, silent_server
):
    import requests

    from digit_recognizer.kaggle import api as kaggle_api

    write_kaggle_json(kaggle_home)
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    kaggle_api._import_client()
    from kaggle.api import kaggle_api_extended

    fake_kaggle.kernel_files = {"submission.csv": b"ImageId,Label\n"}
    with compat.checked_client_downloads(0.3):
        assert (
            kaggle_api_extended.requests.get(f"{fake_kaggle.url}/kernel-output/submission.csv").content
            == b"ImageId,Label\n"
        )
        with pytest.raises(requests.HTTPError):
            kaggle_api_extended.requests.get(f"{fake_kaggle.url}/kernel-output/missing")
        with pytest.raises(requests.Timeout):
            kaggle_api_extended.requests.get(silent_server)
        assert kaggle_api_extended.requests.codes.ok == 200, "everything else is the requests module"
    assert kaggle_api_extended.requests is requests
