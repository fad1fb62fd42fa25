#!/bin/sh
# Each demo clinic takes one session payment end to end against the local provider fakes:
# Bright Futures through Stripe (settled by the signed webhook), Lotus IVF through Razorpay
# (the Checkout callback, verified, plus the webhook). Run it while `make run` serves.
#   sh docs/payments-demo.sh [gateway URL, default http://127.0.0.1:8000]
set -eu
G=${1:-http://127.0.0.1:8000}
TOKEN=
gql() {
  curl -sf "$G/graphql" -H "Content-Type: application/json" \
    ${TOKEN:+-H "Authorization: Bearer $TOKEN"} -d "$1"
}
pick() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
login() {
  gql "{\"query\":\"mutation { login(email: \\\"$1\\\", password: \\\"santana-demo-pass\\\") { accessToken } }\"}" \
    | pick 'd["data"]["login"]["accessToken"]'
}
unpaid_session() {
  gql '{"query":"{ sessions(first: 50, status: [SCHEDULED]) { nodes { id payment { status } } } }"}' \
    | pick 'next(n["id"] for n in d["data"]["sessions"]["nodes"] if n["payment"] is None)'
}
create() {
  gql "{\"query\":\"mutation { createSessionPayment(sessionId: \\\"$1\\\") { orderId clientSecret publicKey payment { id status amount { amount currency } } } }\"}"
}
status() {
  gql "{\"query\":\"{ payment(id: \\\"$1\\\") { status provider providerReference amount { amount currency } } }\"}"
}

echo "== Bright Futures pays through Stripe"
TOKEN=$(login admin@brightfutures.test)  # or the patient, for its own sessions
OUT=$(create "$(unpaid_session)")
echo "createSessionPayment: $OUT"
INTENT=$(echo "$OUT" | pick 'd["data"]["createSessionPayment"]["orderId"]')
PAYMENT=$(echo "$OUT" | pick 'd["data"]["createSessionPayment"]["payment"]["id"]')
# The payer pays in Stripe.js; the fake Stripe sends the signed payment_intent.succeeded.
curl -sf -X POST "$G/_fakes/pay_stripe/_test/payment_intents/$INTENT/pay" \
  -H "Content-Type: application/json" \
  -d "{\"outcome\": \"succeed\", \"webhook_url\": \"$G/webhooks/bright-futures/pay_stripe\"}" >/dev/null
echo "after the webhook:   $(status "$PAYMENT")"

echo "== Lotus IVF pays through Razorpay"
TOKEN=$(login admin@lotusivf.test)
OUT=$(create "$(unpaid_session)")
echo "createSessionPayment: $OUT"
ORDER=$(echo "$OUT" | pick 'd["data"]["createSessionPayment"]["orderId"]')
PAYMENT=$(echo "$OUT" | pick 'd["data"]["createSessionPayment"]["payment"]["id"]')
# The payer pays in Razorpay Checkout, whose handler receives these signed fields.
CHECKOUT=$(curl -sf -X POST "$G/_fakes/pay_razorpay/_test/orders/$ORDER/pay" \
  -H "Content-Type: application/json" \
  -d "{\"outcome\": \"captured\", \"webhook_url\": \"$G/webhooks/lotus-ivf/pay_razorpay\"}")
RZP_PAYMENT=$(echo "$CHECKOUT" | pick 'd["checkout"]["razorpay_payment_id"]')
RZP_SIGNATURE=$(echo "$CHECKOUT" | pick 'd["checkout"]["razorpay_signature"]')
gql "{\"query\":\"mutation { confirmRazorpayPayment(paymentId: \\\"$PAYMENT\\\", razorpayPaymentId: \\\"$RZP_PAYMENT\\\", razorpayOrderId: \\\"$ORDER\\\", razorpaySignature: \\\"$RZP_SIGNATURE\\\") { status } }\"}" >/dev/null
echo "after the callback:  $(status "$PAYMENT")"
