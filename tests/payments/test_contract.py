"""Both payment plugins pass the plugin contract every Santana plugin passes (gateway.testing).

Their SDKs open their own connections, so the fakes are served on a local port.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import plugins.pay_razorpay.plugin as razorpay_plugin
import plugins.pay_stripe.plugin as stripe_plugin
from gateway.testing import PluginContractTests
from plugins.pay_razorpay import signing as razorpay_signing
from plugins.pay_razorpay.fake import FakeRazorpay
from plugins.pay_stripe import signing as stripe_signing
from plugins.pay_stripe.fake import FakeStripe
from tests.payments.conftest import serve

STRIPE_SECRETS = {"secret_key": "sk_test_contract_4eC39Hq", "webhook_secret": "whsec_contract_1a2b"}
REFUSED_STRIPE_KEY = "sk_test_refused_9z8y7x"
RAZORPAY_KEY_ID = "rzp_test_contract01"
RAZORPAY_SECRETS = {"key_secret": "rzp-contract-secret-77", "webhook_secret": "rzp-hook-5e6f"}


@cache
def stripe_url() -> str:
    fake = FakeStripe(
        webhook_secret=STRIPE_SECRETS["webhook_secret"], refused_keys={REFUSED_STRIPE_KEY}
    )
    return serve(fake.app())[0]


@cache
def razorpay_url() -> str:
    fake = FakeRazorpay(accounts={RAZORPAY_KEY_ID: RAZORPAY_SECRETS["key_secret"]})
    return serve(fake.app())[0]


class TestStripeContract(PluginContractTests):
    plugin = stripe_plugin
    secrets = STRIPE_SECRETS
    bad_secrets = {"secret_key": REFUSED_STRIPE_KEY}

    @property
    def config(self) -> dict[str, Any]:  # type: ignore[override]
        return {"api_base": stripe_url(), "publishable_key": "pk_test_contract"}

    def webhook_body(self, event_id: str) -> bytes:
        obj = {"object": "payment_intent", "id": "pi_contract", "status": "succeeded"}
        event = {"id": event_id, "object": "event", "type": "payment_intent.succeeded"}
        return json.dumps({**event, "data": {"object": obj}}).encode()

    def sign_webhook(self, body: bytes) -> dict[str, str]:
        signature = stripe_signing.sign(body, STRIPE_SECRETS["webhook_secret"])
        return {stripe_signing.HEADER: signature, "content-type": "application/json"}


class TestRazorpayContract(PluginContractTests):
    plugin = razorpay_plugin
    secrets = RAZORPAY_SECRETS
    bad_secrets = {"key_secret": "not-the-key-secret"}

    @property
    def config(self) -> dict[str, Any]:  # type: ignore[override]
        return {"key_id": RAZORPAY_KEY_ID, "api_base": razorpay_url()}

    def webhook_body(self, event_id: str) -> bytes:
        entity = {"id": "pay_contract", "order_id": "order_contract", "status": "captured"}
        return json.dumps(
            {
                "event": "payment.captured",
                "payload": {"payment": {"entity": entity}},
                "id": event_id,
            }
        ).encode()

    def sign_webhook(self, body: bytes) -> dict[str, str]:
        event_id = json.loads(body)["id"]
        return {
            razorpay_signing.SIGNATURE_HEADER: razorpay_signing.hmac_hex(
                RAZORPAY_SECRETS["webhook_secret"], body
            ),
            razorpay_signing.EVENT_ID_HEADER: event_id,
            "content-type": "application/json",
        }
