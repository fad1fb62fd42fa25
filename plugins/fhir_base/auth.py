"""SMART Backend Services: token endpoint discovery, signed JWT assertions, cached tokens.

All synchronous (runs in the worker thread with the FHIR calls). Both caches are
per process and keyed so that two clinics share an entry only when they use the
very same server and credentials.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass

import jwt
import requests

from gateway.integrations import NotConfigured, ProviderRejected
from plugins.fhir_base.config import FhirConfig
from plugins.fhir_base.errors import from_response

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 300  # SMART Backend Services allows at most five minutes
DISCOVERY_TTL_SECONDS = 3600
# A token is renewed this long before the server says it expires (clock skew, slow calls),
# or a tenth of its lifetime for short-lived tokens.
TOKEN_EXPIRY_MARGIN_SECONDS = 60
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float


_lock = threading.Lock()
_token_urls: dict[str, tuple[str, float]] = {}
_tokens: dict[str, _Token] = {}


def clear_caches() -> None:
    with _lock:
        _token_urls.clear()
        _tokens.clear()


def _base(config: FhirConfig) -> str:
    return config.base_url.rstrip("/")


def token_url(session: requests.Session, config: FhirConfig, vendor: str) -> str:
    """The token endpoint: `.well-known/smart-configuration`, else the CapabilityStatement."""
    base = _base(config)
    with _lock:
        cached = _token_urls.get(base)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    url = _from_smart_configuration(session, base) or _from_capability(session, base, vendor)
    if not url:
        raise NotConfigured(f"{vendor} does not announce a token endpoint.")
    with _lock:
        _token_urls[base] = (url, time.monotonic() + DISCOVERY_TTL_SECONDS)
    return url


def _from_smart_configuration(session: requests.Session, base: str) -> str | None:
    response = session.get(
        f"{base}/.well-known/smart-configuration", headers={"Accept": "application/json"}
    )
    if response.status_code != 200:
        return None  # optional document: fall back to the CapabilityStatement
    try:
        endpoint = response.json().get("token_endpoint")
    except (ValueError, AttributeError):
        return None
    return endpoint if isinstance(endpoint, str) and endpoint else None


def _from_capability(session: requests.Session, base: str, vendor: str) -> str | None:
    response = session.get(f"{base}/metadata", headers={"Accept": "application/fhir+json"})
    if response.status_code >= 400:
        raise from_response(vendor, response)
    try:
        security = response.json()["rest"][0]["security"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    for extension in security.get("extension") or []:
        if extension.get("url") != OAUTH_URIS:
            continue
        for inner in extension.get("extension") or []:
            if inner.get("url") == "token" and inner.get("valueUri"):
                return str(inner["valueUri"])
    return None


def assertion(config: FhirConfig, audience: str, vendor: str) -> str:
    """A fresh signed client assertion: iss = sub = client id, aud = token URL, unique jti."""
    assert config.private_key is not None and config.client_id
    now = int(time.time())
    claims = {
        "iss": config.client_id,
        "sub": config.client_id,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECONDS,
    }
    try:
        return jwt.encode(
            claims,
            config.private_key.get_secret_value(),
            algorithm=config.algorithm,
            headers={"kid": config.key_id, "typ": "JWT"},
        )
    except (ValueError, TypeError, jwt.PyJWTError):
        # An unreadable PEM, or a key of the wrong type for the algorithm.
        raise NotConfigured(
            f"The {vendor} private key cannot sign {config.algorithm} assertions."
        ) from None


def _cache_key(config: FhirConfig) -> str:
    secret = config.private_key or config.client_secret
    material = "\n".join(
        [
            _base(config),
            config.client_id or "",
            config.key_id or "",
            config.scopes,
            secret.get_secret_value() if secret else "",
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()


def forget_token(config: FhirConfig) -> None:
    with _lock:
        _tokens.pop(_cache_key(config), None)


def access_token(session: requests.Session, config: FhirConfig, vendor: str) -> str:
    """A cached bearer token, or a new one from the client-credentials exchange."""
    key = _cache_key(config)
    with _lock:
        cached = _tokens.get(key)
    if cached and cached.renew_at > time.monotonic():
        return cached.value
    url = token_url(session, config, vendor)
    form = {"grant_type": "client_credentials", "scope": config.scopes}
    auth = None
    if config.private_key is not None:
        form["client_assertion_type"] = ASSERTION_TYPE
        form["client_assertion"] = assertion(config, url, vendor)
    else:
        assert config.client_secret is not None and config.client_id
        auth = (config.client_id, config.client_secret.get_secret_value())
    response = session.post(url, data=form, auth=auth, headers={"Accept": "application/json"})
    if response.status_code in (400, 401, 403):
        # invalid_client / invalid_grant: the registration or key does not match.
        raise NotConfigured(f"{vendor} refused the client credentials ({response.status_code}).")
    if response.status_code >= 400:
        raise from_response(vendor, response)
    try:
        body = response.json()
        value = str(body["access_token"])
        lifetime = float(body.get("expires_in", 300))
    except (ValueError, KeyError, TypeError):
        raise ProviderRejected(f"{vendor} answered the token request unreadably.") from None
    margin = min(TOKEN_EXPIRY_MARGIN_SECONDS, lifetime / 10)
    token = _Token(value, time.monotonic() + max(0.0, lifetime - margin))
    with _lock:
        _tokens[key] = token
    return value
