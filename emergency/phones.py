"""Phone numbers in one format: E.164, checked by the phonenumbers library."""

from __future__ import annotations

import phonenumbers


class InvalidPhone(ValueError):
    """The text is not a valid phone number."""


def normalise_phone(text: str, region: str = "US") -> str:
    """Return `text` as E.164 (+15551234567); raise InvalidPhone with a reason otherwise."""
    raw = (text or "").strip()
    if not raw:
        raise InvalidPhone("is empty")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"'{raw}' is not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"'{raw}' is not a valid phone number")
    if number.extension:
        # Dropping it would send the alert to a switchboard instead of the person.
        raise InvalidPhone(f"'{raw}' has an extension, which texts and calls cannot reach")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str | None) -> str | None:
    """+15551234567 -> +1••••••4567, for logs and partner-safe views."""
    if not e164:
        return e164
    if len(e164) <= 6:  # too short to show both ends without repeating digits
        return "•" * len(e164)
    return e164[:2] + "•" * (len(e164) - 6) + e164[-4:]
