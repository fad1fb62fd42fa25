"""Per-request dataloaders: nested fields cost one query per level, not per item.

Each loader applies the same permission filters as the services, so a nested
field never shows a row the caller could not fetch directly.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from functools import partial
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from aiodataloader import DataLoader
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from gateway.auth.permissions import (
    Action,
    allowed,
    clinic_filter,
    patient_filter,
    session_filter,
    user_filter,
)
from gateway.db.models import Clinic, CounselingSession, Patient, SessionStatus, User
from gateway.services import audit

if TYPE_CHECKING:
    from schema.context import GraphQLContext


class Loaders:
    def __init__(self, ctx: GraphQLContext) -> None:
        self._ctx = ctx
        self.clinic = DataLoader(self.fetch_clinics)
        self.user = DataLoader(self.fetch_users)
        self.patient = DataLoader(self.fetch_patients)
        self._sessions_of_patient: dict[
            tuple[int, bool, tuple[SessionStatus, ...], bool], DataLoader
        ] = {}
        # Look-ahead answers per selection (AST node ids live as long as the request).
        self.lookahead: dict[tuple[int, str], bool] = {}
        # GraphQL User objects built from rows this request already read (by row id).
        self.user_objects: dict[uuid.UUID, Any] = {}

    def sessions_of_patient(
        self,
        first: int,
        newest_first: bool,
        statuses: Sequence[SessionStatus] | None,
        with_counselor: bool = False,
    ) -> DataLoader:
        """Loads each patient's sessions: lists of CounselingSession, or with `with_counselor`
        lists of (session, counselor or None), the counselor read in the same statement."""
        key = (first, newest_first, tuple(statuses or ()), with_counselor)
        if key not in self._sessions_of_patient:
            self._sessions_of_patient[key] = DataLoader(
                partial(self.fetch_patient_sessions, params=key)
            )
        return self._sessions_of_patient[key]

    async def fetch_clinics(self, ids: list[uuid.UUID]) -> list[Clinic | None]:
        principal = self._ctx.require_principal()
        if not allowed(principal, Action.CLINIC_READ):
            return [None] * len(ids)
        rows = await self._ctx.db.scalars(
            select(Clinic).where(Clinic.id.in_(ids), clinic_filter(principal, Clinic.id))
        )
        found = {c.id: c for c in rows}
        return [found.get(i) for i in ids]

    async def fetch_users(self, ids: list[uuid.UUID]) -> list[User | None]:
        principal = self._ctx.require_principal()
        rows = await self._ctx.db.scalars(
            select(User).where(User.id.in_(ids), user_filter(principal))
        )
        found = {u.id: u for u in rows}
        return [found.get(i) for i in ids]

    async def fetch_patients(self, ids: list[uuid.UUID]) -> list[Patient | None]:
        principal = self._ctx.require_principal()
        rows = await self._ctx.db.scalars(
            select(Patient).where(Patient.id.in_(ids), patient_filter(principal))
        )
        found = {p.id: p for p in rows}
        for p in found.values():  # a nested patient is a read of the record too (audited)
            audit.record_read(
                self._ctx,
                "patient.read",
                clinic_id=p.clinic_id,
                target_type="patient",
                target_id=p.id,
            )
        return [found.get(i) for i in ids]

    def _ranked_sessions(
        self,
        patient_ids: list[uuid.UUID],
        first: int,
        newest_first: bool,
        statuses: Any,
        columns: Sequence[Any] = (CounselingSession,),
    ) -> tuple[Any, Any]:
        """Each patient's sessions (`columns` of them) numbered by a window function, one
        statement for the batch: the subquery and the condition that keeps the first `first`."""
        principal = self._ctx.require_principal()
        T = CounselingSession.__table__.c
        order = (T.starts_at.desc(), T.id.desc()) if newest_first else (T.starts_at, T.id)
        rank = func.row_number().over(partition_by=T.patient_id, order_by=order).label("rank")
        inner = select(*columns, rank).where(
            T.patient_id.in_(patient_ids), session_filter(principal)
        )
        if statuses:
            inner = inner.where(T.status.in_(statuses))
        ranked = inner.subquery()
        return ranked, ranked.c.rank <= first

    async def fetch_patient_sessions(
        self,
        patient_ids: list[uuid.UUID],
        params: tuple[int, bool, tuple[SessionStatus, ...], bool],
    ) -> list[list[Any]]:
        """ORM sessions per patient, or (session, counselor or None) pairs with_counselor."""
        first, newest_first, statuses, with_counselor = params
        ranked, kept = self._ranked_sessions(patient_ids, first, newest_first, statuses)
        row = aliased(CounselingSession, ranked)
        order = (ranked.c.patient_id, ranked.c.rank)
        grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
        if not with_counselor:
            for session in await self._ctx.db.scalars(select(row).where(kept).order_by(*order)):
                grouped[session.patient_id].append(session)
            return [grouped.get(pid, []) for pid in patient_ids]
        # The counselor comes along in the same statement, through the same filter
        # as the user loader: a counselor the caller may not see joins as NULL.
        principal = self._ctx.require_principal()
        joined = (
            select(row, User)
            .outerjoin(User, (User.id == row.counselor_id) & user_filter(principal))
            .where(kept)
            .order_by(*order)
        )
        for session, counselor in await self._ctx.db.execute(joined):
            grouped[session.patient_id].append((session, counselor))
        return [grouped.get(pid, []) for pid in patient_ids]

    async def fetch_patient_session_rows(
        self,
        patient_ids: list[uuid.UUID],
        params: tuple[int, bool, tuple[SessionStatus, ...], bool],
        columns: Collection[str] = (),
        counselor_columns: Collection[str] = (),
    ) -> list[list[Any]]:
        """The same rows as fetch_patient_sessions, for schema.compiled: built on the tables
        and run on the session's connection, so rows come back as plain Core rows (attribute
        access, no ORM identity map, instance state or ORM result processing), with only
        `columns` (and the keys) of the sessions and `counselor_columns` of the counselors.
        With with_counselor each item is (row, counselor or None), one counselor per user."""
        first, newest_first, statuses, with_counselor = params
        principal = self._ctx.require_principal()
        keep = {"id", "patient_id", "counselor_id", "clinic_id", *columns}
        S = [c for c in CounselingSession.__table__.c if c.name in keep]
        U = [c for c in User.__table__.c if c.name in {"id", *counselor_columns}]
        ranked, kept = self._ranked_sessions(patient_ids, first, newest_first, statuses, S)
        selected = [ranked.c[c.name] for c in S]
        query = select(*selected)
        if with_counselor:
            # Through the same filter as the user loader: one the caller may not see is NULL.
            query = (
                select(*selected, *(c.label(f"counselor__{c.name}") for c in U))
                .select_from(ranked)
                .outerjoin(User, (User.id == ranked.c.counselor_id) & user_filter(principal))
            )
        query = query.where(kept).order_by(ranked.c.patient_id, ranked.c.rank)
        result = await (await self._ctx.db.connection()).execute(query)
        grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
        if not with_counselor:
            for r in result.all():
                grouped[r.patient_id].append(r)
            return [grouped.get(pid, []) for pid in patient_ids]
        names = [(c.name, f"counselor__{c.name}") for c in U]
        counselors: dict[uuid.UUID, Any] = {}
        for r in result.all():
            counselor = None
            if r.counselor__id is not None:
                counselor = counselors.get(r.counselor__id)
                if counselor is None:
                    counselor = counselors[r.counselor__id] = SimpleNamespace(
                        **{name: getattr(r, label) for name, label in names}
                    )
            grouped[r.patient_id].append((r, counselor))
        return [grouped.get(pid, []) for pid in patient_ids]
