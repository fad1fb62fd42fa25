"""A local fake of the part of Stripe's wire API the plugin uses, with Stripe's signatures.

Serves the real `stripe` SDK (form-encoded requests, Bearer secret key, optional
`Stripe-Account`, `Idempotency-Key` replay) and produces webhook events signed
like Stripe's. Used by the tests (served on a local port) and, through
`dev_fake_app()`, by the demo at /_fakes/pay_stripe.

    GET  /v1/balance                       credentials check
    POST /v1/payment_intents               create (idempotent on Idempotency-Key)
    GET  /v1/payment_intents/{id}
    POST /v1/refunds                       refund a succeeded intent (idempotent)
    POST /_test/payment_intents/{id}/pay   the payer pays: {"outcome": "succeed" | "decline",
                                           "webhook_url"?: …} -> the signed events it caused
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from plugins.pay_stripe import signing

DEMO_SECRET_KEY = "sk_test_demo_santana_bright_futures"  # noqa: S105  (the local fake\'s demo credentials)
DEMO_PUBLISHABLE_KEY = "pk_test_demo_santana_bright_futures"
DEMO_WEBHOOK_SECRET = "whsec_demo_santana_bright_futures"  # noqa: S105  (the local fake\'s demo credentials)


def _error(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message, **extra}}, status_code=status)


def _nested(form: dict[str, str]) -> dict[str, Any]:
    """`metadata[session_id]=…` form keys back into nested dicts (one level is enough)."""
    out: dict[str, Any] = {}
    for key, value in form.items():
        if "[" in key and key.endswith("]"):
            outer, inner = key[:-1].split("[", 1)
            out.setdefault(outer, {})[inner] = value
        else:
            out[key] = value
    return out


@dataclass
class SignedEvent:
    body: bytes
    headers: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {"body": self.body.decode(), "headers": self.headers}


@dataclass
class FakeStripe:
    """State of one fake Stripe: intents, refunds, events. Any `sk_test_…` key is accepted
    unless refused; Connect accounts must be listed in `connect_accounts`."""

    webhook_secret: str = DEMO_WEBHOOK_SECRET
    refused_keys: set[str] = field(default_factory=set)
    connect_accounts: set[str] = field(default_factory=set)
    down: bool = False  # answer every API call with a 503, like an outage
    lose_next_response: bool = False  # do the next create, then answer 500 (a lost reply)
    delay_seconds: float = 0  # answer creates this late, like a provider that hangs
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)  # what the SDK sent
    _replays: dict[tuple[str, str], tuple[str, JSONResponse]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}{secrets.token_hex(4)}"

    # --- the wire API ---------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/balance", self._balance, methods=["GET"]),
                Route("/v1/payment_intents", self._create_intent, methods=["POST"]),
                Route("/v1/payment_intents/{id}", self._get_intent, methods=["GET"]),
                Route("/v1/refunds", self._create_refund, methods=["POST"]),
                Route("/_test/payment_intents/{id}/pay", self._pay, methods=["POST"]),
            ]
        )

    def _owner(self, request: Request) -> str | JSONResponse:
        """The account a request acts for (the key's own, or the Connect account)."""
        if self.down:
            return _error(503, "api_error", "Stripe is temporarily unavailable.")
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip()
        if not key.startswith("sk_test_") or key in self.refused_keys:
            return _error(401, "invalid_request_error", "Invalid API Key provided.")
        account = request.headers.get("stripe-account")
        if account is not None and account not in self.connect_accounts:
            return _error(403, "invalid_request_error", "No such connected account.")
        return account or key

    async def _balance(self, request: Request) -> JSONResponse:
        owner = self._owner(request)
        if isinstance(owner, JSONResponse):
            return owner
        return JSONResponse({"object": "balance", "available": [], "livemode": False})

    async def _idempotent(
        self, request: Request, owner: str, params: dict[str, Any], make: Any
    ) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        fingerprint = json.dumps(params, sort_keys=True)
        if key and (owner, key) in self._replays:
            seen, response = self._replays[(owner, key)]
            if seen != fingerprint:
                return _error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used "
                    "with the same parameters they were first used with.",
                )
            return JSONResponse(
                json.loads(bytes(response.body)),
                response.status_code,
                headers={"Idempotent-Replayed": "true"},
            )
        response = make()
        if key:
            self._replays[(owner, key)] = (fingerprint, response)
        if self.lose_next_response:
            self.lose_next_response = False
            return _error(500, "api_error", "An unknown error occurred.")
        return response

    async def _create_intent(self, request: Request) -> JSONResponse:
        owner = self._owner(request)
        if isinstance(owner, JSONResponse):
            return owner
        params = _nested({k: str(v) for k, v in (await request.form()).items()})
        self.requests.append({"path": "/v1/payment_intents", "owner": owner, **params})
        await asyncio.sleep(self.delay_seconds)
        try:
            amount = int(params["amount"])
            currency = str(params["currency"])
        except (KeyError, ValueError):
            return _error(400, "invalid_request_error", "Missing required param: amount.")

        def make() -> JSONResponse:
            intent_id = self._id("pi")
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": 0,
                "currency": currency,
                "description": params.get("description"),
                "metadata": params.get("metadata", {}),
                "status": "requires_payment_method",
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
                "latest_charge": None,
                "last_payment_error": None,
                "created": int(time.time()),
                "livemode": False,
                "_owner": owner,
            }
            self.intents[intent_id] = intent
            return JSONResponse(self._public(intent))

        return await self._idempotent(request, owner, params, make)

    async def _get_intent(self, request: Request) -> JSONResponse:
        owner = self._owner(request)
        if isinstance(owner, JSONResponse):
            return owner
        intent = self.intents.get(request.path_params["id"])
        if intent is None or intent["_owner"] != owner:
            return _error(404, "invalid_request_error", "No such payment_intent.")
        return JSONResponse(self._public(intent))

    async def _create_refund(self, request: Request) -> JSONResponse:
        owner = self._owner(request)
        if isinstance(owner, JSONResponse):
            return owner
        params = _nested({k: str(v) for k, v in (await request.form()).items()})
        intent = self.intents.get(str(params.get("payment_intent")))
        if "charge" in params:
            found = [i for i in self.intents.values() if i["latest_charge"] == params["charge"]]
            intent = found[0] if found else None
        if intent is None or intent["_owner"] != owner:
            return _error(404, "invalid_request_error", "No such payment_intent.")
        refunded = sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"]
        )
        amount = int(params.get("amount", intent["amount"] - refunded))
        if intent["status"] != "succeeded" or amount <= 0 or refunded + amount > intent["amount"]:
            return _error(400, "invalid_request_error", "Refund amount is invalid.")

        def make() -> JSONResponse:
            refund = {
                "id": self._id("re"),
                "object": "refund",
                "amount": amount,
                "payment_intent": intent["id"],
                "charge": intent["latest_charge"],
                "status": "succeeded",
                "currency": intent["currency"],
            }
            self.refunds[refund["id"]] = refund
            self._event("charge.refunded", self._charge(intent))
            return JSONResponse(refund)

        return await self._idempotent(request, owner, params, make)

    # --- the payer's side and the webhooks it causes ------------------------------------

    async def _pay(self, request: Request) -> JSONResponse:
        intent = self.intents.get(request.path_params["id"])
        if intent is None:
            return _error(404, "invalid_request_error", "No such payment_intent.")
        body = await request.json() if await request.body() else {}
        before = len(self.events)
        self.pay(intent["id"], succeed=body.get("outcome", "succeed") == "succeed")
        signed = [self.sign(event) for event in self.events[before:]]
        if body.get("webhook_url"):
            async with httpx.AsyncClient(timeout=10) as http:
                for event in signed:
                    await http.post(body["webhook_url"], content=event.body, headers=event.headers)
        return JSONResponse(
            {"intent": self._public(intent), "events": [e.as_json() for e in signed]}
        )

    def pay(self, intent_id: str, *, succeed: bool = True) -> dict[str, Any]:
        """The payer completes (or fails) the checkout; returns the event it caused."""
        intent = self.intents[intent_id]
        if succeed:
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            intent["latest_charge"] = self._id("ch")
            intent["last_payment_error"] = None
            return self._event("payment_intent.succeeded", self._public(intent))
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
        }
        return self._event("payment_intent.payment_failed", self._public(intent))

    def cancel(self, intent_id: str) -> dict[str, Any]:
        """The clinic cancels the intent in its dashboard: it can no longer be paid."""
        intent = self.intents[intent_id]
        intent["status"] = "canceled"
        return self._event("payment_intent.canceled", self._public(intent))

    def _charge(self, intent: dict[str, Any]) -> dict[str, Any]:
        refunded = sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"]
        )
        return {
            "id": intent["latest_charge"],
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": refunded,
            "refunded": refunded >= intent["amount"],
            "payment_intent": intent["id"],
            "currency": intent["currency"],
        }

    def _event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "id": self._id("evt"),
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "livemode": False,
            "api_version": "2025-01-27.acacia",
            "data": {"object": obj},
        }
        self.events.append(event)
        return event

    def sign(
        self, event: dict[str, Any], secret: str | None = None, timestamp: int | None = None
    ) -> SignedEvent:
        body = json.dumps(event).encode()
        header = signing.sign(body, secret or self.webhook_secret, timestamp)
        return SignedEvent(body, {signing.HEADER: header, "Content-Type": "application/json"})

    @staticmethod
    def _public(intent: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in intent.items() if not k.startswith("_")}


def dev_fake_app() -> Starlette:
    """The demo's Stripe: accepts the demo keys, signs webhooks with the demo secret."""
    return FakeStripe().app()
