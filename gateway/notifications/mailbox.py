"""The development mailbox: captured emails as JSON files a developer can read.

Written by the `mail_devbox` plugin, by the SendGrid and Mailgun fakes of the demo,
and by the notification service for clinics without an email plugin (DEV_MAILBOX).
Files, not a table, so the web process and `santana worker` see the same mailbox.
One file per message id: a retried delivery overwrites its own file, never adds one.
Development only: it holds whole messages.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class MailboxEntry:
    id: str
    clinic_id: str | None
    via: str  # mail_devbox | mail_sendgrid (fake) | mail_mailgun (fake) | no provider
    to: list[str]
    subject: str
    text: str
    html: str | None = None
    sender: str | None = None
    reply_to: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    received_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


class Mailbox:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _path(self, entry_id: str) -> Path:
        return self.directory / f"{_SAFE.sub('_', entry_id)[:120]}.json"

    def put(self, entry: MailboxEntry) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half a message.
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(entry), out)
        os.replace(tmp, self._path(entry.id))

    def list(self, clinic_id: str | None = None, limit: int = 50) -> list[MailboxEntry]:
        """Newest first; only `clinic_id`'s messages when given."""
        if not self.directory.is_dir():
            return []
        entries: list[MailboxEntry] = []
        for path in self.directory.glob("*.json"):
            try:
                raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                entry = MailboxEntry(**raw)
            except (OSError, ValueError, TypeError):
                continue  # a foreign or damaged file is not a message
            if clinic_id is None or entry.clinic_id == clinic_id:
                entries.append(entry)
        entries.sort(key=lambda e: e.received_at, reverse=True)
        return entries[:limit]
