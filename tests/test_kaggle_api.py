"""kaggle_api without the network: where credentials are found, the loopback-only endpoint, scrubbing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from digit_recognizer.errors import UserError
from digit_recognizer.kaggle import api as kaggle_api
from fake_kaggle import ENDPOINT_ENV, SECRET_KEY, SECRET_TOKEN, write_kaggle_json


def _kaggle_json_in_home(home, monkeypatch):
    write_kaggle_json(home)


def _kaggle_json_in_config_dir(home, monkeypatch):
    write_kaggle_json(home / "elsewhere")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / "elsewhere" / ".kaggle"))


def _kaggle_json_in_xdg_dir(home, monkeypatch):
    folder = home / ".config" / "kaggle"
    folder.mkdir(parents=True)
    (folder / "kaggle.json").write_text(f'{{"username": "fakeuser", "key": "{SECRET_KEY}"}}')


def _username_and_key(home, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "fakeuser")
    monkeypatch.setenv("KAGGLE_KEY", SECRET_KEY)


def _api_token(home, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET_TOKEN)


def _access_token_file(home, monkeypatch):
    (home / ".kaggle").mkdir()
    (home / ".kaggle" / "access_token").write_text(SECRET_TOKEN + "\n")


@pytest.mark.parametrize(
    "setup",
    [
        _kaggle_json_in_home,
        _kaggle_json_in_config_dir,
        _kaggle_json_in_xdg_dir,
        _username_and_key,
        _api_token,
        _access_token_file,
    ],
)
def test_has_credentials_uses_the_clients_mechanisms(kaggle_home, monkeypatch, setup):
    assert not kaggle_api.has_credentials()
    setup(kaggle_home, monkeypatch)
    assert kaggle_api.has_credentials()
    assert "***" in kaggle_api.scrub(f"key {SECRET_KEY} token {SECRET_TOKEN}")


def test_half_a_credential_is_not_enough(kaggle_home, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "fakeuser")
    assert not kaggle_api.has_credentials()
    monkeypatch.setenv("KAGGLE_KEY", SECRET_KEY)
    assert kaggle_api.has_credentials() and kaggle_api.username() == "fakeuser"


def test_scrub_removes_every_credential(kaggle_home, monkeypatch):
    write_kaggle_json(kaggle_home)
    monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET_TOKEN)
    text = kaggle_api.scrub(f"401 for fakeuser:{SECRET_KEY} with Bearer {SECRET_TOKEN}")
    assert SECRET_KEY not in text and SECRET_TOKEN not in text and "fakeuser" in text


def test_readable_kaggle_json_is_warned_about(kaggle_home):
    path = write_kaggle_json(kaggle_home, mode=0o644)
    assert kaggle_api.credential_file_warnings() == [f"{path} is readable by other users; run `chmod 600 {path}`"]
    path.chmod(0o600)
    assert kaggle_api.credential_file_warnings() == []


@pytest.mark.parametrize(
    "value, expected",
    [
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://localhost:8765/", "http://localhost:8765"),
        ("http://127.3.2.1:9", "http://127.3.2.1:9"),
        ("http://[::1]:8765", "http://[::1]:8765"),
    ],
)
def test_endpoint_override_accepts_loopback(kaggle_home, monkeypatch, value, expected):
    monkeypatch.setenv(ENDPOINT_ENV, value)
    assert kaggle_api.endpoint_override() == expected


@pytest.mark.parametrize(
    "value",
    [
        "http://10.0.0.5:80",
        "http://192.168.1.2:8080",
        "http://api.kaggle.com:80",
        "https://127.0.0.1:8765",
        "http://127.0.0.1",
        "http://127.0.0.1:8765/api",
        "ftp://127.0.0.1:21",
    ],
)
def test_endpoint_override_refuses_anything_but_loopback_http(kaggle_home, monkeypatch, value):
    monkeypatch.setenv(ENDPOINT_ENV, value)
    with pytest.raises(UserError, match="loopback"):
        kaggle_api.endpoint_override()


def test_no_override_means_kaggle_itself(kaggle_home):
    assert kaggle_api.endpoint_override() is None


def test_help_imports_neither_the_client_nor_tensorflow():
    code = (
        "import sys; from digit_recognizer.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('kaggle', 'kagglesdk', 'tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
