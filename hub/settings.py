"""Settings: declared once here, defaults in settings.toml, overridden by HUB_* environment variables."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_SECRET_KEY = "demo-secret-key-not-for-production"
ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """Start-up must stop: the message says which setting and why."""


@dataclass(frozen=True)
class Setting:
    name: str  # dotted: "[table] key" in settings.toml is "table.key"
    type: type
    default: Any
    help: str
    secret: bool = False


# The one declaration of every setting. README's configuration table is kept in step by a test.
SETTINGS: tuple[Setting, ...] = (
    Setting("demo", bool, False, "Demo mode: seeded data, the dev outbox at /dev/outbox, a fixed secret key."),
    Setting("database_url", str, "sqlite:///var/hub.sqlite3", "Database: sqlite:///path or postgresql://..."),
    Setting("secret_key", str, "", "Signs links and keys code hashes. Required outside demo mode.", secret=True),
    Setting(
        "previous_secret_keys",
        list,
        [],
        "Older secret keys still accepted for patients' stable links, so links survive key rotation.",
        secret=True,
    ),
    Setting("base_url", str, "http://127.0.0.1:8000", "Public origin used in links sent to patients."),
    Setting("host", str, "127.0.0.1", "Address `python -m hub serve` listens on."),
    Setting("port", int, 8000, "Port `python -m hub serve` listens on."),
    Setting("service_name", str, "Hospital appointments", "Name shown in the header and page titles."),
    Setting(
        "booking_phone",
        str,
        "020 7794 0500",
        "Booking team's phone number shown when online change is closed.",
    ),
    Setting("sqlite_readers", int, 4, "SQLite read threads, for reads past 2 ms (shorter ones run in the loop)."),
    Setting("sqlite_busy_timeout_ms", int, 5000, "How long an SQLite write waits for another process's lock."),
    Setting("postgres_pool_size", int, 10, "Most connections each hub process opens to a PostgreSQL database."),
    Setting("code_lifetime_seconds", int, 150, "How long a security code stays valid after it is issued."),
    Setting("code_max_guesses", int, 5, "Wrong guesses allowed per code; the code is dead after that."),
    Setting("codes_per_contact_per_hour", int, 5, "Codes sent to one mobile number or email address an hour."),
    Setting("codes_per_client_per_hour", int, 30, "Codes requested from one client address an hour."),
    Setting("guesses_per_client_per_hour", int, 50, "Wrong codes accepted from one client address an hour."),
    Setting("session_idle_minutes", int, 15, "A patient's session ends after this long without a request."),
    Setting("session_absolute_minutes", int, 120, "A patient's session ends this long after sign-in, whatever."),
    Setting("change_cutoff_hours", int, 24, "No online change this close to the appointment; phone instead."),
    Setting("rebook_limit", int, 2, "Rebook requests a patient may make online for one appointment."),
    Setting("cancel_mode", str, "request", "'request': the booking centre confirms a cancel; 'immediate'."),
    Setting("past_months", int, 24, "Past appointments shown to patients for this many months."),
    Setting(
        "calendar_show_clinic",
        bool,
        False,
        "Put clinic names in calendar files (they sync to shared devices).",
    ),
    Setting("trust_proxy_headers", bool, False, "Take the client address from X-Forwarded-For (behind a proxy)."),
    Setting(
        "notify.api_key",
        str,
        "",
        "GOV.UK Notify API key; when empty, messages go to the dev outbox.",
        secret=True,
    ),
    Setting("notify.base_url", str, "https://api.notifications.service.gov.uk", "GOV.UK Notify API origin."),
    Setting("notify.callback_token", str, "", "Bearer token Notify sends with its callbacks.", secret=True),
    Setting("notify.templates.security_code_sms", str, "", "Notify template for the security code by text."),
    Setting("notify.templates.security_code_email", str, "", "Notify template for the security code by email."),
    *(
        Setting(f"notify.templates.{kind}_{channel}", str, "", f"Notify template: {what} by {label}.")
        for kind, what in (
            ("invitation", "a new appointment, with the patient's link"),
            ("changed", "an appointment the hospital moved or changed"),
            ("cancelled", "an appointment the hospital cancelled"),
        )
        for channel, label in (("sms", "text"), ("email", "email"), ("letter", "post"))
    ),
    *(
        Setting(f"notify.templates.{kind}_{channel}", str, "", f"Notify template: {what} by {label}.")
        for kind, what in (
            ("invitation_reminder", "a reminder of an invitation whose letter is still unread"),
            ("appointment_reminder", "a reminder days before the appointment"),
        )
        for channel, label in (("sms", "text"), ("email", "email"))
    ),
    Setting("notify.templates.sms_opt_out_confirmation_email", str, "", "Notify template: texts stopped, by email."),
    Setting("notify.templates.sms_opt_out_confirmation_letter", str, "", "Notify template: texts stopped, by post."),
    Setting("notify.templates.sms_opt_in_confirmation_sms", str, "", "Notify template: texts started again."),
    Setting("notify.per_minute", int, 3000, "Most requests to Notify in any 60 seconds, shared by all workers."),
    Setting("notify.timeout_seconds", int, 10, "How long one request to Notify may take."),
    Setting("notify.max_attempts", int, 8, "Tries for a message that meets errors or timeouts before it fails."),
    Setting("notify.quiet_start_hour", int, 20, "Quiet hours start (London time): non-urgent messages wait."),
    Setting("notify.quiet_end_hour", int, 8, "Quiet hours end (London time)."),
    Setting("notify.per_number_per_hour", int, 100, "Most texts to one mobile number in an hour."),
    Setting("notify.identical_per_number_per_hour", int, 20, "Most identical texts to one mobile number in an hour."),
    Setting("worker.batch", int, 25, "Messages one worker sends at once."),
    Setting("worker.lease_seconds", int, 120, "After this long, a message a worker was sending is taken back."),
    Setting("reminder_days_before", list, ["7", "1"], "Reminders this many days before each appointment."),
    Setting("reminder_days_after_confirm", list, ["1"], "The reminders still sent once the patient confirmed."),
    Setting(
        "escalation_hours",
        list,
        ["24", "48", "72"],
        "Hours after the invitation for reminder 1, reminder 2 and the posted letter, while the letter is unread.",
    ),
    Setting("staff.session_idle_minutes", int, 30, "A booking-centre session ends after this long without a request."),
    Setting("staff.lockout_attempts", int, 5, "Failed staff sign-ins (password or code) before the account locks."),
    Setting("staff.lockout_minutes", int, 15, "How long a locked staff account stays locked."),
    Setting("staff.setup_hours", int, 24, "How long a new staff member's set-up link works."),
    Setting("staff.sla_working_days", int, 2, "Working days a call-back may wait before it is overdue."),
    Setting("staff.claim_minutes", int, 30, "An agent's claim on a call-back lapses after this long."),
    Setting("staff.retry_minutes", int, 120, "After no answer, the call-back returns to the queue this much later."),
    Setting("staff.max_attempts", int, 3, "Unanswered calls before a letter goes to the patient instead."),
    Setting("notify.templates.no_answer_letter", str, "", "Notify template: the letter sent after unanswered calls."),
    Setting("notify.templates.patient_link_sms", str, "", "Notify template: the patient's link, resent by an agent."),
    Setting("notify.templates.patient_link_email", str, "", "Notify template: the patient's link, resent, by email."),
    Setting("letter_max_bytes", int, 10_000_000, "Largest PDF letter the integration API accepts (413 beyond)."),
    Setting("api_page_limit", int, 500, "Most events one GET /api/v1/events returns."),
)

_BY_NAME = {s.name: s for s in SETTINGS}
# DESIGN.md names these three with single underscores; both spellings work.
ENV_ALIASES = {
    "HUB_NOTIFY_API_KEY": "notify.api_key",
    "HUB_NOTIFY_BASE_URL": "notify.base_url",
    "HUB_NOTIFY_CALLBACK_TOKEN": "notify.callback_token",
}
_CANCEL_MODES = ("request", "immediate")


@dataclass(frozen=True)
class Settings:
    values: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def https(self) -> bool:
        return str(self.values["base_url"]).startswith("https://")

    @property
    def secret_keys(self) -> list[str]:
        """Newest last, as itsdangerous wants them."""
        return [*self.values["previous_secret_keys"], self.values["secret_key"]]


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def env_name(name: str) -> str:
    # "notify.templates.x" -> HUB_NOTIFY__TEMPLATES__X; top-level "secret_key" -> HUB_SECRET_KEY
    return "HUB_" + name.replace(".", "__").upper()


def _coerce(setting: Setting, raw: Any, source: str, *, from_text: bool = False) -> Any:
    """Environment values are text and are parsed; TOML values already have a type, which must be right."""
    if from_text and isinstance(raw, str) and setting.type is not str:
        text = raw.strip()
        if setting.type is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off", ""):
                return False
        elif setting.type is int:
            try:
                return int(text)
            except ValueError:
                pass
        elif setting.type is list:
            return [part.strip() for part in text.split(",") if part.strip()]
    elif setting.type is int and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    elif setting.type is list and isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return raw
    elif isinstance(raw, setting.type) and setting.type not in (int, list):  # checked above
        return raw
    raise SettingsError(f"{setting.name} (from {source}) must be {setting.type.__name__}, not {raw!r}")


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults, then settings.toml, then HUB_* environment variables, then explicit overrides (tests)."""
    environ = os.environ if environ is None else environ
    values = {s.name: s.default for s in SETTINGS}
    toml_path = path if path is not None else Path(environ.get("HUB_SETTINGS", ROOT / "settings.toml"))
    if toml_path.exists():
        try:
            table = _flatten(tomllib.loads(toml_path.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{toml_path} is not valid TOML: {exc}") from exc
        for name, raw in table.items():
            if name not in _BY_NAME:
                raise SettingsError(f"{toml_path}: unknown setting {name!r}")
            values[name] = _coerce(_BY_NAME[name], raw, str(toml_path))
    known_env = {env_name(s.name): s for s in SETTINGS}
    known_env.update({alias: _BY_NAME[name] for alias, name in ENV_ALIASES.items()})
    for key, raw in environ.items():
        if not key.startswith("HUB_") or key in ("HUB_SETTINGS", "HUB_TEST_DATABASE_URL"):
            continue
        if key not in known_env:
            raise SettingsError(f"unknown environment setting {key}")
        setting = known_env[key]
        values[setting.name] = _coerce(setting, raw, key, from_text=True)
    for name, raw in (overrides or {}).items():
        if name not in _BY_NAME:
            raise SettingsError(f"unknown setting {name!r}")
        values[name] = _coerce(_BY_NAME[name], raw, "overrides", from_text=isinstance(raw, str))
    return _validated(values)


def _validated(values: dict[str, Any]) -> Settings:
    if values["demo"] and not values["secret_key"]:
        values["secret_key"] = DEMO_SECRET_KEY
    if not values["demo"]:
        if not values["secret_key"] or values["secret_key"] == DEMO_SECRET_KEY:
            raise SettingsError("HUB_SECRET_KEY must be set to a long random value outside demo mode")
        if len(values["secret_key"]) < 32:
            raise SettingsError("HUB_SECRET_KEY must be at least 32 characters")
    if values["cancel_mode"] not in _CANCEL_MODES:
        raise SettingsError(f"cancel_mode must be one of {', '.join(_CANCEL_MODES)}")
    url = values["database_url"]
    if not (url.startswith("sqlite:///") or url.startswith(("postgresql://", "postgres://"))):
        raise SettingsError("database_url must start with sqlite:/// or postgresql://")
    if not str(values["base_url"]).startswith(("http://", "https://")):
        raise SettingsError("base_url must start with http:// or https://")
    values["base_url"] = str(values["base_url"]).rstrip("/")
    for name in ("reminder_days_before", "reminder_days_after_confirm", "escalation_hours"):
        if not all(v.isdigit() for v in values[name]):
            raise SettingsError(f"{name} must be a list of whole numbers")
    if len(values["escalation_hours"]) != 3:
        raise SettingsError("escalation_hours must have 3 entries: reminder 1, reminder 2, post")
    for name in ("notify.quiet_start_hour", "notify.quiet_end_hour"):
        if not 0 <= values[name] <= 23:
            raise SettingsError(f"{name} must be an hour from 0 to 23")
    for name in (
        "code_lifetime_seconds",
        "code_max_guesses",
        "session_idle_minutes",
        "sqlite_readers",
        "postgres_pool_size",
        "notify.per_minute",
        "worker.batch",
        "worker.lease_seconds",
        "notify.timeout_seconds",
        "staff.session_idle_minutes",
        "staff.lockout_attempts",
        "staff.claim_minutes",
        "staff.max_attempts",
    ):
        if values[name] < 1:
            raise SettingsError(f"{name} must be at least 1")
    return Settings(values)


def markdown_table() -> str:
    """README's configuration table: `python -c 'from hub.settings import markdown_table; print(markdown_table())'`."""
    aliases = {name: alias for alias, name in ENV_ALIASES.items()}
    rows = [
        "| Environment variable | settings.toml key | Type | Default | What it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in SETTINGS:
        table, _, key = s.name.rpartition(".")
        where = f"[{table}] {key}" if table else key
        shown = f"`{s.default}`" if s.default not in ("", []) else "(empty)"
        default = "(secret: environment only)" if s.secret else shown
        extra = f" Also read from {aliases[s.name]}." if s.name in aliases else ""
        rows.append(f"| `{env_name(s.name)}` | `{where}` | {s.type.__name__} | {default} | {s.help}{extra} |")
    return "\n".join(rows)
