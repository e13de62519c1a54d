"""Imports run downward only: web -> jobs / notify -> store -> rules -> vocabulary; db, clock and settings are the
ground. The build fails when a module imports from a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hub.settings import ROOT

# What each layer may import, besides itself. The ground is hub.db, hub.clock, hub.settings and the small
# top-level helpers (links, ics, pdf); rules may lean on the clock's pure helpers but on no other ground.
VOCABULARY = "vocabulary"
GROUND = "ground"
ALLOWED: dict[str, set[str]] = {
    VOCABULARY: set(),
    GROUND: {VOCABULARY, GROUND},
    "rules": {VOCABULARY, "clock", "rules"},
    "store": {VOCABULARY, GROUND, "rules", "store"},
    "notify": {VOCABULARY, GROUND, "rules", "store", "notify"},
    "jobs": {VOCABULARY, GROUND, "rules", "store", "notify", "jobs"},
    "web": {VOCABULARY, GROUND, "rules", "store", "notify", "jobs", "web"},
    "top": {VOCABULARY, GROUND, "rules", "store", "notify", "jobs", "web", "top"},
}
_GROUND = {"hub.db", "hub.clock", "hub.settings", "hub.links", "hub.ics", "hub.pdf"}
# The console, the patient pages and the API share hub.web's common parts, never each other's.
_WEB_SLICES = ("hub.web.patient", "hub.web.staff", "hub.web.api", "hub.web.fhir")


def layer(module: str) -> str:
    if module == "hub.vocabulary":
        return VOCABULARY
    if module in ("hub", "hub.app", "hub.__main__", "hub.serve"):
        return "top"
    if any(module == g or module.startswith(g + ".") for g in _GROUND):
        return GROUND
    return module.split(".")[1]


def _kind_of_target(module: str) -> set[str]:
    """The layer names a target satisfies: the clock is ground, and also the one piece of ground rules may use."""
    kind = {layer(module)}
    if module == "hub.clock":
        kind.add("clock")
    return kind


def imported(source: str) -> list[str]:
    """Every hub module a source imports, TYPE_CHECKING imports and imports inside functions included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "hub"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hub":
            found.append(node.module)
    return found


def violations(module: str, source: str) -> list[str]:
    own = layer(module)
    wrong = []
    for target in imported(source):
        if not _kind_of_target(target) & ALLOWED[own]:
            wrong.append(f"{module} ({own}) imports {target} ({layer(target)})")
        slices = [s for s in _WEB_SLICES if module.startswith(s + ".")]
        if slices and any(target.startswith(s + ".") or target == s for s in _WEB_SLICES if s != slices[0]):
            wrong.append(f"{module} imports {target}: the web's slices share hub.web's common parts only")
    return wrong


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted((ROOT / "hub").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def test_every_import_in_hub_runs_downward() -> None:
    wrong = [v for name, path in _modules() for v in violations(name, path.read_text(encoding="utf-8"))]
    assert wrong == []


def test_the_top_level_holds_only_the_wiring_and_ground_modules() -> None:
    top = sorted(p.name for p in (ROOT / "hub").iterdir() if p.suffix == ".py")
    expected = ["__init__.py", "__main__.py", "app.py", "clock.py", "ics.py", "links.py", "pdf.py", "serve.py"]
    expected.append("settings.py")
    assert top == sorted([*expected, "vocabulary.py"])


def test_every_package_says_what_belongs_in_it() -> None:
    for init in sorted((ROOT / "hub").rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.relative_to(ROOT)} has no docstring saying what belongs there"


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("hub.store.appointments", "from hub.web.common import Hub\n"),  # store -> web
        ("hub.rules.appointments", "from hub.store.tasks import create_task\n"),  # rules -> store
        ("hub.rules.codes", "from hub.settings import Settings\n"),  # rules -> settings
        ("hub.store.outbox", "import hub.notify.sender\n"),  # store -> notify
        ("hub.notify.sender", "from hub.jobs.worker import work\n"),  # notify -> jobs
        ("hub.vocabulary", "from hub.clock import LONDON\n"),  # vocabulary -> anything
        ("hub.db.sqlite", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hub.store.audit import x\n"),
        ("hub.web.staff.queue", "from hub.web.patient.signin import start\n"),  # one web slice -> another
        ("hub.jobs.worker", "def f():\n    from hub.app import create_app\n"),  # jobs -> the wiring above it
    ],
)
def test_an_upward_import_is_caught(module: str, source: str) -> None:
    assert violations(module, source) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("hub.rules.tasks", "from hub.clock import LONDON\nfrom hub.vocabulary import TaskKind\n"),
        ("hub.store.tasks", "from hub.rules.tasks import QueuePolicy\nfrom hub.db import Transaction\n"),
        ("hub.jobs.worker", "from hub.notify.sender import drain_once\n"),
        ("hub.web.staff.queue", "from hub.web.common import render\nfrom hub.web.staff.common import see_other\n"),
        ("hub.app", "from hub.web.patient import signin\n"),
    ],
)
def test_a_downward_import_is_allowed(module: str, source: str) -> None:
    assert violations(module, source) == []
