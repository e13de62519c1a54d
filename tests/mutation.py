"""`make mutation`'s report: the kill rate of mutmut's last run over hub/rules/, as JSON on stdout.

Killed (or timed out) out of every mutant, tests or not. Survivors named in docs/mutation.md's "Equivalent mutants"
section are equivalent (no test can tell them from the code); the rest are listed to be killed (or to be explained
there). Exits 1 below the floor.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

from hub.settings import ROOT

FLOOR = 0.90
DOC = ROOT / "docs" / "mutation.md"
_RESULT = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")
_NAMED = re.compile(r"`(hub\.rules\.\S+__mutmut_\d+)`")


def results() -> dict[str, str]:
    """Each mutant's name and mutmut's verdict ("killed", "survived", "no tests", "timeout", ...)."""
    command = [sys.executable, "-m", "mutmut", "results", "--all", "true"]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {m.group(1): m.group(2).strip() for line in out.splitlines() if (m := _RESULT.match(line))}


def report(verdicts: dict[str, str], equivalent: set[str]) -> dict[str, object]:
    counts = Counter(verdicts.values())
    killed = counts["killed"] + counts["timeout"]
    missed = sorted(name for name, verdict in verdicts.items() if verdict not in ("killed", "timeout"))
    return {
        "mutants": len(verdicts),
        "killed": killed,
        "verdicts": dict(sorted(counts.items())),
        "kill_rate": round(killed / len(verdicts), 4) if verdicts else 0.0,
        "kill_rate_without_equivalent": round(killed / (len(verdicts) - len(equivalent & set(missed))), 4)
        if verdicts
        else 0.0,
        "equivalent": sorted(equivalent & set(missed)),
        "not_equivalent": [f"{name}: {verdicts[name]}" for name in missed if name not in equivalent],
        "equivalent_listed_but_not_surviving": sorted(equivalent - set(missed)),
    }


def equivalent_names(doc: str) -> set[str]:
    """The mutant names in the doc's "Equivalent mutants" section."""
    section = doc.partition("\n## Equivalent mutants")[2].partition("\n## ")[0]
    return set(_NAMED.findall(section))


def main() -> int:
    found = report(results(), equivalent_names(DOC.read_text()) if DOC.exists() else set())
    print(json.dumps(found, indent=2, ensure_ascii=False))
    rate = found["kill_rate"]
    assert isinstance(rate, float)
    return 0 if rate >= FLOOR else 1


if __name__ == "__main__":
    sys.exit(main())
