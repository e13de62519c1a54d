"""What NHS login tells us of a person, and whether it is enough: identity proofing to P9 (physical comparison),
an NHS number and a date of birth. Pure functions over the claims of an ID token or the userinfo answer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from hub.rules.validation import nhs_number_is_valid

# Asked for at NHS login: identity verified to P9, and two-factor authentication (NHS login's own default set).
VECTORS_OF_TRUST = '["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"]'
SCOPES = "openid profile"
ID_TOKEN_ALGORITHMS = ["RS512"]  # NHS login signs with RS512 only
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Identity:
    nhs_number: str
    born: date


def identity(claims: Mapping[str, Any]) -> Identity | str:
    """The verified person, or why they are not enough: 'not_p9', 'no_nhs_number' or 'no_birthdate'."""
    level = claims.get("identity_proofing_level")
    vot = claims.get("vot")
    proofed = level == "P9" if level is not None else isinstance(vot, str) and vot.split(".")[0] == "P9"
    if not proofed:
        return "not_p9"
    nhs_number = claims.get("nhs_number")
    if not isinstance(nhs_number, str) or not nhs_number_is_valid(nhs_number):
        return "no_nhs_number"
    born = claims.get("birthdate")
    if not isinstance(born, str) or not _DAY.fullmatch(born):
        return "no_birthdate"
    try:
        return Identity(nhs_number, date.fromisoformat(born))
    except ValueError:
        return "no_birthdate"


def safe_return_path(path: str) -> str:
    """Where to land after NHS login: one of our own patient pages, never another site."""
    if re.fullmatch(r"/(appointments|letters)(/[0-9]{1,18})?", path):
        return path
    return "/appointments"
