"""A local FHIR R4 server for tests and the demo, speaking Epic's or Oracle Health's dialect.

It serves `metadata`, `.well-known/smart-configuration`, a token endpoint that
verifies SMART Backend Services assertions against each registered client's
public key (signature, iss = sub, aud, exp at most five minutes, unique jti),
Patient read and search with paged Bundles, Appointment create (conditional on
`If-None-Exist`) and update, and DocumentReference create. Patients are the
official HL7 R4 examples in `examples/`. Knobs let tests take it down, expire or
revoke tokens and count requests.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from fhirclient.models.appointment import Appointment
from fhirclient.models.documentreference import DocumentReference
from fhirclient.models.fhirabstractbase import FHIRValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

EXAMPLES = Path(__file__).parent / "examples"
FHIR_JSON = "application/fhir+json"
ALL_SCOPES = frozenset(
    {"system/Patient.read", "system/Appointment.write", "system/DocumentReference.write"}
)
MAX_ASSERTION_SECONDS = 300
SEARCH_PARAMS = {"family", "given", "birthdate", "identifier", "_count", "_offset"}


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())  # type: ignore[no-any-return]


def example_patients() -> dict[str, dict[str, Any]]:
    """The R4 example patients: `example` and the twelve of the general Bundle."""
    patients = {"example": example("patient-example.json")}
    for entry in example("patient-examples-general.json")["entry"]:
        patients[entry["resource"]["id"]] = entry["resource"]
    return patients


def outcome(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
    return JSONResponse(body, status, headers=headers, media_type=FHIR_JSON)


@dataclass
class Client:
    client_id: str
    keys: dict[str, Any]  # kid -> public key
    scopes: frozenset[str]
    secret: str | None = None


@dataclass
class IssuedToken:
    client_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass
class FakeFhir:
    vendor: str = "Epic"
    token_ttl: int = 3600
    # Oracle Health's open sandbox style: reads without a token.
    open_reads: bool = False
    # Epic answers a create with 201 + Location and no body.
    location_only: bool = False
    smart_configuration: bool = True
    down: bool = False
    delay_seconds: float = 0.0  # answers FHIR reads this late (timeout tests)
    page_size: int = 50  # the most entries one page holds, whatever `_count` asks
    next_base: str | None = None  # serve `next` links on another host (must not be followed)
    clients: dict[str, Client] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    seen_jti: set[str] = field(default_factory=set)
    patients: dict[str, dict[str, Any]] = field(default_factory=example_patients)
    appointments: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)

    # --- set-up --------------------------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        *,
        public_key_pem: str | bytes | None = None,
        key_id: str | None = None,
        scopes: frozenset[str] = ALL_SCOPES,
        secret: str | None = None,
    ) -> None:
        client = self.clients.setdefault(client_id, Client(client_id, {}, scopes, secret))
        client.scopes = scopes
        if public_key_pem is not None and key_id:
            pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
            client.keys[key_id] = load_pem_public_key(pem)

    def register_private_key(self, client_id: str, private_key_pem: str, key_id: str) -> None:
        """Trust the public half of `private_key_pem` (what publishing a JWKS achieves)."""
        public = load_pem_private_key(private_key_pem.encode(), password=None).public_key()
        self.clients.setdefault(client_id, Client(client_id, {}, ALL_SCOPES)).keys[key_id] = public

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _base(request: Request) -> str:
        # Where this app is mounted (the gateway serves it under /_fakes/<plugin>).
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return f"{request.url.scheme}://{request.url.netloc}{root}"

    def _authorised(self, request: Request, scope: str, read: bool) -> Response | None:
        if self.open_reads and read:
            return None
        header = request.headers.get("authorization", "")
        token = self.tokens.get(header[7:]) if header.lower().startswith("bearer ") else None
        if token is None or token.expires_at < time.time():
            return outcome(401, "login", "The access token is missing, expired or revoked.")
        if scope not in token.scopes:
            return outcome(403, "forbidden", f"The token does not grant {scope}.")
        return None

    def _unavailable(self) -> Response | None:
        if self.down:
            return outcome(503, "transient", "Down for maintenance.", {"Retry-After": "1"})
        return None

    async def _linger(self) -> None:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)

    def _note(self, request: Request) -> None:
        self.requests.append((request.method, request.url.path))

    # --- discovery and tokens ------------------------------------------------------------

    async def metadata(self, request: Request) -> Response:
        self._note(request)
        if refused := self._unavailable():
            return refused
        statement = example("capabilitystatement-example.json")
        statement["fhirVersion"] = "4.0.1"
        statement["software"] = {"name": f"Fake {self.vendor} FHIR"}
        statement["rest"][0]["security"] = {
            "service": [{"coding": [{"code": "SMART-on-FHIR"}]}],
            "extension": [
                {
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "token", "valueUri": f"{self._base(request)}/oauth2/token"}
                    ],
                }
            ],
        }
        return JSONResponse(statement, media_type=FHIR_JSON)

    async def smart(self, request: Request) -> Response:
        self._note(request)
        if not self.smart_configuration:
            return JSONResponse({"error": "not found"}, 404)
        return JSONResponse(
            {
                "token_endpoint": f"{self._base(request)}/oauth2/token",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
                "scopes_supported": sorted(ALL_SCOPES),
            }
        )

    def _client_from_assertion(self, assertion: str, audience: str) -> Client | str:
        try:
            header = jwt.get_unverified_header(assertion)
            issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return "unreadable assertion"
        client = self.clients.get(str(issuer))
        key = client.keys.get(str(header.get("kid"))) if client else None
        if client is None or key is None:
            return "unknown client or kid"
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=["RS384", "ES384"],
                audience=audience,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.PyJWTError as exc:
            return f"assertion refused: {type(exc).__name__}"
        if claims["sub"] != claims["iss"]:
            return "sub must equal iss"
        if claims["exp"] - time.time() > MAX_ASSERTION_SECONDS + 5:
            return "exp more than five minutes ahead"
        if claims["jti"] in self.seen_jti:
            return "jti replayed"
        self.seen_jti.add(claims["jti"])
        return client

    async def token(self, request: Request) -> Response:
        self._note(request)
        self.token_requests += 1
        if refused := self._unavailable():
            return refused
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        found: Client | str
        if form.get("client_assertion"):
            if form.get("client_assertion_type") != (
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            ):
                return JSONResponse({"error": "invalid_client"}, 400)
            audience = f"{self._base(request)}/oauth2/token"
            found = self._client_from_assertion(str(form["client_assertion"]), audience)
        else:
            found = self._client_from_basic(request)
        if isinstance(found, str):
            return JSONResponse({"error": "invalid_client", "error_description": found}, 401)
        requested = frozenset(str(form.get("scope") or "").split())
        granted = requested & found.scopes
        if not granted:
            return JSONResponse({"error": "invalid_scope"}, 400)
        value = secrets.token_urlsafe(24)
        self.tokens[value] = IssuedToken(found.client_id, granted, time.time() + self.token_ttl)
        return JSONResponse(
            {
                "access_token": value,
                "token_type": "bearer",
                "expires_in": self.token_ttl,
                "scope": " ".join(sorted(granted)),
            },
            headers={"Cache-Control": "no-store"},
        )

    def _client_from_basic(self, request: Request) -> Client | str:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return "no client authentication"
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return "unreadable basic credentials"
        client = self.clients.get(client_id)
        if (
            client is None
            or client.secret is None
            or not secrets.compare_digest(client.secret, secret)
        ):
            return "unknown client or wrong secret"
        return client

    # --- Patient ----------------------------------------------------------------------------

    @staticmethod
    def _matches(patient: dict[str, Any], params: dict[str, str]) -> bool:
        names = patient.get("name") or []
        if "family" in params and not any(
            str(n.get("family", "")).lower().startswith(params["family"].lower()) for n in names
        ):
            return False
        if "given" in params and not any(
            str(g).lower().startswith(params["given"].lower())
            for n in names
            for g in n.get("given") or []
        ):
            return False
        if "birthdate" in params and patient.get("birthDate") != params["birthdate"]:
            return False
        if "identifier" in params:
            system, _, value = params["identifier"].rpartition("|")
            if not any(
                i.get("value") == value and (not system or i.get("system") == system)
                for i in patient.get("identifier") or []
            ):
                return False
        return True

    async def search_patients(self, request: Request) -> Response:
        self._note(request)
        await self._linger()
        if refused := self._unavailable() or self._authorised(request, "system/Patient.read", True):
            return refused
        params = dict(request.query_params)
        unknown = set(params) - SEARCH_PARAMS
        if unknown:
            return outcome(400, "not-supported", "Unsupported search parameter.")
        if not set(params) - {"_count", "_offset"}:
            return outcome(400, "too-costly", "A patient search needs a parameter.")
        try:
            count = max(1, min(self.page_size, int(params.get("_count", "10"))))
            offset = max(0, int(params.get("_offset", "0")))
        except ValueError:
            return outcome(400, "invalid", "Paging parameters must be integers.")
        hits = [p for p in self.patients.values() if self._matches(p, params)]
        page = hits[offset : offset + count]
        base = self._base(request)
        links = [{"relation": "self", "url": f"{base}/Patient?{urlencode(params)}"}]
        if offset + count < len(hits):
            following = params | {"_offset": str(offset + count), "_count": str(count)}
            elsewhere = self.next_base or base
            links.append({"relation": "next", "url": f"{elsewhere}/Patient?{urlencode(following)}"})
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(hits),
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}/Patient/{p['id']}",
                    "resource": p,
                    "search": {"mode": "match"},
                }
                for p in page
            ],
        }
        return JSONResponse(bundle, media_type=FHIR_JSON)

    async def read_patient(self, request: Request) -> Response:
        self._note(request)
        await self._linger()
        if refused := self._unavailable() or self._authorised(request, "system/Patient.read", True):
            return refused
        patient = self.patients.get(request.path_params["id"])
        if patient is None:
            return outcome(404, "not-found", "No such Patient.")
        return JSONResponse(patient, media_type=FHIR_JSON)

    # --- writes -----------------------------------------------------------------------------

    def _created(
        self, request: Request, kind: str, resource: dict[str, Any], status: int
    ) -> Response:
        location = f"{self._base(request)}/{kind}/{resource['id']}/_history/1"
        if self.location_only:
            return Response(status_code=status, headers={"Location": location})
        return JSONResponse(resource, status, headers={"Location": location}, media_type=FHIR_JSON)

    def _existing(
        self, store: dict[str, dict[str, Any]], request: Request
    ) -> dict[str, Any] | None:
        condition = request.headers.get("if-none-exist", "")
        if not condition.startswith("identifier="):
            return None
        system, _, value = condition[len("identifier=") :].rpartition("|")
        for resource in store.values():
            for identifier in resource.get("identifier") or []:
                if identifier.get("system") == system and identifier.get("value") == value:
                    return resource
        return None

    async def _body(self, request: Request, model: Any) -> dict[str, Any] | Response:
        try:
            body = json.loads(await request.body())
            model(copy.deepcopy(body))  # strict R4 structure check
        except (ValueError, FHIRValidationError):
            return outcome(400, "structure", "The resource is not valid FHIR R4.")
        return body  # type: ignore[no-any-return]

    def _subject_known(self, body: dict[str, Any]) -> bool:
        references = [p.get("actor", {}).get("reference", "") for p in body.get("participant", [])]
        references.append(body.get("subject", {}).get("reference", ""))
        ids = [r.split("/", 1)[1] for r in references if r.startswith("Patient/")]
        return bool(ids) and all(i in self.patients for i in ids)

    async def create(self, request: Request, kind: str, model: Any, scope: str) -> Response:
        self._note(request)
        if refused := self._unavailable() or self._authorised(request, scope, False):
            return refused
        store = self.appointments if kind == "Appointment" else self.documents
        body = await self._body(request, model)
        if isinstance(body, Response):
            return body
        if body.get("id"):
            return outcome(400, "invalid", "A created resource must not carry an id.")
        if not self._subject_known(body):
            return outcome(422, "processing", "The referenced Patient does not exist.")
        existing = self._existing(store, request)
        if existing is not None:
            return self._created(request, kind, existing, 200)
        body["id"] = f"{'e' if self.vendor == 'Epic' else ''}{kind[:4].lower()}{len(store) + 1}"
        body["meta"] = {"versionId": "1"}
        store[body["id"]] = body
        return self._created(request, kind, body, 201)

    async def create_appointment(self, request: Request) -> Response:
        return await self.create(request, "Appointment", Appointment, "system/Appointment.write")

    async def create_document(self, request: Request) -> Response:
        return await self.create(
            request, "DocumentReference", DocumentReference, "system/DocumentReference.write"
        )

    async def update_appointment(self, request: Request) -> Response:
        self._note(request)
        if refused := self._unavailable() or self._authorised(
            request, "system/Appointment.write", False
        ):
            return refused
        key = request.path_params["id"]
        current = self.appointments.get(key)
        if current is None:
            return outcome(404, "not-found", "No such Appointment.")
        body = await self._body(request, Appointment)
        if isinstance(body, Response):
            return body
        if body.get("id") != key:
            return outcome(400, "invalid", "The resource id must match the address.")
        version = int(current.get("meta", {}).get("versionId", "1")) + 1
        body["meta"] = {"versionId": str(version)}
        self.appointments[key] = body
        return JSONResponse(body, media_type=FHIR_JSON)

    async def inspect_appointments(self, request: Request) -> Response:
        """Not FHIR: lets the demo show what reached the fake EMR."""
        return JSONResponse(list(self.appointments.values()))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/_test/appointments", self.inspect_appointments),
                Route("/metadata", self.metadata),
                Route("/.well-known/smart-configuration", self.smart),
                Route("/oauth2/token", self.token, methods=["POST"]),
                Route("/Patient", self.search_patients),
                Route("/Patient/{id}", self.read_patient),
                Route("/Appointment", self.create_appointment, methods=["POST"]),
                Route("/Appointment/{id}", self.update_appointment, methods=["PUT"]),
                Route("/DocumentReference", self.create_document, methods=["POST"]),
            ]
        )
