"""The patient's stable link: an itsdangerous-signed opaque link id, random and unique per patient.

The payload is `patients.link_id` (random, so it reveals nothing, not even how many patients the hub holds).
Links issued before it carry the patient's sequential id instead; those still read, as `LegacyLink`, until the
patient's link is rotated (see hub/store/links.py). Signed with the newest secret key and accepted under any
listed older key, so rotating keys does not break links already in patients' messages. The link alone grants
nothing: sign-in still needs contact, date of birth and a code.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from hub.settings import Settings

_SALT = "patient-link"
_LINK_ID_BYTES = 16


@dataclass(frozen=True)
class LegacyLink:
    """An old-style link whose signed payload is the patient's id."""

    patient_id: int


def new_link_id() -> str:
    return secrets.token_hex(_LINK_ID_BYTES)


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_keys, salt=_SALT)


def link_token(settings: Settings, link_id: str) -> str:
    if not isinstance(link_id, str):  # a patient's id here would make an old-style link, dead once rotated
        raise TypeError("a patient's link id, not their record id")
    return str(_serializer(settings).dumps(link_id))


def patient_link(settings: Settings, link_id: str) -> str:
    return f"{settings.base_url}/p/{link_token(settings, link_id)}"


def legacy_link_token(settings: Settings, patient_id: int) -> str:
    """The old form (payload: the patient id). Nothing issues it any more; tests use it to stand for old links."""
    return str(_serializer(settings).dumps(patient_id))


def read_link_token(settings: Settings, token: str) -> str | LegacyLink | None:
    """The link id, an old-style link's patient id, or None when the token is not one of ours."""
    if len(token) > 200:
        return None
    try:
        value = _serializer(settings).loads(token)
    except BadSignature:
        return None
    if isinstance(value, str) and len(value) == 2 * _LINK_ID_BYTES:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return LegacyLink(value)
    return None
