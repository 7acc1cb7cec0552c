"""A person's devices that accept Web Push (RFC 8030): one row per browser subscription."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from emergency.db import Base, UTCDateTime
from emergency.timeutil import utcnow


class PushSubscription(Base):
    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    # The login that registered the device: logging that device out removes its subscription.
    token_id: Mapped[int | None] = mapped_column(ForeignKey("auth_tokens.id", ondelete="SET NULL"), index=True)
    # The push service's URL for this browser: a capability, so it is never shown back in full.
    endpoint: Mapped[str] = mapped_column(Text, unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))  # the browser's ECDH public key (base64url)
    auth: Mapped[str] = mapped_column(String(64))  # the shared authentication secret (base64url)
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
