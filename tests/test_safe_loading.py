"""Safe loading: nothing in the package unpickles data, and models load in Keras' safe mode."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import digit_recognizer

SOURCE = Path(digit_recognizer.__file__).parent
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _sources():
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 5
    return [(path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))) for path in files]


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else "<not a constant>"
    return None


def test_no_pickle_modules_imported():
    # no import of pickle or its relatives anywhere in src/
    found = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [
                    f"{path.name}: import {alias.name}"
                    for alias in node.names
                    if alias.name.split(".")[0] in UNSAFE_MODULES
                ]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
                found.append(f"{path.name}: from {node.module} import ...")
    assert found == []


def test_every_unsafe_capable_call_is_made_safe():
    # np.load always says allow_pickle=False; pandas' read_pickle, eval and exec are never called;
    # every Keras load_model call says safe_mode=True
    problems, load_model_calls = [], 0
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            where = f"{path.name}:{node.lineno} {name}"
            if name in ("np.load", "numpy.load") and _keyword(node, "allow_pickle") is not False:
                problems.append(where + " without allow_pickle=False")
            if name.endswith("read_pickle") or name.endswith("to_pickle") or name in ("eval", "exec"):
                problems.append(where)
            if name.endswith("load_model"):
                load_model_calls += 1
                if _keyword(node, "safe_mode") is not True:
                    problems.append(where + " without safe_mode=True")
            if _keyword(node, "allow_pickle") is True or _keyword(node, "safe_mode") is False:
                problems.append(where + " turns a safety off")
    assert problems == []
    assert load_model_calls >= 1  # the check above has something to check


def test_lambda_model_is_refused(tmp_path):
    # a .keras file carrying Python code (a Lambda layer) is refused by the loader, as one user error
    keras = pytest.importorskip("keras")
    from digit_recognizer.errors import UserError
    from digit_recognizer.modeling.inference import load_model_file

    inputs = keras.Input(shape=(4,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    path = tmp_path / "member-0.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(
        UserError,
        match=r"member-0.keras: not a loadable Keras model \(it carries Python code, which safe mode does not run\)",
    ) as caught:
        load_model_file(path)
    assert "\n" not in str(caught.value)
    # the same file does load when safety is explicitly off: the refusal is safe mode's, not damage
    assert keras.saving.load_model(path, safe_mode=False, compile=False) is not None
