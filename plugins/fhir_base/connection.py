"""One clinic's connection to its FHIR server: fhirclient on a bounded requests session.

fhirclient's own session waits forever; ours carries explicit (connect, read)
timeouts, attaches the bearer token only to the configured server's origin (a
hostile `next` link cannot collect it), and renews the token once on a 401.
fhirclient is synchronous: `run` executes the work in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from fhirclient.models.fhirabstractbase import FHIRValidationError
from fhirclient.server import (
    FHIRNotFoundException,
    FHIRPermissionDeniedException,
    FHIRServer,
    FHIRUnauthorizedException,
)

from gateway.integrations import NotConfigured
from plugins.fhir_base import auth
from plugins.fhir_base.config import FhirConfig
from plugins.fhir_base.errors import from_response, unreachable

T = TypeVar("T")


class NotFound(Exception):
    """The FHIR server answered 404 (the caller decides whether that is an error)."""


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


class BoundedSession(requests.Session):
    """Every request has a (connect, read) timeout; the token goes to one origin only."""

    def __init__(self, config: FhirConfig) -> None:
        super().__init__()
        self.timeout = (config.connect_timeout_seconds, config.read_timeout_seconds)
        self.origin = _origin(config.base_url)
        self.bearer: str | None = None
        self.extra_headers: dict[str, str] = {}

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        kwargs["allow_redirects"] = False  # a redirect must not carry the token elsewhere
        target = url.decode() if isinstance(url, bytes) else url
        if _origin(target) == self.origin:
            headers = dict(kwargs.get("headers") or {})
            if self.bearer and "Authorization" not in headers:
                headers["Authorization"] = f"Bearer {self.bearer}"
            headers.update(self.extra_headers)
            kwargs["headers"] = headers
        verb = method.decode() if isinstance(method, bytes) else method
        return super().request(verb, target, *args, **kwargs)


class FhirConnection:
    def __init__(self, config: FhirConfig, vendor: str) -> None:
        self.config = config
        self.vendor = vendor
        self.session = BoundedSession(config)
        # No client object: authorisation is ours (SMART Backend Services, not a user launch).
        self.server = FHIRServer(None, base_uri=config.base_url)
        self.server.session = self.session

    @property
    def base(self) -> str:
        return self.config.base_url.rstrip("/")

    def _authorise(self) -> None:
        if not self.config.open_access:
            self.session.bearer = auth.access_token(self.session, self.config, self.vendor)

    def _call(self, work: Callable[[FHIRServer], T]) -> T:
        self._authorise()
        try:
            return work(self.server)
        except FHIRUnauthorizedException:
            if self.config.open_access:
                raise
            # The token expired early or was revoked: one new token, one more try.
            auth.forget_token(self.config)
            self._authorise()
            return work(self.server)

    def call_sync(self, work: Callable[[FHIRServer], T]) -> T:
        """Run `work` with typed errors; 404 raises NotFound for the caller to judge."""
        try:
            return self._call(work)
        except FHIRNotFoundException:
            raise NotFound() from None
        except (FHIRUnauthorizedException, FHIRPermissionDeniedException) as exc:
            raise from_response(self.vendor, exc.response) from None
        except requests.HTTPError as exc:
            if exc.response is None:
                raise unreachable(self.vendor) from None
            raise from_response(self.vendor, exc.response) from None
        except requests.RequestException:
            raise unreachable(self.vendor) from None
        except FHIRValidationError:
            raise NotConfigured(
                f"{self.vendor} answered with a resource that is not valid FHIR R4."
            ) from None
        finally:
            self.session.close()

    async def call(self, work: Callable[[FHIRServer], T]) -> T:
        return await asyncio.to_thread(self.call_sync, work)
