"""Library versions and the code digest recorded with every checkpoint and every result row."""

from __future__ import annotations

import ast
import hashlib
import platform
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

TRACKED = ("medrobust", "torch", "torchvision", "torchattacks", "pyautoattack",
           "adversarial-robustness-toolbox", "medmnist", "numpy")

# The source that decides a number: how data is read, how models are built and trained,
# how attacks run and how cells are scored. The CLI, the store and the reports only move
# numbers around, so editing them keeps the stored rows valid.
RESULT_SOURCES = ("attacks", "evaluation", "models", "defenses", "data", "training", "randomness.py",
                  "batchnorm_settle.py", "device.py")
PACKAGE_ROOT = Path(__file__).resolve().parent
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)  # what may have a docstring


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in TRACKED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    if found["medrobust"] == "not installed":
        from robustbench_med import __version__

        found["medrobust"] = __version__
    found["code"] = code_version()
    return found


def source_digest(root: Path = PACKAGE_ROOT) -> str:
    """sha256 over the path and the code (:func:`code_text`) of every result-deciding ``.py`` file
    under ``root``: a docstring, comment or formatting edit keeps every stored row current."""
    digest = hashlib.sha256()
    for name in RESULT_SOURCES:
        entry = root / name
        files = sorted(entry.rglob("*.py")) if entry.is_dir() else [entry] if entry.is_file() else []
        for path in files:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(code_text(path.read_bytes()) + b"\0")
    return digest.hexdigest()


def code_text(source: bytes) -> bytes:
    """What a file does, without what it says: its syntax tree with the docstrings of the module,
    classes and functions dropped; no comments, positions or formatting. A file that does not
    parse (it cannot run either) is taken byte for byte."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    for node in ast.walk(tree):
        if isinstance(node, DOCUMENTED) and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:]
    return _dump(tree).encode()


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _dump(node: object) -> str:
    """``ast.dump(node, include_attributes=False)``, except that empty fields (None, []) are left
    out, as Python 3.13's dump does: so a field a newer Python adds empty (3.12's ``type_params``)
    does not change the digest of unchanged code."""
    if isinstance(node, ast.AST):
        fields = [f"{name}={_dump(value)}" for name, value in ast.iter_fields(node)
                  if value is not None and not (isinstance(value, list) and not value)]
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return f"[{', '.join(_dump(item) for item in node)}]"
    return repr(node)


@lru_cache(maxsize=1)
def code_version() -> str:
    """Part of every result's key: the package version plus a digest of the source that decides
    results, so a resumed run after a code change recomputes instead of reusing old rows."""
    from robustbench_med import __version__

    return f"{__version__}+{source_digest()[:12]}"
