"""The delivery state machine of one email.

    not_sent                                    (terminal: nothing left the gateway)
    queued ──> sent ──> delivered ──> bounced   (a late bounce after acceptance)
      │          ├────> bounced
      │          └────> dropped
      └──> failed                               (dead-lettered: the provider refused)

Provider events may arrive before the outbox marks a message sent (the webhook can
beat our own commit), so `queued` may jump straight to delivered, bounced or dropped.
Any other move (e.g. a late `processed` event after `delivered`) is ignored.
"""

from __future__ import annotations

from gateway.notifications.models import EmailStatus as S

ALLOWED: dict[S, frozenset[S]] = {
    S.NOT_SENT: frozenset(),
    S.QUEUED: frozenset({S.SENT, S.DELIVERED, S.BOUNCED, S.DROPPED, S.FAILED}),
    S.SENT: frozenset({S.DELIVERED, S.BOUNCED, S.DROPPED}),
    S.DELIVERED: frozenset({S.BOUNCED}),
    S.BOUNCED: frozenset(),
    S.DROPPED: frozenset(),
    S.FAILED: frozenset(),
}


def can_move(current: str, new: str) -> bool:
    return S(new) in ALLOWED[S(current)]
