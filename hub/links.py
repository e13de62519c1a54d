"""The patient's stable link: an itsdangerous-signed patient id that never changes for them.

Signed with the newest secret key and accepted under any listed older key, so rotating keys does not break
links already in patients' messages. The link alone grants nothing: sign-in still needs contact, date of
birth and a code.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

from hub.settings import Settings

_SALT = "patient-link"


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_keys, salt=_SALT)


def link_token(settings: Settings, patient_id: int) -> str:
    return str(_serializer(settings).dumps(patient_id))


def patient_link(settings: Settings, patient_id: int) -> str:
    return f"{settings.base_url}/p/{link_token(settings, patient_id)}"


def read_link_token(settings: Settings, token: str) -> int | None:
    if len(token) > 200:
        return None
    try:
        value = _serializer(settings).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
