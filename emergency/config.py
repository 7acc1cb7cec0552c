"""Settings, read from the environment, with defaults that run on one laptop."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from limits import parse_many

KNOWN_DEFAULT_SECRETS = {
    "", "dev", "secret", "changeme", "change-me", "secret-key", "development",
    "dev-secret-key-not-for-production", "your-secret-key", "please-change-me",
}
DEV_SECRET = "dev-secret-key-not-for-production"
DEV_ENVS = frozenset({"development", "demo", "test"})
# The source checkout this package runs from (its playbooks/ and rules/ sit beside emergency/).
SOURCE_ROOT = Path(__file__).resolve().parent.parent


_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class ConfigError(Exception):
    """A missing or contradictory setting; the message is one sentence for the operator."""


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _number(name: str, value: str | None, default: float, cast=float):
    if value is None or value.strip() == "":
        return default
    try:
        number = cast(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{name} must be a number of zero or more, got {value!r}.")
    return number


def _looks_like_vapid_key(value: str) -> bool:
    """A raw P-256 private key, base64url: 43 characters (or a DER key, longer)."""
    return len(value) >= 43 and all(c.isalnum() or c in "-_=" for c in value)


@dataclass
class Config:
    """Every setting the service reads; see the README's Settings table."""

    DATABASE_URL: str = ""
    DATABASE_POOL_SIZE: int = 20  # PostgreSQL connections each process keeps open (see emergency.db.PoolSettings)
    DATABASE_MAX_OVERFLOW: int = 5  # extra connections a process may open at a peak (closed when given back)
    DATABASE_POOL_TIMEOUT: float = 30.0  # seconds a request waits for a free connection before failing
    REDIS_URL: str = ""
    SECRET_KEY: str = ""
    PUBLIC_BASE_URL: str = "http://127.0.0.1:5000"
    PLAYBOOKS_DIR: str = "playbooks"
    COMPLIANCE_RULES: str = "rules/new-york.yaml"
    ALERT_PROVIDER: str = "console"
    TWILIO_ACCOUNT_SID: str = ""
    TWILIO_AUTH_TOKEN: str = ""
    TWILIO_FROM_NUMBER: str = ""
    TWILIO_FROM_NUMBERS: str = ""  # a sender pool, comma separated; SMS_PER_SECOND is each number's rate
    TWILIO_MESSAGING_SERVICE_SID: str = ""
    TWILIO_API_BASE: str = ""
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = "text"  # text | json (one JSON object per line)
    METRICS_TOKEN: str = ""  # /metrics answers only with this bearer token; unset: /metrics is off
    METRICS_PORT: int = 0  # `emergency worker` serves its metrics on this port (0: not at all)
    ENV: str = "production"  # production | development | demo | test
    INSTANCE_PATH: str = "instance"
    DEFAULT_REGION: str = "US"
    TOKEN_TTL_HOURS: float = 12.0
    DISPATCHER: str = "thread"  # thread: inside the web process; off: run `emergency worker` instead
    DISPATCH_BATCH: int = 50
    DISPATCH_CONCURRENCY: int = 16
    SMS_PER_SECOND: float = 0.0  # 0 = no pacing by us
    CALLS_PER_SECOND: float = 1.0
    SEND_TIMEOUT_SECONDS: float = 15.0
    MAX_ATTEMPTS: int = 6
    DISPATCHER_LIVENESS_SECONDS: float = 5.0  # a dispatcher silent this long is dead: its claims are taken over
    POLL_AFTER_SECONDS: float = 180.0
    PRIVACY_RETENTION_DAYS: int = 30
    VAPID_PRIVATE_KEY: str = ""  # Web Push signing key; `emergency push keys` makes one
    VAPID_SUBJECT: str = ""  # mailto: or https: contact the push services may use
    PUSH_CONCURRENCY: int = 256  # Web Push requests in flight at once per dispatcher process
    STAFF_SMS_LINKS: bool = True  # staff texts end with a link that opens the run
    LIVE_SUMMARY_INTERVAL: float = 1.0  # seconds between a run's live roll-up summaries; 0 = every change
    ROLLUP_CACHE_SECONDS: float = 5.0  # longest reuse of a cached roll-up; 0 = no cache
    TRUSTED_PROXIES: int = 0  # proxies in front of the app whose X-Forwarded-For entries are believed
    LOGIN_LIMIT_PER_ACCOUNT: str = "5 per minute; 10 per 10 minutes; 20 per hour"
    LOGIN_LIMIT_PER_ADDRESS: str = "100 per minute; 1000 per hour"
    LIVE_SESSION_CHECK_SECONDS: float = 2.0  # how often live sockets are checked against their token (0: never)
    LIVE_AUTH_CACHE_SECONDS: float = 5.0  # a socket connect reuses a token's principal this long (0: never)
    TESTING: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> Config:
        """Build a Config from environment variables; unset ones keep their defaults."""
        env = dict(os.environ if environ is None else environ)
        values: dict = {}
        for f in fields(cls):
            if f.name == "extra" or f.name not in env:
                continue
            raw = env[f.name]
            if f.type in ("int",):
                values[f.name] = _number(f.name, raw, f.default, int)
            elif f.type in ("float",):
                values[f.name] = _number(f.name, raw, f.default, float)
            elif f.type in ("bool",):
                values[f.name] = _bool(raw)
            else:
                values[f.name] = raw.strip()
        values.update(overrides)
        return cls(**values)

    @property
    def dev_like(self) -> bool:
        return self.ENV in DEV_ENVS

    def resolved(self) -> Config:
        """Fill derived defaults and check consistency; raises ConfigError with one clear sentence."""
        if self.ENV not in {"production", "development", "demo", "test"}:
            raise ConfigError(f"ENV must be production, development, demo or test, got {self.ENV!r}.")
        if not self.DATABASE_URL:
            path = Path(self.INSTANCE_PATH).resolve() / "emergency.sqlite3"
            self.DATABASE_URL = f"sqlite:///{path}"
        if self.DATABASE_URL.startswith("postgres://"):
            self.DATABASE_URL = "postgresql+psycopg://" + self.DATABASE_URL[len("postgres://"):]
        elif self.DATABASE_URL.startswith("postgresql://"):
            self.DATABASE_URL = "postgresql+psycopg://" + self.DATABASE_URL[len("postgresql://"):]
        if not self.SECRET_KEY:
            if not self.dev_like:
                raise ConfigError(
                    "SECRET_KEY is required in production: set it to a long random string (for example "
                    "the output of `python -c 'import secrets; print(secrets.token_hex(32))'`).")
            self.SECRET_KEY = DEV_SECRET
        elif self.SECRET_KEY.strip().lower() in KNOWN_DEFAULT_SECRETS and not self.dev_like:
            raise ConfigError("SECRET_KEY is a well-known default value; set it to a long random string.")
        elif len(self.SECRET_KEY) < 16 and not self.dev_like:
            raise ConfigError("SECRET_KEY is too short; use at least 16 random characters.")
        if self.DATABASE_POOL_SIZE < 1:
            raise ConfigError(f"DATABASE_POOL_SIZE must be at least 1, got {self.DATABASE_POOL_SIZE}.")
        if self.ALERT_PROVIDER not in {"console", "twilio"}:
            raise ConfigError(f"ALERT_PROVIDER must be 'console' or 'twilio', got {self.ALERT_PROVIDER!r}.")
        if self.ALERT_PROVIDER == "twilio":
            missing = [n for n in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not getattr(self, n)]
            if missing:
                raise ConfigError(f"ALERT_PROVIDER=twilio needs {' and '.join(missing)}.")
            if not (self.TWILIO_FROM_NUMBER or self.TWILIO_FROM_NUMBERS or self.TWILIO_MESSAGING_SERVICE_SID):
                raise ConfigError("ALERT_PROVIDER=twilio needs TWILIO_FROM_NUMBER, TWILIO_FROM_NUMBERS or "
                                  "TWILIO_MESSAGING_SERVICE_SID.")
            if self.TWILIO_FROM_NUMBERS and (self.TWILIO_FROM_NUMBER or self.TWILIO_MESSAGING_SERVICE_SID):
                raise ConfigError("Set only one of TWILIO_FROM_NUMBERS, TWILIO_FROM_NUMBER and "
                                  "TWILIO_MESSAGING_SERVICE_SID, not several.")
            pool = [n.strip() for n in self.TWILIO_FROM_NUMBERS.split(",")]
            if self.TWILIO_FROM_NUMBERS and not all(_E164.match(n) for n in pool):
                raise ConfigError("TWILIO_FROM_NUMBERS must be E.164 numbers separated by commas, "
                                  "e.g. +12125550100,+12125550101.")
            if self.TWILIO_FROM_NUMBER and self.TWILIO_MESSAGING_SERVICE_SID:
                raise ConfigError("Set only one of TWILIO_FROM_NUMBER and TWILIO_MESSAGING_SERVICE_SID, "
                                  "not both.")
            if not self.PUBLIC_BASE_URL.startswith(("http://", "https://")):
                raise ConfigError("PUBLIC_BASE_URL must be the public https:// address Twilio calls back.")
        elif any(getattr(self, n) for n in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")) and not self.dev_like:
            raise ConfigError("TWILIO_* settings are set but ALERT_PROVIDER is 'console'; "
                              "set ALERT_PROVIDER=twilio or remove them.")
        if self.TWILIO_API_BASE and not self.TWILIO_API_BASE.startswith(("http://", "https://")):
            raise ConfigError("TWILIO_API_BASE must start with http:// or https://.")
        if self.REDIS_URL and not self.REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://.")
        if self.DISPATCHER_LIVENESS_SECONDS < 1:
            raise ConfigError("DISPATCHER_LIVENESS_SECONDS must be at least 1: dispatchers beat every fifth of it.")
        if self.DISPATCHER not in {"thread", "off"}:
            raise ConfigError(f"DISPATCHER must be 'thread' or 'off', got {self.DISPATCHER!r}.")
        if self.LOG_LEVEL.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {self.LOG_LEVEL!r}.")
        for name in ("LOGIN_LIMIT_PER_ACCOUNT", "LOGIN_LIMIT_PER_ADDRESS"):
            try:
                parse_many(getattr(self, name))
            except ValueError:
                raise ConfigError(f"{name} must be limits such as '5 per minute; 20 per hour', "
                                  f"got {getattr(self, name)!r}.") from None
        if self.LOG_FORMAT not in {"text", "json"}:
            raise ConfigError(f"LOG_FORMAT must be 'text' or 'json', got {self.LOG_FORMAT!r}.")
        if self.METRICS_TOKEN and len(self.METRICS_TOKEN) < 16 and not self.dev_like:
            raise ConfigError("METRICS_TOKEN is too short; use at least 16 random characters.")
        if self.METRICS_PORT and not self.METRICS_TOKEN:
            raise ConfigError("METRICS_PORT is set but METRICS_TOKEN is not: set a token so the metrics are "
                              "not open to anyone who reaches the port.")
        if self.METRICS_PORT > 65535:
            raise ConfigError(f"METRICS_PORT must be a port number (1-65535), got {self.METRICS_PORT}.")
        self.PUBLIC_BASE_URL = self.PUBLIC_BASE_URL.rstrip("/")
        self._resolve_bundled_files()
        self._resolve_push()
        return self

    def _resolve_bundled_files(self) -> None:
        """The default playbooks and compliance rules are paths relative to the working directory; started
        elsewhere from a source checkout, use the checkout's own (a set value is always kept as given)."""
        for name in ("PLAYBOOKS_DIR", "COMPLIANCE_RULES"):
            value = getattr(self, name)
            bundled = SOURCE_ROOT / value
            if value == getattr(Config, name) and not Path(value).exists() and bundled.exists():
                setattr(self, name, str(bundled))

    def _resolve_push(self) -> None:
        if not self.VAPID_SUBJECT:
            https = self.PUBLIC_BASE_URL.startswith("https://")
            self.VAPID_SUBJECT = self.PUBLIC_BASE_URL if https else "mailto:safety-office@localhost"
        if not self.VAPID_SUBJECT.startswith(("mailto:", "https://")):
            raise ConfigError("VAPID_SUBJECT must be a mailto: address or an https:// URL the push services "
                              f"can reach you at, got {self.VAPID_SUBJECT!r}.")
        if self.VAPID_PRIVATE_KEY and not _looks_like_vapid_key(self.VAPID_PRIVATE_KEY):
            raise ConfigError("VAPID_PRIVATE_KEY must be the base64url private key printed by "
                              "`emergency push keys`.")
        if self.PUSH_CONCURRENCY < 1:
            raise ConfigError("PUSH_CONCURRENCY must be at least 1.")
