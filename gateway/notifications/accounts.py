"""Account emails: the invitation (set your password) and the password reset link."""

from __future__ import annotations

from urllib.parse import urlencode

from gateway.db.models import User
from gateway.events import EventContext
from gateway.notifications.models import EmailMessageRecord
from gateway.notifications.render import Notification
from gateway.notifications.service import notify


def _link(ectx: EventContext, path: str, token: str) -> str:
    return f"{ectx.settings.frontend_url.rstrip('/')}/{path}?{urlencode({'token': token})}"


def _first_name(user: User) -> str:
    return (user.full_name.split() or ["there"])[0]


async def send_invitation(
    ectx: EventContext, user: User, token: str, expires_days: int
) -> EmailMessageRecord | None:
    if user.clinic_id is None:
        return None  # platform accounts have no clinic to send through
    return await notify(
        ectx,
        user.clinic_id,
        Notification.USER_INVITATION,
        to=user.email,
        first_name=_first_name(user),
        context={"link": _link(ectx, "accept-invitation", token), "expires_days": expires_days},
        user_id=user.id,
    )


async def send_password_reset(
    ectx: EventContext, user: User, token: str, expires_minutes: int
) -> EmailMessageRecord | None:
    if user.clinic_id is None:
        return None
    return await notify(
        ectx,
        user.clinic_id,
        Notification.PASSWORD_RESET,
        to=user.email,
        first_name=_first_name(user),
        context={"link": _link(ectx, "reset-password", token), "expires_minutes": expires_minutes},
        user_id=user.id,
    )
