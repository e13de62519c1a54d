import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from hub.app import create_app
from hub.settings import (
    DEMO_SECRET_KEY,
    ROOT,
    SETTINGS,
    TEMPLATE_SETTINGS,
    SettingsError,
    check_templates,
    env_name,
    load_settings,
)
from hub.vocabulary import Channel, MessageKind
from tests.fake_notify import template_environ

KEY = "k" * 40


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, toml: str = "", environ: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    environ = {"HUB_SECRET_KEY": KEY} if environ is None else environ
    return dict(load_settings(write_toml(tmp_path, toml), environ=environ, overrides=overrides).values)


def test_defaults_come_from_the_declaration(tmp_path: Path) -> None:
    values = load_settings(tmp_path / "absent.toml", environ={"HUB_SECRET_KEY": KEY}).values
    expected = {s.name: s.default for s in SETTINGS} | {"secret_key": KEY}
    assert dict(values) == expected
    assert values["rebook_limit"] == 2 and values["change_cutoff_hours"] == 24 and values["cancel_mode"] == "request"


def test_the_shipped_settings_toml_loads_and_matches_the_declared_defaults() -> None:
    values = load_settings(ROOT / "settings.toml", environ={"HUB_SECRET_KEY": KEY}).values
    assert dict(values) == {s.name: s.default for s in SETTINGS} | {"secret_key": KEY}


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("rebook_limt = 3\n", "'rebook_limt'"),
        ("[notify]\napi_kye = 'x'\n", "'notify.api_kye'"),
        ("[notify.templates]\nsecurity_code_fax = 'x'\n", "'notify.templates.security_code_fax'"),
        ("[paging]\nsize = 3\n", "'paging.size'"),
    ],
)
def test_unknown_key_in_settings_toml_stops_start_up(tmp_path: Path, toml: str, named: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(named)) as raised:
        load(tmp_path, toml)
    assert "unknown setting" in str(raised.value)
    assert str(tmp_path / "settings.toml") in str(raised.value)


def test_invalid_toml_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not valid TOML"):
        load(tmp_path, "rebook_limit = = 3\n")


@pytest.mark.parametrize("name", ["HUB_REBOOK_LIMT", "HUB_NOTIFY_TEMPLATES__SECURITY_CODE_SMS", "HUB_"])
def test_unknown_hub_environment_variable_stops_start_up(tmp_path: Path, name: str) -> None:
    with pytest.raises(SettingsError, match=f"unknown environment setting {re.escape(name)}$"):
        load(tmp_path, environ={"HUB_SECRET_KEY": KEY, name: "3"})


def test_other_environment_variables_are_ignored(tmp_path: Path) -> None:
    values = load(tmp_path, environ={"HUB_SECRET_KEY": KEY, "PATH": "/bin", "HUBBLE": "x", "hub_port": "1"})
    assert values["port"] == 8000


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"HUB_PORT": "abc"}, "port (from HUB_PORT) must be int, not 'abc'"),
        ({"HUB_REBOOK_LIMIT": "2.5"}, "rebook_limit (from HUB_REBOOK_LIMIT) must be int"),
        ({"HUB_DEMO": "maybe"}, "demo (from HUB_DEMO) must be bool"),
        ({"HUB_CALENDAR_SHOW_CLINIC": "2"}, "calendar_show_clinic (from HUB_CALENDAR_SHOW_CLINIC) must be bool"),
    ],
)
def test_mistyped_environment_value_stops_start_up(tmp_path: Path, environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(named)):
        load(tmp_path, environ={"HUB_SECRET_KEY": KEY, **environ})


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('rebook_limit = "two"\n', "rebook_limit"),
        ("rebook_limit = 2.5\n", "rebook_limit"),
        ("rebook_limit = true\n", "rebook_limit"),
        ("calendar_show_clinic = 1\n", "calendar_show_clinic"),
        ('calendar_show_clinic = "perhaps"\n', "calendar_show_clinic"),
        ("service_name = 3\n", "service_name"),
        ("previous_secret_keys = [1, 2]\n", "previous_secret_keys"),
        ("[notify]\nbase_url = false\n", "notify.base_url"),
    ],
)
def test_mistyped_toml_value_stops_start_up(tmp_path: Path, toml: str, named: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{re.escape(named)} \(from .*settings.toml\) must be "):
        load(tmp_path, toml)


def test_mistyped_override_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="rebook_limit"):
        load(tmp_path, rebook_limit="lots")
    with pytest.raises(SettingsError, match="unknown setting 'rebook_limt'"):
        load(tmp_path, rebook_limt=3)


@pytest.mark.parametrize(
    ("environ", "toml"),
    [
        ({}, ""),
        ({"HUB_SECRET_KEY": ""}, ""),
        ({"HUB_SECRET_KEY": DEMO_SECRET_KEY}, ""),
        ({}, f'secret_key = "{DEMO_SECRET_KEY}"\n'),
        ({"HUB_SECRET_KEY": "x" * 31}, ""),
        ({"HUB_DEMO": "false"}, ""),
    ],
)
def test_outside_demo_mode_a_real_secret_key_is_required(tmp_path: Path, environ: dict[str, str], toml: str) -> None:
    with pytest.raises(SettingsError, match="HUB_SECRET_KEY"):
        load(tmp_path, toml, environ=environ)


def test_a_32_character_key_is_enough(tmp_path: Path) -> None:
    assert load(tmp_path, environ={"HUB_SECRET_KEY": "x" * 32})["secret_key"] == "x" * 32


def test_demo_mode_fills_in_the_demo_key(tmp_path: Path) -> None:
    values = load(tmp_path, environ={"HUB_DEMO": "true"})
    assert (values["demo"], values["secret_key"]) == (True, DEMO_SECRET_KEY)
    values = load(tmp_path, "demo = true\n", environ={})
    assert (values["demo"], values["secret_key"]) == (True, DEMO_SECRET_KEY)
    # A key that was given is kept, demo or not.
    assert load(tmp_path, environ={"HUB_DEMO": "1", "HUB_SECRET_KEY": KEY})["secret_key"] == KEY


def test_nested_setting_from_the_environment(tmp_path: Path) -> None:
    values = load(
        tmp_path,
        environ={
            "HUB_SECRET_KEY": KEY,
            "HUB_NOTIFY__TEMPLATES__SECURITY_CODE_SMS": "1f8e-sms",
            "HUB_NOTIFY__TEMPLATES__SECURITY_CODE_EMAIL": "2a9c-email",
        },
    )
    assert values["notify.templates.security_code_sms"] == "1f8e-sms"
    assert values["notify.templates.security_code_email"] == "2a9c-email"


@pytest.mark.parametrize(
    ("alias", "setting"),
    [
        ("HUB_NOTIFY_API_KEY", "notify.api_key"),
        ("HUB_NOTIFY_BASE_URL", "notify.base_url"),
        ("HUB_NOTIFY_CALLBACK_TOKEN", "notify.callback_token"),
    ],
)
def test_design_md_single_underscore_names_work_and_so_do_the_double_ones(
    tmp_path: Path, alias: str, setting: str
) -> None:
    assert load(tmp_path, environ={"HUB_SECRET_KEY": KEY, alias: "https://a.example"})[setting] == "https://a.example"
    double = env_name(setting)
    assert double == alias.replace("HUB_NOTIFY_", "HUB_NOTIFY__")
    assert load(tmp_path, environ={"HUB_SECRET_KEY": KEY, double: "https://b.example"})[setting] == "https://b.example"


def test_precedence_defaults_then_toml_then_environment_then_overrides(tmp_path: Path) -> None:
    toml = "rebook_limit = 3\npast_months = 12\nchange_cutoff_hours = 48\n[notify]\nbase_url = 'http://toml'\n"
    env = {"HUB_SECRET_KEY": KEY, "HUB_PAST_MONTHS": "6", "HUB_CHANGE_CUTOFF_HOURS": "36"}
    values = load(tmp_path, toml, environ=env, change_cutoff_hours=12)
    assert values["code_max_guesses"] == 5  # default
    assert values["rebook_limit"] == 3  # toml over default
    assert values["notify.base_url"] == "http://toml"
    assert values["past_months"] == 6  # environment over toml
    assert values["change_cutoff_hours"] == 12  # override over environment


def test_hub_settings_names_the_toml_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "rebook_limit = 7\n")
    values = load_settings(environ={"HUB_SETTINGS": str(path), "HUB_SECRET_KEY": KEY}).values
    assert values["rebook_limit"] == 7


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("1", True), ("yes", True), ("on", True), ("false", False), ("0", False), ("off", False)],
)
def test_environment_booleans(tmp_path: Path, raw: str, value: bool) -> None:
    assert (
        load(tmp_path, environ={"HUB_SECRET_KEY": KEY, "HUB_CALENDAR_SHOW_CLINIC": raw})["calendar_show_clinic"]
        is value
    )


def test_list_from_the_environment_is_comma_separated(tmp_path: Path) -> None:
    values = load(tmp_path, environ={"HUB_SECRET_KEY": KEY, "HUB_PREVIOUS_SECRET_KEYS": "old-one, older-one,"})
    assert values["previous_secret_keys"] == ["old-one", "older-one"]
    settings = load_settings(
        tmp_path / "absent.toml", environ={"HUB_SECRET_KEY": KEY, "HUB_PREVIOUS_SECRET_KEYS": "a,b"}
    )
    assert settings.secret_keys == ["a", "b", KEY]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cancel_mode": "instant"}, "cancel_mode must be one of request, immediate"),
        ({"accessibility_statement_date": "29/11/2026"}, "accessibility_statement_date must be a date, YYYY-MM-DD"),
        ({"database_url": "mysql://x"}, "database_url must start with"),
        ({"base_url": "ftp://x"}, "base_url must start with"),
        ({"code_lifetime_seconds": 0}, "code_lifetime_seconds must be at least 1"),
        ({"sqlite_readers": 0}, "sqlite_readers must be at least 1"),
    ],
)
def test_invalid_values_stop_start_up(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load(tmp_path, **overrides)


def test_base_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    assert load(tmp_path, base_url="https://hub.example.nhs.uk/")["base_url"] == "https://hub.example.nhs.uk"


def test_env_name() -> None:
    assert env_name("secret_key") == "HUB_SECRET_KEY"
    assert env_name("notify.templates.security_code_sms") == "HUB_NOTIFY__TEMPLATES__SECURITY_CODE_SMS"


def _readme_configuration_names() -> list[str]:
    readme = ROOT / "README.md"
    assert readme.exists(), "README.md is missing"
    names = []
    for line in readme.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        first_cell = line.strip("|").split("|")[0]
        match = re.match(r"\s*`(HUB_[A-Z0-9_]+)`", first_cell)
        if match:
            names.append(match.group(1))
    return names


def test_readme_configuration_table_lists_every_setting_and_nothing_else() -> None:
    names = _readme_configuration_names()
    declared = [env_name(s.name) for s in SETTINGS]
    assert sorted(set(names)) == sorted(declared), "README's configuration table is out of step with SETTINGS"
    assert len(names) == len(set(names)), "a setting is listed twice in README"


def test_outside_demo_mode_a_notify_key_is_required_to_build_the_app(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "absent.toml", environ={"HUB_SECRET_KEY": KEY})
    with pytest.raises(SettingsError, match="HUB_NOTIFY_API_KEY"):
        create_app(settings)
    with_key = load_settings(tmp_path / "absent.toml", environ={"HUB_SECRET_KEY": KEY, "HUB_NOTIFY_API_KEY": "k"})
    assert create_app(with_key) is not None


# Typed settings: a typo is a type error, and every value has its declared type


def test_a_mistyped_setting_name_fails_type_checking(tmp_path: Path) -> None:
    from mypy import api

    snippet = tmp_path / "snippet.py"
    snippet.write_text(
        "from hub.settings import Settings\n\n\n"
        "def lifetime(s: Settings) -> int:\n    return s.code_lifetime_secnds\n\n\n"
        "def templates(s: Settings) -> str:\n    return s.notify.templates.invitation_smss\n\n\n"
        "def right(s: Settings) -> int:\n    return s.code_lifetime_seconds + s.notify.per_minute\n"
    )
    out, _, status = api.run([str(snippet), "--no-incremental", "--follow-imports=silent", "--cache-dir=/dev/null"])
    assert status == 1
    assert '"Settings" has no attribute "code_lifetime_secnds"' in out
    assert '"NotifyTemplates" has no attribute "invitation_smss"' in out
    assert "right" not in out and out.count("error:") == 2


def test_every_setting_has_its_declared_type(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "absent.toml", environ={"HUB_SECRET_KEY": KEY})
    assert isinstance(settings.code_lifetime_seconds, int) and settings.code_lifetime_seconds == 150
    assert settings.notify.templates.invitation_sms == "" and settings.staff.claim_minutes == 30
    assert settings.reminder_days_before == (7, 1) and settings.escalation_hours == (24, 48, 72)
    for s in SETTINGS:
        assert settings[s.name] == (KEY if s.name == "secret_key" else s.default)


@pytest.mark.parametrize(
    ("environ", "days"),
    [({"HUB_REMINDER_DAYS_BEFORE": "14, 3"}, (14, 3)), ({"HUB_REMINDER_DAYS_BEFORE": ""}, ())],
)
def test_whole_number_lists_from_the_environment(tmp_path: Path, environ: dict[str, str], days: tuple[int]) -> None:
    assert load(tmp_path, environ={"HUB_SECRET_KEY": KEY, **environ})["reminder_days_before"] == days


@pytest.mark.parametrize("raw", ["7,x", "-1", "1.5"])
def test_whole_number_lists_refuse_anything_else(tmp_path: Path, raw: str) -> None:
    with pytest.raises(SettingsError, match="reminder_days_before must be a list of whole numbers"):
        load(tmp_path, environ={"HUB_SECRET_KEY": KEY, "HUB_REMINDER_DAYS_BEFORE": raw})


# Notify templates: one declared table of (message kind, channel) -> setting


def test_the_template_table_names_only_declared_settings_and_uses_them_all() -> None:
    fields = {s.name.removeprefix("notify.templates.") for s in SETTINGS if s.name.startswith("notify.templates.")}
    assert set(TEMPLATE_SETTINGS.values()) == fields


def test_a_kind_and_channel_with_no_template_has_none(tmp_path: Path) -> None:
    templates = load(tmp_path, environ={"HUB_SECRET_KEY": KEY, "HUB_NOTIFY__TEMPLATES__INVITATION_LETTER": "t-post"})
    settings = load_settings(
        tmp_path / "absent.toml", environ={"HUB_SECRET_KEY": KEY, "HUB_NOTIFY__TEMPLATES__INVITATION_LETTER": "t-post"}
    )
    assert templates["notify.templates.invitation_letter"] == "t-post"
    lookup = settings.notify.templates.template_for
    # A reminder's fall-back to post once built "invitation_reminder_letter", which nothing declares.
    assert lookup(MessageKind.INVITATION_REMINDER, Channel.LETTER) is None
    assert lookup("security_code", "letter") is None and lookup("nonsense", "sms") is None
    assert lookup(MessageKind.INVITATION_POST, Channel.LETTER) == "t-post"  # the posted invitation
    assert lookup("invitation", "letter") == "t-post"
    assert lookup(MessageKind.INVITATION, Channel.SMS) == ""  # declared, not configured


def test_outside_demo_mode_every_template_must_have_an_id(tmp_path: Path) -> None:
    environ = {"HUB_SECRET_KEY": KEY, "HUB_NOTIFY_API_KEY": "k", **template_environ()}
    check_templates(load_settings(tmp_path / "absent.toml", environ=environ))
    del environ["HUB_NOTIFY__TEMPLATES__CANCELLED_LETTER"]
    with pytest.raises(SettingsError, match=r"missing: set HUB_NOTIFY__TEMPLATES__CANCELLED_LETTER$"):
        check_templates(load_settings(tmp_path / "absent.toml", environ=environ))
    check_templates(load_settings(tmp_path / "absent.toml", environ={**environ, "HUB_DEMO": "true"}))


def test_the_test_template_ids_are_deterministic_uuids_and_pass(tmp_path: Path) -> None:
    ids = template_environ()
    assert all(str(uuid.UUID(value)) == value for value in ids.values())
    assert len(set(ids.values())) == len(ids) and template_environ() == ids
    environ = {"HUB_SECRET_KEY": KEY, "HUB_NOTIFY_API_KEY": "k", **ids}
    check_templates(load_settings(tmp_path / "absent.toml", environ=environ))
    # Upper-case hex is still the 36-character form, and Notify's own check (uuid.UUID) takes it.
    upper = {**environ, "HUB_NOTIFY__TEMPLATES__INVITATION_SMS": "F33517FF-2A88-4F6E-B855-C550268CE08A"}
    check_templates(load_settings(tmp_path / "absent.toml", environ=upper))


@pytest.mark.parametrize(
    "typo",
    [
        "tpl-invitation_sms",
        "f33517ff-2a88-4f6e-b855-c550268ce08",  # a character short
        "f33517ff-2a88-4f6e-b855-c550268ce08a ",  # pasted with a trailing space
        "f33517ff2a884f6eb855c550268ce08a",  # uuid.UUID takes these three; Notify's ids are the hyphenated form
        "{f33517ff-2a88-4f6e-b855-c550268ce08a}",
        "urn:uuid:f33517ff-2a88-4f6e-b855-c550268ce08a",
    ],
)
def test_outside_demo_mode_a_template_id_that_is_not_a_uuid_is_refused(tmp_path: Path, typo: str) -> None:
    """Notify answers such an id with 400 ValidationError, which the sender takes for a wrong number or address and
    fails over to the patient's next channel: every text would go by email or as a paid letter."""
    environ = {"HUB_SECRET_KEY": KEY, "HUB_NOTIFY_API_KEY": "k", **template_environ()}
    environ |= {"HUB_NOTIFY__TEMPLATES__INVITATION_SMS": typo, "HUB_NOTIFY__TEMPLATES__NO_ANSWER_LETTER": "letter"}
    with pytest.raises(SettingsError) as refused:
        check_templates(load_settings(tmp_path / "absent.toml", environ=environ))
    assert str(refused.value).startswith(
        "Notify template ids are not UUIDs: HUB_NOTIFY__TEMPLATES__INVITATION_SMS, "
        "HUB_NOTIFY__TEMPLATES__NO_ANSWER_LETTER (expected "
    )
    assert "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" in str(refused.value)


def test_missing_and_mistyped_template_ids_are_named_together(tmp_path: Path) -> None:
    environ = {"HUB_SECRET_KEY": KEY, "HUB_NOTIFY_API_KEY": "k", **template_environ()}
    environ |= {"HUB_NOTIFY__TEMPLATES__CANCELLED_LETTER": "", "HUB_NOTIFY__TEMPLATES__CHANGED_SMS": "tpl-changed"}
    with pytest.raises(SettingsError) as refused:
        check_templates(load_settings(tmp_path / "absent.toml", environ=environ))
    message = str(refused.value)
    assert message.startswith("Notify template ids are missing: set HUB_NOTIFY__TEMPLATES__CANCELLED_LETTER; ")
    assert "not UUIDs: HUB_NOTIFY__TEMPLATES__CHANGED_SMS (" in message


def test_in_demo_mode_template_ids_are_not_checked(tmp_path: Path) -> None:
    """Nothing goes to Notify in demo mode, so any id will do there; the same ids are refused outside it."""
    environ = {"HUB_SECRET_KEY": KEY, "HUB_NOTIFY_API_KEY": "k", **template_environ(invitation_sms="tpl-x")}
    with pytest.raises(SettingsError, match="not UUIDs: HUB_NOTIFY__TEMPLATES__INVITATION_SMS "):
        check_templates(load_settings(tmp_path / "absent.toml", environ=environ))
    check_templates(load_settings(tmp_path / "absent.toml", environ={**environ, "HUB_DEMO": "true"}))


def test_a_worker_with_a_notify_key_and_missing_templates_will_not_start(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HUB_SECRET_KEY": KEY, "HUB_NOTIFY_API_KEY": "k"}
    env["HUB_DATABASE_URL"] = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "-m", "hub", "worker", "--once"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "Settings error: Notify template ids are missing" in done.stderr
    assert "HUB_NOTIFY__TEMPLATES__SECURITY_CODE_SMS" in done.stderr


def test_a_worker_with_a_mistyped_template_id_will_not_start(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HUB_SECRET_KEY": KEY, "HUB_NOTIFY_API_KEY": "k", **template_environ()}
    env["HUB_DATABASE_URL"] = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    env["HUB_NOTIFY__TEMPLATES__INVITATION_SMS"] = "f33517ff-2a88-4f6e-b855-c550268ce0"
    done = subprocess.run(
        [sys.executable, "-m", "hub", "worker", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Settings error: Notify template ids are not UUIDs: HUB_NOTIFY__TEMPLATES__INVITATION_SMS (" in done.stderr


# The NHS App's parts: off by default; switched on, what they need must be set


def test_the_nhs_app_is_off_by_default() -> None:
    settings = load_settings(environ={}, overrides={"secret_key": KEY})
    assert not settings.nhs_app.enabled and not settings.nhs_login.enabled
    assert not settings.nhs_app.record_service.url


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"nhs_app.enabled": True}, "HUB_NHS_APP__TOKEN_ISSUER"),
        ({"nhs_login.enabled": True}, "HUB_NHS_LOGIN__PRIVATE_KEY"),
        ({"nhs_app.record_service.url": "https://agg.test/records"}, "HUB_NHS_APP__RECORD_SERVICE__CLIENT_SECRET"),
    ],
)
def test_a_switched_on_part_names_what_it_lacks(overrides: dict[str, Any], missing: str) -> None:
    with pytest.raises(SettingsError, match=missing):
        load_settings(environ={}, overrides={"secret_key": KEY, **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nhs_app.hidden_clinics": ["Sexual health"]}, "ORG:name"),
        ({"nhs_login.warn_minutes": 10}, "less than"),
        ({"nhs_app.record_service.batch": 5001}, "5000"),
        ({"nhs_app.rate_per_second": 0}, "at least 1"),
        ({"nhs_login.private_key": "not a key"}, "PEM"),
    ],
)
def test_nhs_app_values_are_checked(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ={}, overrides={"secret_key": KEY, **overrides})


def test_hidden_clinics_come_from_the_environment_as_a_list() -> None:
    environ = {"HUB_NHS_APP__HIDDEN_CLINICS": "RAL:Sexual health, RAL:Termination of pregnancy"}
    settings = load_settings(environ=environ, overrides={"secret_key": KEY})
    assert settings.nhs_app.hidden_clinics == ["RAL:Sexual health", "RAL:Termination of pregnancy"]


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    settings = load_settings(environ={"HUB_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16, ::1", "HUB_DEMO": "true"})
    assert settings.trusted_proxies == ["10.0.0.5", "10.1.0.0/16", "::1"]
    with pytest.raises(SettingsError, match="trusted_proxies: 'proxy.internal'"):
        load_settings(environ={"HUB_TRUSTED_PROXIES": "proxy.internal", "HUB_DEMO": "true"})
