"""JWT secret rotation: tokens signed with the previous secret work until the grace period ends;
new tokens are always signed with the current secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import ValidationError

from gateway.auth.principal import Principal
from gateway.auth.tokens import issue_access_token
from gateway.settings import load_settings
from tests.factories import PASSWORD, World
from tests.security.conftest import MakeClient

OLD, NEW = "old-secret-" + "o" * 60, "new-secret-" + "n" * 60
ME = "{ me { email } }"


def _old_token(user: object) -> str:
    principal = Principal(user_id=user.id, role=user.role, clinic_id=user.clinic_id)  # type: ignore[attr-defined]
    return issue_access_token(principal, OLD, 300)[0]


async def test_previous_secret_verifies_during_the_grace_period_only(
    make_client: MakeClient, world: World
) -> None:
    grace = datetime.now(UTC) + timedelta(minutes=20)
    rotating = await make_client(
        jwt_secret=NEW, jwt_previous_secret=OLD, jwt_previous_secret_until=grace
    )
    token = _old_token(world.a.counselor)
    assert (await rotating.data(ME, token=token))["me"]["email"] == "counselor@a.test"
    # Logins during the rotation get tokens signed with the new secret only.
    login = (
        await rotating.data(
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            {"e": "counselor@a.test", "p": PASSWORD},
        )
    )["login"]
    jwt.decode(login["accessToken"], NEW, algorithms=["HS256"], issuer="santana")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(login["accessToken"], OLD, algorithms=["HS256"], issuer="santana")
    # After the grace period the old secret is refused.
    ended = await make_client(
        jwt_secret=NEW,
        jwt_previous_secret=OLD,
        jwt_previous_secret_until=datetime.now(UTC) - timedelta(seconds=1),
    )
    body = await ended.execute(ME, token=token)
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED", "reason": "invalid"}
    # And without a previous secret at all, too.
    plain = await make_client(jwt_secret=NEW)
    assert (await plain.execute(ME, token=token))["errors"][0]["extensions"]["reason"] == "invalid"


def test_a_previous_secret_needs_an_end_to_its_grace_period() -> None:
    with pytest.raises(ValidationError, match="JWT_PREVIOUS_SECRET_UNTIL"):
        load_settings(jwt_secret=NEW, jwt_previous_secret=OLD)
