"""Plugins that break the contract, each in its own way (loaded through EntryPoint objects)."""

from __future__ import annotations

from pydantic import BaseModel

from gateway.integrations import (
    EmailMessage,
    Kind,
    PaymentRequest,
    PluginContext,
    PluginDeclaration,
    SentEmail,
    hookimpl,
)


class Empty(BaseModel):
    pass


def _declare(name: str, kind: Kind = Kind.EMAIL) -> PluginDeclaration:
    return PluginDeclaration(name=name, kind=kind, label=name, config_model=Empty)


class _Valid:
    @hookimpl
    async def validate_config(self, ctx: PluginContext) -> None:
        return None

    @hookimpl
    async def health_check(self, ctx: PluginContext) -> str:
        return "ok"


class SyncHook(_Valid):
    declaration = _declare("sync_hook")

    @hookimpl
    def send_email(self, ctx: PluginContext, message: EmailMessage) -> SentEmail:  # not async
        return SentEmail(provider_message_id="x")


class UnknownHook(_Valid):
    declaration = _declare("unknown_hook")

    @hookimpl
    async def send_email(self, ctx: PluginContext, message: EmailMessage) -> SentEmail:
        return SentEmail(provider_message_id="x")

    @hookimpl
    async def send_fax(self, ctx: PluginContext) -> None:
        return None


class NoDeclaration(_Valid):
    @hookimpl
    async def send_email(self, ctx: PluginContext, message: EmailMessage) -> SentEmail:
        return SentEmail(provider_message_id="x")


class WrongKind(_Valid):
    declaration = _declare("wrong_kind")

    @hookimpl
    async def send_email(self, ctx: PluginContext, message: EmailMessage) -> SentEmail:
        return SentEmail(provider_message_id="x")

    @hookimpl
    async def create_payment(self, ctx: PluginContext, payment: PaymentRequest) -> None:
        return None


class MissingRequired(_Valid):
    declaration = _declare("missing_required")  # an email plugin without send_email


class BadArgument(_Valid):
    declaration = _declare("bad_argument")

    @hookimpl
    async def send_email(
        self, ctx: PluginContext, message: EmailMessage, priority: int
    ) -> SentEmail:
        return SentEmail(provider_message_id="x")


class FineMail(_Valid):
    declaration = _declare("fine_mail")

    @hookimpl
    async def send_email(self, ctx: PluginContext, message: EmailMessage) -> SentEmail:
        return SentEmail(provider_message_id="fine")


sync_hook = SyncHook()
unknown_hook = UnknownHook()
no_declaration = NoDeclaration()
wrong_kind = WrongKind()
missing_required = MissingRequired()
bad_argument = BadArgument()
fine_mail = FineMail()
