"""Key rotation: re-encrypt every value at rest under the first DATA_ENCRYPTION_KEYS key.

Procedure: put the new key first and keep the old one after it, run
`santana rotate-keys`, then drop the old key. Every column named `*_encrypted`
is covered (integration secrets, outbox payloads, counseling notes, TOTP
secrets, and whatever later tables follow the convention), in keyset batches,
each its own transaction so a large table does not hold one long lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Table, select, tuple_, update

import gateway.documents.models  # noqa: F401  (document keys: key_encrypted is re-wrapped)
import gateway.integrations.models  # noqa: F401  (registers the integration tables)
from gateway.crypto import DataCipher
from gateway.db.engine import Database
from gateway.db.models import Base
from gateway.db.tenancy import TenantScope

SUFFIX = "_encrypted"


def encrypted_columns() -> list[tuple[Table, Column[Any]]]:
    return [
        (table, column)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith(SUFFIX)
    ]


@dataclass
class RotationReport:
    rotated: dict[str, int] = field(default_factory=dict)


async def rotate_keys(
    database: Database, cipher: DataCipher, batch_size: int = 500
) -> RotationReport:
    report = RotationReport()
    scope = TenantScope.cross_clinic()
    for table, column in encrypted_columns():
        label = f"{table.name}.{column.name}"
        report.rotated[label] = 0
        key = list(table.primary_key.columns)
        last: tuple[Any, ...] | None = None
        while True:
            async with database.transaction(scope) as db:
                query = select(*key, column).where(column.is_not(None))
                if last is not None:
                    query = query.where(tuple_(*key) > tuple_(*last))
                rows = (await db.execute(query.order_by(*key).limit(batch_size))).all()
                for row in rows:
                    values: dict[str, Any] = {column.name: cipher.rotate(row[-1])}
                    if "updated_at" in table.columns:
                        values["updated_at"] = table.c.updated_at  # rotation is not an edit
                    match = [k == v for k, v in zip(key, row[:-1], strict=True)]
                    await db.execute(update(table).where(*match).values(values))
                report.rotated[label] += len(rows)
            if len(rows) < batch_size:
                break
            last = tuple(rows[-1][:-1])
    return report
