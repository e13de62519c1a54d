"""tests/ mirrors hub/: a module's tests are in the file named after it, in the matching folder.

hub/store/appointments.py is tested in tests/store/test_appointments.py; a file that would run past ~800 lines
is split by aspect as tests/store/test_appointments_<aspect>.py. A package's __init__.py is tested, when it holds
more than imports, in test_<package>.py inside the package's folder (hub/db/__init__.py: tests/db/test_db.py).
"""

from __future__ import annotations

from pathlib import Path

from hub.settings import ROOT

HUB = ROOT / "hub"
TESTS = ROOT / "tests"
# Modules with no test file of their own, and why. Keep it short: a module worth having is worth a test.
EXEMPT: dict[str, str] = {}


def _modules() -> list[str]:
    return sorted(
        path.relative_to(HUB).as_posix()
        for path in HUB.rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    )


def _test_files(module: str) -> list[Path]:
    path = Path(module)
    folder = TESTS / path.parent
    return sorted([*folder.glob(f"test_{path.stem}.py"), *folder.glob(f"test_{path.stem}_*.py")])


def test_every_module_has_a_test_file_named_after_it() -> None:
    missing = [m for m in _modules() if m not in EXEMPT and not _test_files(m)]
    assert not missing, "modules without tests/<folder>/test_<module>.py: " + ", ".join(missing)


def test_exemptions_are_for_modules_that_exist_and_still_lack_tests() -> None:
    modules = set(_modules())
    assert not [m for m in EXEMPT if m not in modules], "exempted modules that are gone"
    assert not [m for m in EXEMPT if _test_files(m)], "exempted modules that have tests now: take them off"


def test_every_test_folder_is_a_package_like_the_one_it_mirrors() -> None:
    folders = {p.parent.relative_to(HUB) for p in HUB.rglob("*.py")}
    missing = [f.as_posix() for f in sorted(folders) if not (TESTS / f / "__init__.py").exists()]
    assert not missing, "test folders missing for hub packages: " + ", ".join(missing)
