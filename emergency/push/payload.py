"""What a push notification carries, and the receipt that lets the device report on it.

The payload is encrypted for the device (RFC 8291) and kept under ~3 KB (push services refuse
more): run, school, action, directive and the drill flag, the message's own words, and never a
student's name (no template can contain one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from emergency.playbooks.templates import DRILL_BANNER

MAX_BODY = 600  # characters of message text; the whole payload stays far below the 4 KB limit
# Real emergencies: high urgency (wakes a phone in power saving) and a short life, because a
# lockdown notice that arrives ten minutes late is wrong by then, and SMS and a call follow.
REAL_URGENCY, REAL_TTL = "high", 120
DRILL_URGENCY, DRILL_TTL = "normal", 900
ACK_HINTS = ("Reply OK to confirm.",)


def title(mode: str, action: str, school: str) -> str:
    """A drill's title starts with the drill banner; a real one says the action first, in capitals."""
    if mode == "drill":
        return f"{DRILL_BANNER} {action}"
    return f"{action.upper()} — {school}"


def body_text(text: str, mode: str) -> str:
    """The message without what the title already says (the banner) or what only SMS can do (reply OK)."""
    if mode == "drill" and text.startswith(DRILL_BANNER):
        text = text[len(DRILL_BANNER):]
    for hint in ACK_HINTS:
        text = text.replace(hint, "")
    text = " ".join(text.split())
    return text if len(text) <= MAX_BODY else text[:MAX_BODY - 1] + "…"


def notification(*, run_id: int, school_id: int, school: str, action: str, directive: str, mode: str,
                 occasion: str, text: str, requires_ack: bool) -> dict:
    """The payload of one push, before the alert id and receipt are added at send time."""
    return {
        "v": 1, "run_id": run_id, "school_id": school_id, "school": school, "action": action,
        "directive": directive, "drill": mode == "drill", "occasion": occasion,
        "title": title(mode, action, school), "body": body_text(text, mode), "requires_ack": requires_ack,
        "url": f"/#/run/{run_id}",
    }


def delivery_options(payload: dict) -> tuple[str, int]:
    """(Urgency, TTL seconds) for a payload: real runs high and short-lived."""
    return (DRILL_URGENCY, DRILL_TTL) if payload.get("drill") else (REAL_URGENCY, REAL_TTL)


def receipt(secret: str, alert_id: int) -> str:
    """A proof, only inside the encrypted payload, that the caller received alert `alert_id`.

    It lets a service worker report delivery and acknowledge that one alert without a login token
    (a phone in a pocket may hold an expired one); it opens nothing else.
    """
    mac = hmac.new(secret.encode(), f"push-receipt:{alert_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def valid_receipt(secret: str, alert_id: int, candidate: str | None) -> bool:
    """Whether `candidate` is the receipt of `alert_id` (constant time)."""
    return bool(candidate) and hmac.compare_digest(receipt(secret, alert_id), str(candidate))
