"""The house rules that keep the code a newcomer can find their way in: data flows one way
(the model and eval never import the world generator, the config never imports XMem's
feature table), no file over 400 lines, no function over 60."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "xmem_traj"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Absolute names of the xmem_traj modules a file imports (relative imports resolved)."""
    package = ["xmem_traj", *path.relative_to(SRC).parent.parts]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("xmem_traj")}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if module.startswith("xmem_traj"):
                names |= {module} | {f"{module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("room", ["traj", "eval"])
def test_model_and_eval_never_import_the_world_generator(room):
    offenders = {
        str(p.relative_to(SRC)): sorted(n for n in _imports(p) if n.startswith("xmem_traj.synth"))
        for p in (SRC / room).rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_config_does_not_import_xmem_features():
    assert not any(n.startswith("xmem_traj.xmem") for n in _imports(SRC / "config.py"))


def test_no_file_over_400_lines():
    long = {
        str(p.relative_to(SRC)): n
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES
    }
    assert not long


def test_no_function_over_60_lines():
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SRC)}:{node.name}"] = n
    assert not long
