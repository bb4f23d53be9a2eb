"""The floor plan, checked over the import graph: no import runs upward or sideways.

Every `import` and `from ... import` in the product's source counts, including those
inside functions (the lazy imports that keep `bwv --help` fast are still dependencies).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bwv", "ingest", "compliance", "redact")

# Which first-party layers each layer may import (itself always allowed).
ALLOWED: dict[str, set[str]] = {
    "bwv.core": set(),
    "ingest": {"bwv.core"},
    "compliance": {"bwv.core"},
    "bwv.custody": {"bwv.core"},
    "redact": {"bwv.core", "ingest"},  # media work for redacted copies, above ingest
    "bwv.services": {"bwv.core", "bwv.custody", "ingest", "compliance", "redact"},
    "bwv.cli": {
        "bwv.core",
        "bwv.custody",
        "bwv.services",
        "ingest",
        "compliance",
        "bwv.web",
        "redact",
    },
    "bwv.web": {"bwv.core", "bwv.services", "bwv.custody", "ingest", "compliance", "redact"},
    "bwv": {"bwv.core"},  # bwv/__init__.py: the version only
}


def layer(module: str) -> str | None:
    for name in sorted(ALLOWED, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def sources() -> list[Path]:
    return [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]


def violations() -> list[str]:
    problems = []
    for path in sources():
        own = layer(module_name(path))
        assert own is not None, f"{path} belongs to no layer of the floor plan"
        for line, target in imports(path):
            other = layer(target) if target.split(".")[0] in PACKAGES else None
            if other is not None and other != own and other not in ALLOWED[own]:
                problems.append(f"{path.relative_to(ROOT)}:{line}: {own} imports {target}")
    return problems


def test_no_import_runs_upward_or_between_domains() -> None:
    assert violations() == []


def test_only_the_cli_imports_click() -> None:
    users = {
        str(path.relative_to(ROOT))
        for path in sources()
        for _line, target in imports(path)
        if target.split(".")[0] == "click" and layer(module_name(path)) != "bwv.cli"
    }
    assert users == set()


def test_voice_training_is_never_imported_by_the_ingest_pipeline() -> None:
    runtime = [p for p in (ROOT / "ingest").rglob("*.py") if "training" not in p.parts]
    users = [
        str(p.relative_to(ROOT))
        for p in runtime
        for _line, target in imports(p)
        if target.startswith("ingest.voice.training")
    ]
    assert users == []


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("ingest.worker", "compliance.linking", False),
        ("compliance.demo", "ingest.worker", False),
        ("bwv.core.db", "bwv.cli.common", False),
        ("bwv.custody.files", "compliance.report", False),
        ("bwv.services.demo", "ingest.worker", True),
    ],
)
def test_the_rule_itself_tells_upward_from_downward(
    source: str, target: str, allowed: bool
) -> None:
    own, other = layer(source), layer(target)
    assert own is not None and other is not None
    assert (other == own or other in ALLOWED[own]) is allowed


def test_only_the_cli_imports_the_web_shell() -> None:
    users = {
        str(path.relative_to(ROOT))
        for path in sources()
        for _line, target in imports(path)
        if layer(target) == "bwv.web" and layer(module_name(path)) not in ("bwv.web", "bwv.cli")
    }
    assert users == set()
