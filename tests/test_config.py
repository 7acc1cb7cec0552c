"""Settings: defaults that run on a laptop, and one clear sentence for every bad setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from emergency.config import DEV_SECRET, Config, ConfigError

STRONG_SECRET = "a-long-random-production-secret-0123456789"


def make(**values) -> Config:
    """A production config with a good secret, overridden by `values`."""
    settings = dict(ENV="production", SECRET_KEY=STRONG_SECRET)
    settings.update(values)
    return Config(**settings)


def twilio(**values) -> Config:
    settings = dict(ALERT_PROVIDER="twilio", TWILIO_ACCOUNT_SID="AC123", TWILIO_AUTH_TOKEN="token",
                    TWILIO_FROM_NUMBER="+19145550100", PUBLIC_BASE_URL="https://drills.example.org")
    settings.update(values)
    return make(**settings)


def assert_one_sentence(message: str) -> None:
    assert message.endswith(".")
    assert "\n" not in message
    assert message[0].isupper()


def test_default_database_is_sqlite_under_instance_path(tmp_path):
    config = make(INSTANCE_PATH=str(tmp_path / "instance")).resolved()

    expected = (tmp_path / "instance").resolve() / "emergency.sqlite3"
    assert f"sqlite:///{expected}" == config.DATABASE_URL


def test_explicit_database_url_is_kept():
    config = make(DATABASE_URL="sqlite:////var/lib/emergency/db.sqlite3").resolved()

    assert config.DATABASE_URL == "sqlite:////var/lib/emergency/db.sqlite3"


@pytest.mark.parametrize("url", ["postgres://u:p@db:5432/emergency", "postgresql://u:p@db:5432/emergency"])
def test_postgres_url_is_rewritten_to_psycopg_driver(url):
    config = make(DATABASE_URL=url).resolved()

    assert config.DATABASE_URL == "postgresql+psycopg://u:p@db:5432/emergency"


def test_secret_key_is_required_in_production():
    with pytest.raises(ConfigError) as caught:
        make(SECRET_KEY="").resolved()

    message = str(caught.value)
    assert "SECRET_KEY is required in production" in message
    assert "\n" not in message and message.endswith(".")


@pytest.mark.parametrize("secret", ["changeme", "dev", "secret", "ChangeMe", "change-me", DEV_SECRET])
def test_known_default_secret_is_refused_in_production(secret):
    with pytest.raises(ConfigError, match="well-known default"):
        make(SECRET_KEY=secret).resolved()


def test_short_secret_is_refused_in_production():
    with pytest.raises(ConfigError, match="too short"):
        make(SECRET_KEY="x7Gq2").resolved()


@pytest.mark.parametrize("env", ["development", "demo", "test"])
def test_empty_secret_is_allowed_outside_production(env):
    config = make(ENV=env, SECRET_KEY="").resolved()

    assert config.SECRET_KEY  # a development secret fills in, so Flask sessions still work


@pytest.mark.parametrize("env", ["development", "demo", "test"])
def test_known_default_secret_is_allowed_outside_production(env):
    assert make(ENV=env, SECRET_KEY="changeme").resolved().SECRET_KEY == "changeme"


def test_unknown_env_is_refused():
    with pytest.raises(ConfigError, match="ENV must be"):
        make(ENV="staging").resolved()


@pytest.mark.parametrize("missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"])
def test_twilio_provider_names_the_missing_credential(missing):
    with pytest.raises(ConfigError) as caught:
        twilio(**{missing: ""}).resolved()

    assert missing in str(caught.value)
    assert_one_sentence(str(caught.value))


def test_twilio_provider_needs_a_sender():
    with pytest.raises(ConfigError) as caught:
        twilio(TWILIO_FROM_NUMBER="", TWILIO_MESSAGING_SERVICE_SID="").resolved()

    assert "TWILIO_FROM_NUMBER" in str(caught.value)
    assert "TWILIO_MESSAGING_SERVICE_SID" in str(caught.value)


def test_twilio_provider_refuses_both_sender_settings():
    with pytest.raises(ConfigError) as caught:
        twilio(TWILIO_FROM_NUMBER="+19145550100", TWILIO_MESSAGING_SERVICE_SID="MG123").resolved()

    assert "TWILIO_FROM_NUMBER" in str(caught.value)
    assert "TWILIO_MESSAGING_SERVICE_SID" in str(caught.value)
    assert_one_sentence(str(caught.value))


@pytest.mark.parametrize("sender", [{"TWILIO_FROM_NUMBER": "+19145550100"},
                                    {"TWILIO_FROM_NUMBER": "", "TWILIO_MESSAGING_SERVICE_SID": "MG123"}])
def test_twilio_provider_with_exactly_one_sender_is_accepted(sender):
    assert twilio(**sender).resolved().ALERT_PROVIDER == "twilio"


def test_unknown_alert_provider_is_refused():
    with pytest.raises(ConfigError, match="ALERT_PROVIDER"):
        make(ALERT_PROVIDER="carrier-pigeon").resolved()


def test_twilio_credentials_with_console_provider_are_refused_in_production():
    with pytest.raises(ConfigError, match="ALERT_PROVIDER"):
        make(TWILIO_ACCOUNT_SID="AC123", TWILIO_AUTH_TOKEN="token").resolved()


@pytest.mark.parametrize("name", ["TOKEN_TTL_HOURS", "DISPATCH_BATCH", "MAX_ATTEMPTS", "SMS_PER_SECOND"])
def test_bad_number_in_numeric_setting_names_the_setting(name):
    with pytest.raises(ConfigError) as caught:
        Config.from_env({name: "lots"})

    assert name in str(caught.value)
    assert "'lots'" in str(caught.value)
    assert_one_sentence(str(caught.value))


def test_integer_setting_refuses_a_fraction():
    with pytest.raises(ConfigError, match="DISPATCH_BATCH"):
        Config.from_env({"DISPATCH_BATCH": "2.5"})


def test_empty_numeric_setting_keeps_its_default():
    assert Config.from_env({"MAX_ATTEMPTS": ""}).MAX_ATTEMPTS == Config.MAX_ATTEMPTS


def test_bad_log_level_is_refused():
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        make(LOG_LEVEL="LOUD").resolved()


def test_log_level_is_case_insensitive():
    assert make(LOG_LEVEL="debug").resolved().LOG_LEVEL == "debug"


@pytest.mark.parametrize("name, value", [("REDIS_URL", "localhost:6379"), ("TWILIO_API_BASE", "twilio.local"),
                                         ("DISPATCHER", "celery")])
def test_malformed_urls_and_choices_are_refused(name, value):
    with pytest.raises(ConfigError, match=name):
        make(**{name: value}).resolved()


def test_from_env_reads_variables_with_their_types():
    config = Config.from_env({
        "DATABASE_URL": " sqlite:////tmp/x.sqlite3 ", "SECRET_KEY": STRONG_SECRET, "ENV": "demo",
        "TOKEN_TTL_HOURS": "2.5", "DISPATCH_BATCH": "7", "TESTING": "yes", "LOG_LEVEL": "DEBUG",
        "UNRELATED": "ignored",
    })

    assert config.DATABASE_URL == "sqlite:////tmp/x.sqlite3"
    assert config.SECRET_KEY == STRONG_SECRET
    assert config.ENV == "demo"
    assert config.TOKEN_TTL_HOURS == 2.5
    assert config.DISPATCH_BATCH == 7 and isinstance(config.DISPATCH_BATCH, int)
    assert config.TESTING is True
    assert config.LOG_LEVEL == "DEBUG"


def test_from_env_keeps_defaults_for_unset_variables():
    config = Config.from_env({})

    assert config == Config()


def test_from_env_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://drills.example.org")

    assert Config.from_env().PUBLIC_BASE_URL == "https://drills.example.org"


def test_overrides_win_over_environment():
    assert Config.from_env({"ENV": "demo"}, ENV="test").ENV == "test"


def test_public_base_url_loses_trailing_slash():
    assert make(PUBLIC_BASE_URL="https://drills.example.org/").resolved().PUBLIC_BASE_URL == \
        "https://drills.example.org"


def test_instance_path_default_is_relative_to_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    config = make().resolved()

    assert Path(config.DATABASE_URL[len("sqlite:///"):]) == tmp_path.resolve() / "instance" / "emergency.sqlite3"


@pytest.mark.parametrize("name, value", [("TOKEN_TTL_HOURS", "-1"), ("SMS_PER_SECOND", "nan"),
                                         ("SEND_TIMEOUT_SECONDS", "inf"), ("MAX_ATTEMPTS", "-3")])
def test_negative_or_infinite_number_is_refused(name, value):
    with pytest.raises(ConfigError) as caught:
        Config.from_env({name: value})

    assert name in str(caught.value)
    assert_one_sentence(str(caught.value))


def test_a_sender_pool_is_accepted_and_split_into_numbers():
    from emergency.alerts.dispatcher import sender_pool

    config = twilio(TWILIO_FROM_NUMBER="", TWILIO_FROM_NUMBERS="+19145550100, +19145550101").resolved()
    assert sender_pool({"ALERT_PROVIDER": "twilio", "TWILIO_FROM_NUMBERS": config.TWILIO_FROM_NUMBERS}) == \
        ["+19145550100", "+19145550101"]


@pytest.mark.parametrize("settings", [
    {"TWILIO_FROM_NUMBERS": "+19145550100,+19145550101"},  # and TWILIO_FROM_NUMBER
    {"TWILIO_FROM_NUMBER": "", "TWILIO_FROM_NUMBERS": "+19145550100,9145550101"},
    {"TWILIO_FROM_NUMBER": "", "TWILIO_FROM_NUMBERS": "+19145550100", "TWILIO_MESSAGING_SERVICE_SID": "MG1"},
])
def test_a_sender_pool_with_a_bad_number_or_another_sender_is_refused(settings):
    with pytest.raises(ConfigError) as caught:
        twilio(**settings).resolved()
    assert "TWILIO_FROM_NUMBERS" in str(caught.value)
    assert_one_sentence(str(caught.value))


def test_dispatcher_liveness_below_a_second_is_refused():
    with pytest.raises(ConfigError, match="DISPATCHER_LIVENESS_SECONDS"):
        make(DISPATCHER_LIVENESS_SECONDS=0.5).resolved()
@pytest.mark.parametrize("name", ["LOGIN_LIMIT_PER_ACCOUNT", "LOGIN_LIMIT_PER_ADDRESS"])
def test_login_limits_must_be_limits(name):
    with pytest.raises(ConfigError, match=name) as caught:
        make(**{name: "lots"}).resolved()
    assert_one_sentence(str(caught.value))
    assert make(**{name: "3 per minute; 50 per day"}).resolved()


def test_trusted_proxies_is_read_as_a_number():
    assert Config.from_env({"TRUSTED_PROXIES": "2"}).TRUSTED_PROXIES == 2
    assert Config.from_env({}).TRUSTED_PROXIES == 0
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        Config.from_env({"TRUSTED_PROXIES": "all"})


def test_vapid_subject_must_be_a_contact_push_services_accept():
    with pytest.raises(ConfigError, match="VAPID_SUBJECT"):
        Config(ENV="test", VAPID_SUBJECT="safety@example.org").resolved()


def test_vapid_subject_defaults_to_the_https_base_url():
    assert Config(ENV="test", PUBLIC_BASE_URL="https://alerts.example.org").resolved().VAPID_SUBJECT == \
        "https://alerts.example.org"


def test_a_malformed_vapid_key_is_refused_at_start():
    with pytest.raises(ConfigError, match="VAPID_PRIVATE_KEY"):
        Config(ENV="test", VAPID_PRIVATE_KEY="not a key").resolved()


@pytest.mark.parametrize("values, match", [
    ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be"),
    ({"METRICS_PORT": 9100}, "METRICS_PORT is set but METRICS_TOKEN is not"),
    ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN is too short"),
    ({"METRICS_PORT": 70000, "METRICS_TOKEN": "x" * 32}, "METRICS_PORT must be a port number"),
])
def test_operations_settings_are_checked(values, match):
    with pytest.raises(ConfigError, match=match) as caught:
        make(**values).resolved()
    assert_one_sentence(str(caught.value))


def test_operations_settings_are_read_from_the_environment():
    config = Config.from_env({"LOG_FORMAT": "json", "METRICS_TOKEN": "t" * 20, "METRICS_PORT": "9100"})

    assert (config.LOG_FORMAT, config.METRICS_TOKEN, config.METRICS_PORT) == ("json", "t" * 20, 9100)


def test_started_outside_the_checkout_it_uses_the_checkouts_playbooks_and_rules(tmp_path, monkeypatch):
    """`emergency serve` from another directory: the defaults are relative paths that do not exist there."""
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(tmp_path)
    config = Config(ENV="development").resolved()
    assert Path(config.PLAYBOOKS_DIR) == repo / "playbooks"
    assert Path(config.COMPLIANCE_RULES) == repo / "rules" / "new-york.yaml"


def test_playbooks_and_rules_set_or_present_in_the_working_directory_are_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "playbooks").mkdir()
    config = Config(ENV="development", COMPLIANCE_RULES="mine.yaml").resolved()
    assert config.PLAYBOOKS_DIR == "playbooks" and config.COMPLIANCE_RULES == "mine.yaml"
