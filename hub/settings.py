"""Settings: declared once here as typed sections, defaults in settings.toml, overridden by HUB_* environment variables.

`settings.code_lifetime_seconds` is an int and `settings.notify.templates.invitation_sms` a str to mypy: a mistyped
name fails type checking. The flat table `SETTINGS` (README's configuration table, the environment names) and the
flat mapping `settings.values` are derived from the sections, never written by hand.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from hub.vocabulary import CancelMode, Channel, EarlierOrder, MessageKind

DEMO_SECRET_KEY = "demo-secret-key-not-for-production"
ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """Start-up must stop: the message says which setting and why."""


def setting(default: Any, help: str, *, secret: bool = False) -> Any:
    """A field of a settings section, with the text README's configuration table shows for it."""
    metadata = {"help": help, "secret": secret}
    if isinstance(default, list | tuple):
        frozen = tuple(default)
        return field(default_factory=lambda: type(default)(frozen), metadata=metadata)
    return field(default=default, metadata=metadata)


def _section(kind: type) -> Any:
    return field(default_factory=kind, metadata={"section": True})


@dataclass(frozen=True)
class NotifyTemplates:
    """GOV.UK Notify template ids, one per message kind and channel (see `template_setting`)."""

    security_code_sms: str = setting("", "Notify template for the security code by text.")
    security_code_email: str = setting("", "Notify template for the security code by email.")
    invitation_sms: str = setting("", "Notify template: a new appointment, with the patient's link by text.")
    invitation_email: str = setting("", "Notify template: a new appointment, with the patient's link by email.")
    invitation_letter: str = setting("", "Notify template: a new appointment, with the patient's link by post.")
    changed_sms: str = setting("", "Notify template: an appointment the hospital moved or changed by text.")
    changed_email: str = setting("", "Notify template: an appointment the hospital moved or changed by email.")
    changed_letter: str = setting("", "Notify template: an appointment the hospital moved or changed by post.")
    cancelled_sms: str = setting("", "Notify template: an appointment the hospital cancelled by text.")
    cancelled_email: str = setting("", "Notify template: an appointment the hospital cancelled by email.")
    cancelled_letter: str = setting("", "Notify template: an appointment the hospital cancelled by post.")
    invitation_reminder_sms: str = setting(
        "", "Notify template: a reminder of an invitation whose letter is still unread by text."
    )
    invitation_reminder_email: str = setting(
        "", "Notify template: a reminder of an invitation whose letter is still unread by email."
    )
    appointment_reminder_sms: str = setting("", "Notify template: a reminder days before the appointment by text.")
    appointment_reminder_email: str = setting("", "Notify template: a reminder days before the appointment by email.")
    sms_opt_out_confirmation_email: str = setting("", "Notify template: texts stopped, by email.")
    sms_opt_out_confirmation_letter: str = setting("", "Notify template: texts stopped, by post.")
    sms_opt_in_confirmation_sms: str = setting("", "Notify template: texts started again.")
    no_answer_letter: str = setting("", "Notify template: the letter sent after unanswered calls.")
    no_answer_email: str = setting(
        "", "Notify template: an agent's email to a patient with no phone number, asking them to ring."
    )
    patient_link_sms: str = setting("", "Notify template: the patient's link, resent by an agent.")
    patient_link_email: str = setting("", "Notify template: the patient's link, resent, by email.")
    earlier_offer_sms: str = setting("", "Notify template: an earlier appointment offered, with its link, by text.")
    earlier_offer_email: str = setting("", "Notify template: an earlier appointment offered, by email.")

    def template_for(self, kind: str, channel: str) -> str | None:
        """The template id for a message kind by a channel; None when no template is declared for that pair (the
        message cannot go that way). An empty string is a declared template not yet configured (demo and tests)."""
        name = TEMPLATE_SETTINGS.get((kind, channel))  # a StrEnum member hashes and compares as its value
        return None if name is None else str(getattr(self, name))


# Every (message kind, channel) that can be sent, and the template setting it uses. Nothing else can be sent: a
# fall-back to a channel missing here moves on to the next channel or fails.
TEMPLATE_SETTINGS: dict[tuple[str, str], str] = {
    (MessageKind.SECURITY_CODE, Channel.SMS): "security_code_sms",
    (MessageKind.SECURITY_CODE, Channel.EMAIL): "security_code_email",
    **{
        (kind, channel): f"{kind}_{channel}"
        for kind in (MessageKind.INVITATION, MessageKind.CHANGED, MessageKind.CANCELLED)
        for channel in (Channel.SMS, Channel.EMAIL, Channel.LETTER)
    },
    (MessageKind.INVITATION_REMINDER, Channel.SMS): "invitation_reminder_sms",
    (MessageKind.INVITATION_REMINDER, Channel.EMAIL): "invitation_reminder_email",
    (MessageKind.INVITATION_POST, Channel.LETTER): "invitation_letter",  # the posted invitation
    (MessageKind.APPOINTMENT_REMINDER, Channel.SMS): "appointment_reminder_sms",
    (MessageKind.APPOINTMENT_REMINDER, Channel.EMAIL): "appointment_reminder_email",
    (MessageKind.SMS_OPT_OUT_CONFIRMATION, Channel.EMAIL): "sms_opt_out_confirmation_email",
    (MessageKind.SMS_OPT_OUT_CONFIRMATION, Channel.LETTER): "sms_opt_out_confirmation_letter",
    (MessageKind.SMS_OPT_IN_CONFIRMATION, Channel.SMS): "sms_opt_in_confirmation_sms",
    (MessageKind.NO_ANSWER, Channel.LETTER): "no_answer_letter",
    (MessageKind.NO_ANSWER, Channel.EMAIL): "no_answer_email",
    (MessageKind.PATIENT_LINK, Channel.SMS): "patient_link_sms",
    (MessageKind.PATIENT_LINK, Channel.EMAIL): "patient_link_email",
    (MessageKind.EARLIER_OFFER, Channel.SMS): "earlier_offer_sms",
    (MessageKind.EARLIER_OFFER, Channel.EMAIL): "earlier_offer_email",
}


@dataclass(frozen=True)
class NotifySettings:
    api_key: str = setting("", "GOV.UK Notify API key; when empty, messages go to the dev outbox.", secret=True)
    base_url: str = setting("https://api.notifications.service.gov.uk", "GOV.UK Notify API origin.")
    callback_token: str = setting("", "Bearer token Notify sends with its callbacks.", secret=True)
    templates: NotifyTemplates = _section(NotifyTemplates)
    per_minute: int = setting(3000, "Most requests to Notify in any 60 seconds, shared by all workers.")
    timeout_seconds: int = setting(10, "How long one request to Notify may take.")
    max_attempts: int = setting(8, "Tries for a message that meets errors or timeouts before it fails.")
    quiet_start_hour: int = setting(20, "Quiet hours start (London time): non-urgent messages wait.")
    quiet_end_hour: int = setting(8, "Quiet hours end (London time).")
    urgent_margin_hours: int = setting(
        2, "A message about an appointment that starts before quiet hours end plus this goes at once, quiet or not."
    )
    per_number_per_hour: int = setting(100, "Most texts to one mobile number in an hour.")
    identical_per_number_per_hour: int = setting(20, "Most identical texts to one mobile number in an hour.")


@dataclass(frozen=True)
class WorkerSettings:
    batch: int = setting(25, "Messages one worker sends at once.")
    lease_seconds: int = setting(
        120,
        "After this long, a message a worker was sending is taken back (never less than twice"
        " notify.timeout_seconds plus 2 seconds).",
    )


@dataclass(frozen=True)
class StaffSettings:
    session_idle_minutes: int = setting(30, "A booking-centre session ends after this long without a request.")
    session_absolute_hours: int = setting(12, "A booking-centre session ends this long after sign-in, however busy.")
    lockout_attempts: int = setting(5, "Failed staff sign-ins (password or code) before the account locks.")
    lockout_minutes: int = setting(15, "How long a locked staff account stays locked.")
    password_attempts_per_client_per_hour: int = setting(
        20, "Wrong staff passwords accepted from one client address an hour, whatever the usernames."
    )
    setup_hours: int = setting(24, "How long a new staff member's set-up link works.")
    sla_working_days: int = setting(2, "Working days a task may wait before it is overdue.")
    claim_minutes: int = setting(30, "An agent's claim on a task lapses after this long.")
    retry_minutes: int = setting(120, "After no answer, the task returns to the queue this much later.")
    max_attempts: int = setting(3, "Unanswered calls before a letter goes to the patient instead.")


@dataclass(frozen=True)
class RecordServiceSettings:
    url: str = setting("", "The Aggregator's Record Service (.../records); empty: NHS numbers are not sent.")
    appointments_client_id: str = setting("", "clientId the Aggregator issued for the appointments list.")
    documents_client_id: str = setting("", "clientId the Aggregator issued for the documents list.")
    token_url: str = setting("", "OAuth 2.0 token endpoint (client credentials); empty: api_key is the bearer.")
    client_id: str = setting("", "OAuth 2.0 client id at token_url.")
    client_secret: str = setting("", "OAuth 2.0 client secret at token_url.", secret=True)
    api_key: str = setting("", "Bearer API key, where the Aggregator issued one, not client credentials.", secret=True)
    batch: int = setting(5000, "Most NHS numbers in one call (the standard's limit; 200 outside production).")
    timeout_seconds: int = setting(30, "How long one call to the Record Service may take.")


@dataclass(frozen=True)
class NhsAppSettings:
    enabled: bool = setting(False, "Serve the NHS App's Wayfinder API: /fhir/r4/Appointment and /DocumentReference.")
    token_issuer: str = setting("", "Issuer (iss) of the Aggregator's OAuth 2.0 access tokens.")
    token_jwks_url: str = setting("", "That issuer's JWKS: the keys its tokens are signed with (two during rotation).")
    token_audience: str = setting("", "The audience (aud) the Aggregator's access tokens must name.")
    token_scope: str = setting("", "A scope the access token must carry; empty: none is required.")
    id_token_audience: str = setting("", "The NHS App's NHS login client id: the aud of the NHSD-ID-Token it passes.")
    rate_per_second: int = setting(60, "Requests a second each web process answers; 429 beyond (WF-NFR-03).")
    timeout_ms: int = setting(9000, "A request still unanswered after this long gets 504 (WF-NFR-02).")
    maintenance: bool = setting(False, "Maintenance window: the API answers 503 (WF-NFR-06).")
    ext_system_name: str = setting("appointment-hub", "This portal's name in deep links (extSystemName).")
    hidden_clinics: list[str] = setting([], "Clinics never shown in the NHS App, each ORG:clinic (RAL:Sexual health).")
    hidden_specialties: list[str] = setting([], "Specialties never shown in the NHS App, each ORG:specialty.")
    record_service: RecordServiceSettings = _section(RecordServiceSettings)


@dataclass(frozen=True)
class NhsLoginSettings:
    enabled: bool = setting(False, 'Offer "Continue with NHS login" beside the code sign-in.')
    issuer: str = setting("", "NHS login's issuer URL (discovery at /.well-known/openid-configuration).")
    client_id: str = setting("", "The client id NHS login issued to this hub.")
    private_key: str = setting("", "PEM private key for private_key_jwt; its public key is registered.", secret=True)
    key_id: str = setting("", "The kid of that key, as registered with NHS login.")
    idle_minutes: int = setting(10, "An NHS login session ends after this long without a request (WF-NFR-18).")
    warn_minutes: int = setting(9, "Pages warn of the end of an idle NHS login session after this long.")


@dataclass(frozen=True)
class SlotSettings:
    self_service_clinics: list[str] = setting(
        [], "Clinics whose patients choose a new time themselves, each ORG:clinic (ORG:* for all the trust's clinics)."
    )
    self_service_specialties: list[str] = setting(
        [], "Specialties whose patients choose a new time themselves, each ORG:specialty."
    )
    window_days: int = setting(42, "Free slots offered to a patient moving an appointment: up to this many days ahead.")
    days_per_page: int = setting(5, "Days of free times on one page of the patient's list.")
    earlier_batch: int = setting(3, "Patients offered a freed slot at once as an earlier appointment.")
    earlier_offer_minutes: int = setting(120, "How long an offer of an earlier appointment stands.")
    earlier_order: str = setting(
        EarlierOrder.EARLIEST.value, "Who is offered first: 'earliest' current appointment, or 'longest_wait'."
    )
    earlier_max_offers: int = setting(5, "Most offers of an earlier appointment one appointment's patient receives.")


@dataclass(frozen=True)
class Hl7OutboundSettings:
    enabled: bool = setting(False, "Send the hospital's events to the PAS over MLLP as SRM^S03 / SRM^S04 (the worker).")
    organisation: str = setting("", "The organisation (code) whose events are sent.")
    host: str = setting("", "The PAS's MLLP host (its integration engine).")
    port: int = setting(2575, "The PAS's MLLP port.")
    tls: bool = setting(False, "MLLP over TLS; the PAS's certificate is checked against tls_ca_file or the system's.")
    tls_ca_file: str = setting("", "PEM file of the CA that signed the PAS's certificate; empty: the system's CAs.")
    timeout_seconds: int = setting(10, "How long connecting, or waiting for one ACK, may take before a retry.")
    sending_application: str = setting("HUB", "MSH-3 of every message sent.")
    sending_facility: str = setting("HUB", "MSH-4 of every message sent (the PAS de-duplicates by it and MSH-10).")
    receiving_application: str = setting("", "MSH-5: the PAS's application name.")
    receiving_facility: str = setting("", "MSH-6: the PAS's facility; also PID-3's assigning authority of the MRN.")
    retry_first_seconds: int = setting(5, "The first wait after a dropped connection or a missing ACK; it doubles.")
    retry_max_seconds: int = setting(300, "The longest wait between retries.")
    batch: int = setting(50, "Most events sent on one connection before the worker does its other jobs.")


@dataclass(frozen=True)
class Hl7Settings:
    host: str = setting("127.0.0.1", "Address `python -m hub hl7` (the MLLP listener) listens on.")
    port: int = setting(2575, "Port `python -m hub hl7` listens on.")
    max_message_bytes: int = setting(16_000_000, "Largest HL7 message accepted (a letter's PDF travels in base64).")
    idle_seconds: int = setting(600, "A connection with no complete message for this long is closed.")
    tls_cert_file: str = setting(
        "", "PEM certificate for MLLP over TLS; empty: plain TCP (inside the trust's network)."
    )
    tls_key_file: str = setting("", "PEM private key for tls_cert_file.")
    facilities: list[str] = setting(
        [], "Sending facilities (MSH-4) and their organisation, each FACILITY=ORG (RFH_PAS=RAL)."
    )
    mrn_types: list[str] = setting([], "PID-3 identifier type codes of the MRN, each ORG:code; none for ORG: MR.")
    nhs_number_types: list[str] = setting([], "PID-3 identifier type codes of the NHS number, each ORG:code; none: NH.")
    locations: list[str] = setting([], "AIL-3 location codes and their site, each ORG:code=SITE; unlisted: the code.")
    services: list[str] = setting([], "AIS-3 service codes, each ORG:code=Clinic|Specialty; unlisted: AIS-3's text.")
    appointment_types: list[str] = setting([], "SCH-8 appointment types, each ORG:code=mode (telephone, video...).")
    document_types: list[str] = setting([], "TXA-2 document types, each ORG:code=letter kind; unlisted: clinic_letter.")
    outbound: Hl7OutboundSettings = _section(Hl7OutboundSettings)


@dataclass(frozen=True)
class Settings:
    demo: bool = setting(False, "Demo mode: seeded data, the dev outbox at /dev/outbox, a fixed secret key.")
    database_url: str = setting("sqlite:///var/hub.sqlite3", "Database: sqlite:///path or postgresql://...")
    secret_key: str = setting("", "Signs links and keys code hashes. Required outside demo mode.", secret=True)
    previous_secret_keys: list[str] = setting(
        [], "Older secret keys still accepted for patients' stable links, so links survive key rotation.", secret=True
    )
    base_url: str = setting("http://127.0.0.1:8000", "Public origin used in links sent to patients.")
    allowed_hosts: list[str] = setting(
        [],
        "Host names accepted besides the base URL's (e.g. what a load balancer's health check sends); others get 400.",
    )
    host: str = setting("127.0.0.1", "Address `python -m hub serve` listens on.")
    port: int = setting(8000, "Port `python -m hub serve` listens on.")
    http_server: str = setting(
        "auto", "`serve`'s HTTP server: granian, uvicorn-uvloop, uvicorn (h11); auto: the fastest installed."
    )
    workers: int = setting(1, "Web processes `serve` runs. Above 1: PostgreSQL, or an SQLite without the WAL bug.")
    service_name: str = setting("Hospital appointments", "Name shown in the header and page titles.")
    booking_phone: str = setting("020 7794 0500", "Booking team's phone number shown when online change is closed.")
    operator_name: str = setting(
        "", "Who runs the hub (a trust's name), in the page footer and the privacy notice. Empty: no footer line."
    )
    accessibility_statement_date: str = setting(
        "2026-11-29", "When the accessibility statement was prepared or last reviewed (YYYY-MM-DD); shown on it."
    )
    sqlite_readers: int = setting(4, "SQLite read threads, for reads past 2 ms (shorter ones run in the loop).")
    sqlite_busy_timeout_ms: int = setting(5000, "How long an SQLite write waits for another process's lock.")
    postgres_pool_size: int = setting(10, "Most connections each hub process opens to a PostgreSQL database.")
    code_lifetime_seconds: int = setting(150, "How long a security code stays valid after it is issued.")
    code_max_guesses: int = setting(5, "Wrong guesses allowed per code; the code is dead after that.")
    codes_per_identity_per_hour: int = setting(
        5, "Codes asked for one contact with one date of birth an hour, whether or not they match a patient."
    )
    codes_per_contact_per_hour: int = setting(
        20, "Codes sent to one mobile number or email address an hour (siblings may share one); only sent codes count."
    )
    codes_per_client_per_hour: int = setting(30, "Codes requested from one client address an hour.")
    guesses_per_client_per_hour: int = setting(50, "Wrong codes accepted from one client address an hour.")
    session_idle_minutes: int = setting(15, "A patient's session ends after this long without a request.")
    session_absolute_minutes: int = setting(120, "A patient's session ends this long after sign-in, whatever.")
    change_cutoff_hours: int = setting(24, "No online change this close to the appointment; phone instead.")
    rebook_limit: int = setting(2, "Rebook requests a patient may make online for one appointment.")
    cancel_mode: str = setting(
        CancelMode.REQUEST.value, "'request': the booking centre confirms a cancel; 'immediate'."
    )
    past_months: int = setting(24, "Past appointments shown to patients for this many months.")
    calendar_show_clinic: bool = setting(False, "Put clinic names in calendar files (they sync to shared devices).")
    trusted_proxies: list[str] = setting(
        [],
        "Addresses or networks (CIDR) of your own proxies. X-Forwarded-For is read only from these, and the client is"
        " its rightmost address that is not one of them. Empty: the connection's address is the client.",
    )
    notify: NotifySettings = _section(NotifySettings)
    worker: WorkerSettings = _section(WorkerSettings)
    reminder_days_before: tuple[int, ...] = setting((7, 1), "Reminders this many days before each appointment.")
    reminder_days_after_confirm: tuple[int, ...] = setting((1,), "The reminders still sent once the patient confirmed.")
    escalation_hours: tuple[int, ...] = setting(
        (24, 48, 72),
        "Hours after the invitation for reminder 1, reminder 2 and the posted letter, while the letter is unread.",
    )
    staff: StaffSettings = _section(StaffSettings)
    letter_max_bytes: int = setting(10_000_000, "Largest PDF letter the integration API accepts (413 beyond).")
    api_page_limit: int = setting(500, "Most events one GET /api/v1/events returns.")
    nhs_app: NhsAppSettings = _section(NhsAppSettings)
    nhs_login: NhsLoginSettings = _section(NhsLoginSettings)
    slots: SlotSettings = _section(SlotSettings)
    hl7: Hl7Settings = _section(Hl7Settings)

    def __getitem__(self, name: str) -> Any:
        """A setting by its dotted name ("notify.per_minute"), for tables and tests; code reads attributes."""
        return self.values[name]

    @cached_property
    def values(self) -> Mapping[str, Any]:
        """Every setting by its dotted name."""
        return {s.name: _lookup(self, s.name) for s in SETTINGS}

    @property
    def hosts(self) -> list[str]:
        """Host names requests may name: the base URL's, the extra ones, and this machine's in demo mode."""
        local = ["127.0.0.1", "localhost"] if self.demo else []
        return list(dict.fromkeys([urlsplit(self.base_url).hostname or "", *self.allowed_hosts, *local]))

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def secret_keys(self) -> list[str]:
        """Newest last, as itsdangerous wants them."""
        return [*self.previous_secret_keys, self.secret_key]

    @property
    def cancels_immediately(self) -> bool:
        return self.cancel_mode == CancelMode.IMMEDIATE


@dataclass(frozen=True)
class Setting:
    """One row of the flat table: "[table] key" in settings.toml is "table.key"."""

    name: str
    type: Any  # bool, int, str, list[str] or tuple[int, ...]
    default: Any
    help: str
    secret: bool = False


def _declared(section: type, prefix: str = "") -> list[Setting]:
    hints = get_type_hints(section)
    rows: list[Setting] = []
    for f in dataclasses.fields(section):
        if f.metadata.get("section"):
            rows += _declared(hints[f.name], f"{prefix}{f.name}.")
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        rows.append(Setting(f"{prefix}{f.name}", hints[f.name], default, f.metadata["help"], f.metadata["secret"]))
    return rows


# The flat view of every setting, in declaration order. README's configuration table is kept in step by a test.
SETTINGS: tuple[Setting, ...] = tuple(_declared(Settings))
_BY_NAME = {s.name: s for s in SETTINGS}
# DESIGN.md names these three with single underscores; both spellings work.
ENV_ALIASES = {
    "HUB_NOTIFY_API_KEY": "notify.api_key",
    "HUB_NOTIFY_BASE_URL": "notify.base_url",
    "HUB_NOTIFY_CALLBACK_TOKEN": "notify.callback_token",
}
_INTS = tuple[int, ...]


def _lookup(settings: Any, name: str) -> Any:
    for part in name.split("."):
        settings = getattr(settings, part)
    return settings


def _built(section: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    hints = get_type_hints(section)
    kwargs = {
        f.name: _built(hints[f.name], values, f"{prefix}{f.name}.")
        if f.metadata.get("section")
        else values[f"{prefix}{f.name}"]
        for f in dataclasses.fields(section)
    }
    return section(**kwargs)


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


def type_name(kind: Any) -> str:
    return {bool: "bool", int: "int", str: "str", list[str]: "list", _INTS: "list of whole numbers"}[kind]


def _coerce(setting: Setting, raw: Any, source: str, *, from_text: bool = False) -> Any:
    """Environment values are text and are parsed; TOML values already have a type, which must be right."""
    kind = setting.type
    if from_text and isinstance(raw, str) and kind is not str:
        text = raw.strip()
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off", ""):
                return False
        elif kind is int:
            try:
                return int(text)
            except ValueError:
                pass
        else:
            raw = [part.strip() for part in text.split(",") if part.strip()]
    if kind is int and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if kind is bool and isinstance(raw, bool):
        return raw
    if kind is str and isinstance(raw, str):
        return raw
    if kind == list[str] and isinstance(raw, list | tuple) and all(isinstance(x, str) for x in raw):
        return list(raw)
    if kind == _INTS and isinstance(raw, list | tuple):
        # Whole numbers, written as numbers or (in older settings files and the environment) as digit strings.
        if all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in raw):
            return tuple(raw)
        if all(isinstance(x, str) for x in raw):
            if not all(x.isascii() and x.isdigit() for x in raw):
                raise SettingsError(f"{setting.name} must be a list of whole numbers")
            return tuple(int(x) for x in raw)
    raise SettingsError(f"{setting.name} (from {source}) must be {type_name(kind)}, not {raw!r}")


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
    if values["cancel_mode"] not in tuple(CancelMode):
        raise SettingsError(f"cancel_mode must be one of {', '.join(CancelMode)}")
    try:
        date.fromisoformat(values["accessibility_statement_date"])
    except ValueError as exc:
        raise SettingsError("accessibility_statement_date must be a date, YYYY-MM-DD") from exc
    if values["http_server"] not in ("auto", "granian", "uvicorn-uvloop", "uvicorn"):
        raise SettingsError("http_server must be one of auto, granian, uvicorn-uvloop, uvicorn")
    url = values["database_url"]
    if not (url.startswith("sqlite:///") or url.startswith(("postgresql://", "postgres://"))):
        raise SettingsError("database_url must start with sqlite:/// or postgresql://")
    if not str(values["base_url"]).startswith(("http://", "https://")):
        raise SettingsError("base_url must start with http:// or https://")
    values["base_url"] = str(values["base_url"]).rstrip("/")
    for entry in values["trusted_proxies"]:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise SettingsError(f"trusted_proxies: {entry!r} is not an address or a network (CIDR)") from exc
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
        "workers",
        "notify.per_minute",
        "worker.batch",
        "worker.lease_seconds",
        "notify.timeout_seconds",
        "staff.session_idle_minutes",
        "staff.session_absolute_hours",
        "staff.lockout_attempts",
        "staff.claim_minutes",
        "staff.max_attempts",
    ):
        if values[name] < 1:
            raise SettingsError(f"{name} must be at least 1")
    _check_nhs_app(values)
    _check_slots(values)
    _check_hl7_outbound(values)
    settings = _built(Settings, values)
    assert isinstance(settings, Settings)
    return settings


def _missing(values: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    return [env_name(n) for n in names if not str(values[n]).strip()]


def _check_nhs_app(values: dict[str, Any]) -> None:
    """The NHS App's parts are off by default; switched on, what they need must be there."""
    needed: list[str] = []
    if values["nhs_app.enabled"]:
        needed += _missing(
            values,
            (
                "nhs_app.token_issuer",
                "nhs_app.token_jwks_url",
                "nhs_app.token_audience",
                "nhs_app.id_token_audience",
                "nhs_login.issuer",  # the NHSD-ID-Token is checked against NHS login's keys
            ),
        )
    if values["nhs_login.enabled"]:
        needed += _missing(values, ("nhs_login.issuer", "nhs_login.client_id", "nhs_login.private_key"))
    if values["nhs_login.private_key"] and "PRIVATE KEY-----" not in values["nhs_login.private_key"]:
        raise SettingsError("HUB_NHS_LOGIN__PRIVATE_KEY must be a PEM private key")
    if values["nhs_app.record_service.url"]:
        needed += _missing(values, ("nhs_app.record_service.appointments_client_id",))
        if not values["nhs_app.record_service.api_key"]:
            needed += _missing(
                values,
                (
                    "nhs_app.record_service.token_url",
                    "nhs_app.record_service.client_id",
                    "nhs_app.record_service.client_secret",
                ),
            )
    if needed:
        raise SettingsError(f"The NHS App settings are incomplete: set {', '.join(dict.fromkeys(needed))}")
    for name in ("nhs_app.rate_per_second", "nhs_app.timeout_ms", "nhs_login.warn_minutes"):
        if values[name] < 1:
            raise SettingsError(f"{name} must be at least 1")
    if values["nhs_login.warn_minutes"] >= values["nhs_login.idle_minutes"]:
        raise SettingsError("nhs_login.warn_minutes must be less than nhs_login.idle_minutes")
    if not 1 <= values["nhs_app.record_service.batch"] <= 5000:
        raise SettingsError("nhs_app.record_service.batch must be from 1 to 5000 (the Record Service's limit)")
    for name in ("nhs_app.hidden_clinics", "nhs_app.hidden_specialties"):
        if any(not org.strip() or not rest.strip() for org, _, rest in (v.partition(":") for v in values[name])):
            raise SettingsError(f"{name}: each entry is ORG:name, e.g. RAL:Sexual health")


def _check_slots(values: dict[str, Any]) -> None:
    if values["slots.earlier_order"] not in tuple(EarlierOrder):
        raise SettingsError(f"slots.earlier_order must be one of {', '.join(EarlierOrder)}")
    for name in ("slots.window_days", "slots.days_per_page", "slots.earlier_batch", "slots.earlier_offer_minutes"):
        if values[name] < 1:
            raise SettingsError(f"{name} must be at least 1")
    for name in ("slots.self_service_clinics", "slots.self_service_specialties"):
        if any(not org.strip() or not rest.strip() for org, _, rest in (v.partition(":") for v in values[name])):
            raise SettingsError(f"{name}: each entry is ORG:name, e.g. RAL:Cardiology outpatients")


def _check_hl7_outbound(values: dict[str, Any]) -> None:
    prefix = "hl7.outbound."
    for name in ("timeout_seconds", "retry_first_seconds", "retry_max_seconds", "batch"):
        if values[prefix + name] < 1:
            raise SettingsError(f"{prefix}{name} must be at least 1")
    if values[prefix + "retry_max_seconds"] < values[prefix + "retry_first_seconds"]:
        raise SettingsError(f"{prefix}retry_max_seconds must be at least {prefix}retry_first_seconds")
    if not 1 <= values[prefix + "port"] <= 65535:
        raise SettingsError(f"{prefix}port must be from 1 to 65535")
    if values[prefix + "enabled"]:
        needed = [n for n in ("organisation", "host", "receiving_facility") if not str(values[prefix + n]).strip()]
        if needed:
            names = ", ".join(env_name(prefix + n) for n in needed)
            raise SettingsError(f"HL7 outbound is enabled but incomplete: set {names}")


def check_templates(settings: Settings) -> None:
    """Before sending through GOV.UK Notify outside demo mode: every declared template has an id, and each id is a
    UUID. A message of a kind with no template would reach Notify with an empty id and be refused; one whose id is
    not a UUID is refused with a 400 ValidationError, which the sender takes for a wrong number or address and fails
    over to the patient's next channel (every text would go by email or as a paid letter)."""
    if settings.demo:
        return  # nothing goes to Notify
    ids = {env_name(f"notify.templates.{n}"): getattr(settings.notify.templates, n) for n in TEMPLATE_SETTINGS.values()}
    missing = [name for name, value in ids.items() if not value]
    mistyped = [name for name, value in ids.items() if value and not _is_template_id(value)]
    problems = []
    if missing:
        problems.append(f"Notify template ids are missing: set {', '.join(missing)}")
    if mistyped:
        problems.append(
            f"Notify template ids are not UUIDs: {', '.join(mistyped)} (expected each template's ID as Notify shows"
            " it, 36 characters: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx in hexadecimal digits)"
        )
    if problems:
        raise SettingsError("; ".join(problems))


def _is_template_id(value: str) -> bool:
    """A UUID in its canonical hyphenated 36-character form (either case), as Notify shows a template's ID; not the
    braced, `urn:uuid:` or unhyphenated spellings uuid.UUID also takes, nor one with spaces around it."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return str(parsed) == value.lower()


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
        shown = f"`{_shown(s.default)}`" if s.default not in ("", [], ()) else "(empty)"
        default = "(secret: environment only)" if s.secret else shown
        extra = f" Also read from {aliases[s.name]}." if s.name in aliases else ""
        rows.append(f"| `{env_name(s.name)}` | `{where}` | {type_name(s.type)} | {default} | {s.help}{extra} |")
    return "\n".join(rows)


def _shown(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
