"""A local fake of the part of Razorpay's wire API the plugin uses, with Razorpay's signatures.

Serves the real `razorpay` SDK (JSON bodies, HTTP Basic key id/secret) and signs
checkout callbacks and webhooks like Razorpay. Used by the tests (served on a
local port) and, through `dev_fake_app()`, by the demo at /_fakes/pay_razorpay.

    GET  /v1/orders?receipt=…          find an order by our receipt
    POST /v1/orders                    create an order
    GET  /v1/orders/{id}
    GET  /v1/payments/{id}
    POST /v1/payments/{id}/refund      refund a captured payment
    POST /_test/orders/{id}/pay        the payer pays: {"outcome": "captured" | "failed",
                                       "webhook_url"?: …} -> checkout fields + signed events
"""

from __future__ import annotations

import asyncio
import base64
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

from plugins.pay_razorpay import signing

DEMO_KEY_ID = "rzp_test_demoLotusIvf"
DEMO_KEY_SECRET = "demo-key-secret-lotus-ivf"  # noqa: S105  (the local fake\'s demo credentials)
DEMO_WEBHOOK_SECRET = "demo-webhook-secret-lotus-ivf"  # noqa: S105  (the local fake\'s demo credentials)


def _error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "description": description}}, status_code=status)


@dataclass
class SignedEvent:
    body: bytes
    headers: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {"body": self.body.decode(), "headers": self.headers}


@dataclass
class FakeRazorpay:
    """State of one fake Razorpay. `accounts` maps key id -> key secret."""

    accounts: dict[str, str] = field(default_factory=lambda: {DEMO_KEY_ID: DEMO_KEY_SECRET})
    webhook_secret: str = DEMO_WEBHOOK_SECRET
    down: bool = False  # answer every API call with a 502, like an outage
    lose_next_response: bool = False  # create the next order, then answer 502 (a lost reply)
    delay_seconds: float = 0  # answer order requests this late, like a provider that hangs
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)  # what the SDK sent
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))  # type: ignore[type-arg]

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}{secrets.token_hex(4)}"

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/orders", self._orders, methods=["GET", "POST"]),
                Route("/v1/orders/{id}", self._get_order, methods=["GET"]),
                Route("/v1/payments/{id}", self._get_payment, methods=["GET"]),
                Route("/v1/payments/{id}/refund", self._refund, methods=["POST"]),
                Route("/_test/orders/{id}/pay", self._pay, methods=["POST"]),
            ]
        )

    def _account(self, request: Request) -> str | JSONResponse:
        if self.down:
            return _error(502, "GATEWAY_ERROR", "The gateway is not reachable.")
        try:
            scheme, encoded = request.headers.get("authorization", "").split(" ", 1)
            key_id, key_secret = base64.b64decode(encoded).decode().split(":", 1)
        except ValueError:
            key_id, key_secret, scheme = "", "", ""
        if scheme != "Basic" or self.accounts.get(key_id) != key_secret:
            return _error(401, "BAD_REQUEST_ERROR", "Authentication failed")
        return key_id

    async def _orders(self, request: Request) -> JSONResponse:
        account = self._account(request)
        if isinstance(account, JSONResponse):
            return account
        await asyncio.sleep(self.delay_seconds)
        if request.method == "GET":
            receipt = request.query_params.get("receipt")
            items = [
                self._public(o)
                for o in self.orders.values()
                if o["_account"] == account and (receipt is None or o["receipt"] == receipt)
            ]
            return JSONResponse({"entity": "collection", "count": len(items), "items": items})
        body = await request.json()
        self.requests.append({"path": "/v1/orders", "account": account, **body})
        if int(body.get("amount", 0)) < 100:
            return _error(400, "BAD_REQUEST_ERROR", "Order amount less than minimum amount allowed")
        order = {
            "id": self._id("order"),
            "entity": "order",
            "amount": int(body["amount"]),
            "amount_paid": 0,
            "amount_due": int(body["amount"]),
            "currency": body.get("currency", "INR"),
            "receipt": body.get("receipt"),
            "notes": body.get("notes") or {},
            "status": "created",
            "attempts": 0,
            "created_at": int(time.time()),
            "_account": account,
        }
        self.orders[order["id"]] = order
        if self.lose_next_response:
            self.lose_next_response = False
            return _error(502, "GATEWAY_ERROR", "The gateway did not answer in time.")
        return JSONResponse(self._public(order))

    async def _get_order(self, request: Request) -> JSONResponse:
        account = self._account(request)
        if isinstance(account, JSONResponse):
            return account
        order = self.orders.get(request.path_params["id"])
        if order is None or order["_account"] != account:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist")
        return JSONResponse(self._public(order))

    async def _get_payment(self, request: Request) -> JSONResponse:
        account = self._account(request)
        if isinstance(account, JSONResponse):
            return account
        payment = self.payments.get(request.path_params["id"])
        if payment is None or payment["_account"] != account:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist")
        return JSONResponse(self._public(payment))

    async def _refund(self, request: Request) -> JSONResponse:
        account = self._account(request)
        if isinstance(account, JSONResponse):
            return account
        payment = self.payments.get(request.path_params["id"])
        if payment is None or payment["_account"] != account:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist")
        body = await request.json() if await request.body() else {}
        amount = int(body.get("amount") or payment["amount"] - payment["amount_refunded"])
        if (
            payment["status"] not in ("captured", "refunded")
            or amount <= 0
            or (payment["amount_refunded"] + amount > payment["amount"])
        ):
            return _error(400, "BAD_REQUEST_ERROR", "The refund amount is invalid")
        payment["amount_refunded"] += amount
        if payment["amount_refunded"] >= payment["amount"]:
            payment["status"] = "refunded"
        refund = {
            "id": self._id("rfnd"),
            "entity": "refund",
            "amount": amount,
            "currency": payment["currency"],
            "payment_id": payment["id"],
            "status": "processed",
            "created_at": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        self._event("refund.processed", refund=refund, payment=self._public(payment))
        return JSONResponse(refund)

    # --- the payer's side and the webhooks it causes ------------------------------------

    async def _pay(self, request: Request) -> JSONResponse:
        order = self.orders.get(request.path_params["id"])
        if order is None:
            return _error(400, "BAD_REQUEST_ERROR", "The id provided does not exist")
        body = await request.json() if await request.body() else {}
        before = len(self.events)
        checkout = self.pay(order["id"], captured=body.get("outcome", "captured") == "captured")
        signed = [self.sign(event) for event in self.events[before:]]
        if body.get("webhook_url"):
            async with httpx.AsyncClient(timeout=10) as http:
                for event in signed:
                    await http.post(body["webhook_url"], content=event.body, headers=event.headers)
        return JSONResponse({"checkout": checkout, "events": [e.as_json() for e in signed]})

    def pay(self, order_id: str, *, captured: bool = True) -> dict[str, str]:
        """The payer completes (or fails) the checkout; returns the checkout's callback fields."""
        order = self.orders[order_id]
        order["attempts"] += 1
        payment = {
            "id": self._id("pay"),
            "entity": "payment",
            "amount": order["amount"],
            "currency": order["currency"],
            "order_id": order_id,
            "status": "captured" if captured else "failed",
            "captured": captured,
            "amount_refunded": 0,
            "error_code": None if captured else "BAD_REQUEST_ERROR",
            "error_reason": None if captured else "payment_failed",
            "notes": order["notes"],
            "created_at": int(time.time()),
            "_account": order["_account"],
        }
        self.payments[payment["id"]] = payment
        if captured:
            order.update(status="paid", amount_paid=order["amount"], amount_due=0)
            self._event("payment.captured", payment=self._public(payment))
        else:
            order["status"] = "attempted"
            self._event("payment.failed", payment=self._public(payment))
        key_secret = self.accounts[order["_account"]]
        return {
            "razorpay_payment_id": payment["id"],
            "razorpay_order_id": order_id,
            "razorpay_signature": signing.checkout_signature(key_secret, order_id, payment["id"]),
        }

    def _event(self, kind: str, **entities: dict[str, Any]) -> dict[str, Any]:
        event = {
            "entity": "event",
            "account_id": "acc_fake",
            "event": kind,
            "contains": list(entities),
            "payload": {name: {"entity": entity} for name, entity in entities.items()},
            "created_at": int(time.time()),
            "_id": self._id("evt"),
        }
        self.events.append(event)
        return event

    def sign(self, event: dict[str, Any], secret: str | None = None) -> SignedEvent:
        body = json.dumps({k: v for k, v in event.items() if not k.startswith("_")}).encode()
        return SignedEvent(
            body,
            {
                signing.SIGNATURE_HEADER: signing.hmac_hex(secret or self.webhook_secret, body),
                signing.EVENT_ID_HEADER: event["_id"],
                "Content-Type": "application/json",
            },
        )

    @staticmethod
    def _public(entity: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in entity.items() if not k.startswith("_")}


def dev_fake_app() -> Starlette:
    """The demo's Razorpay: knows the demo key, signs webhooks with the demo secret."""
    return FakeRazorpay().app()
