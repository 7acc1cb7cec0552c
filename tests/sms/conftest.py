"""The inbound-SMS tests use the alert tests' world: a school, its principal and teacher, a partner,
signed Twilio webhooks (tests/alerts/conftest.py)."""

from tests.alerts.conftest import app_overrides, fake, partner, principal, school, signed, teacher  # noqa: F401
