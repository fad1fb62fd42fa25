"""Each GraphQL limit refuses an abusive request with its own code, and lets normal ones through."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from tests.factories import World
from tests.security.conftest import MakeClient

ME = "{ me { email } }"


def _sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


async def test_depth_aliases_tokens_and_size_each_have_a_code(
    make_client: MakeClient, world: World
) -> None:
    c = await make_client(
        graphql_max_aliases=5, graphql_max_tokens=60, graphql_max_document_bytes=600
    )
    admin = world.a.admin
    deep = (
        "{ me { clinic { patients { nodes { "
        + "sessions { patient { " * 6
        + "id"
        + " } }" * 6
        + " } } } } }"
    )
    body = await c.execute(deep, user=admin)
    assert body["errors"][0]["extensions"]["limit"] == "depth"
    assert body["errors"][0]["extensions"]["maxDepth"] == 12
    aliases = "{ " + " ".join(f"a{i}: me {{ email }}" for i in range(6)) + " }"
    body = await c.execute(aliases, user=admin)
    assert body["errors"][0]["extensions"]["code"] == "ALIAS_LIMIT_EXCEEDED"
    assert body["errors"][0]["extensions"]["maxAliases"] == 5
    assert (
        await c.error_code("{ me { " + "email " * 70 + "} }", user=admin) == "TOKEN_LIMIT_EXCEEDED"
    )
    padded = "# " + "x" * 700 + "\n" + ME  # comments are not tokens, but they are bytes
    assert await c.error_code(padded, user=admin) == "DOCUMENT_TOO_LARGE"
    # Within every limit the same client is served.
    # (Aliases inside one field: two root fields would share the request's DB session.)
    within = await c.data("{ me { a: email b: email } }", user=admin)
    assert within["me"] == {"a": "admin@a.test", "b": "admin@a.test"}


async def test_cost_multiplies_page_sizes_including_variables(
    make_client: MakeClient, world: World
) -> None:
    c = await make_client(graphql_max_cost=2000)
    query = """query($n: Int!, $m: Int!) { patients(first: $n) { nodes { id sessions(first: $m) {
        startsAt counselor { fullName } } } } }"""
    # 1 + 10 * (1 + 1 + 1 + 5 * 4) = 231: fine.
    ok = await c.data(query, {"n": 10, "m": 5}, user=world.a.admin)
    assert len(ok["patients"]["nodes"]) == 3
    body = await c.execute(query, {"n": 100, "m": 100}, user=world.a.admin)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["cost"] > 2000 and error["extensions"]["maxCost"] == 2000
    # Literal page sizes and argument defaults count the same way.
    literal = "{ patients(first: 100) { nodes { sessions(first: 100) { id } } } }"
    assert await c.error_code(literal, user=world.a.admin) == "QUERY_TOO_COMPLEX"


async def test_page_size_over_the_maximum_is_refused(make_client: MakeClient, world: World) -> None:
    c = await make_client()
    body = await c.execute("{ patients(first: 101) { nodes { id } } }", user=world.a.admin)
    assert body["errors"][0]["extensions"] == {"code": "VALIDATION", "field": "first"}


async def test_batches_run_in_order_up_to_the_cap(make_client: MakeClient, world: World) -> None:
    c = await make_client(graphql_max_batch=3)
    token = c.token_for(world.a.admin)
    headers = {"Authorization": f"Bearer {token}"}
    ok = await c.post([{"query": ME}, {"query": "{ clinic { slug } }"}], headers)
    assert ok.status_code == 200
    assert [r["data"] for r in ok.json()] == [
        {"me": {"email": "admin@a.test"}},
        {"clinic": {"slug": "clinic-a"}},
    ]
    too_many = await c.post([{"query": ME}] * 4, headers)
    assert too_many.status_code == 400
    ext = too_many.json()["errors"][0]["extensions"]
    assert ext["code"] == "BATCH_LIMIT_EXCEEDED" and ext["maxOperations"] == 3


async def test_request_body_over_the_limit_is_refused(
    make_client: MakeClient, world: World
) -> None:
    c = await make_client(graphql_max_body_bytes=2000)
    response = await c.post({"query": ME, "variables": {"junk": "x" * 5000}})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


async def test_slow_requests_are_stopped_at_the_timeout(
    make_client: MakeClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.services import users

    real = users.get_user

    async def slow(*args: object, **kwargs: object) -> object:
        await asyncio.sleep(5)
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    c = await make_client(graphql_timeout_seconds=0.2)
    monkeypatch.setattr(users, "get_user", slow)
    body = await c.execute(ME, user=world.a.admin)
    assert body["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
    assert body["data"] is None


async def test_production_hides_introspection_graphiql_and_suggestions(
    make_client: MakeClient, world: World
) -> None:
    dev = await make_client()
    prod = await make_client(production=True)
    intro = "{ __schema { queryType { name } } }"
    assert (await dev.data(intro))["__schema"]["queryType"]["name"] == "Query"
    body = await prod.execute(intro)
    assert body["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
    assert (await prod.data("{ __typename }")) == {"__typename": "Query"}  # clients still need it
    typo = "{ me { emial } }"
    assert "Did you mean" in (await dev.execute(typo, user=world.a.admin))["errors"][0]["message"]
    hidden = (await prod.execute(typo, token=prod.token_for(world.a.counselor)))["errors"][0]
    assert (
        "Did you mean" not in hidden["message"]
        and hidden["extensions"]["code"] == "GRAPHQL_VALIDATION"
    )
    page = await prod.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert (await dev.http.get("/graphql", headers={"Accept": "text/html"})).status_code == 200


async def test_automatic_persisted_queries(make_client: MakeClient, world: World) -> None:
    c = await make_client()
    token = {"Authorization": f"Bearer {c.token_for(world.a.admin)}"}
    ext = {"persistedQuery": {"version": 1, "sha256Hash": _sha(ME)}}
    miss = (await c.post({"extensions": ext}, token)).json()
    assert miss["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert miss["errors"][0]["message"] == "PersistedQueryNotFound"  # what Apollo clients look for
    registered = (await c.post({"query": ME, "extensions": ext}, token)).json()
    assert registered["data"] == {"me": {"email": "admin@a.test"}}
    by_hash = (await c.post({"extensions": ext}, token)).json()
    assert by_hash["data"] == {"me": {"email": "admin@a.test"}}
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    mismatch = (await c.post({"query": ME, "extensions": wrong}, token)).json()
    assert mismatch["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    prod = await make_client(production=True)
    off = (await prod.post({"extensions": ext})).json()
    assert off["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"


async def test_safelist_runs_only_listed_operations(
    make_client: MakeClient, world: World, tmp_path: Path
) -> None:
    listed = "query Me { me { email } }"
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": _sha(listed), "name": "Me", "type": "query", "body": listed}],
    }
    path = tmp_path / "safelist.json"
    path.write_text(json.dumps(manifest))
    c = await make_client(production=True, graphql_safelist_file=str(path))
    token = {"Authorization": f"Bearer {c.token_for(world.a.admin)}"}
    by_hash = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": _sha(listed)}}}
    assert (await c.post(by_hash, token)).json()["data"] == {"me": {"email": "admin@a.test"}}
    assert (await c.post({"query": listed}, token)).json()["data"] == {
        "me": {"email": "admin@a.test"}
    }
    other = (await c.post({"query": "{ me { email role } }"}, token)).json()
    assert other["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
    assert other["data"] is None


def test_a_safelist_entry_whose_hash_is_wrong_refuses_to_start(tmp_path: Path) -> None:
    from gateway.security.persisted_queries import load_safelist

    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"0" * 64: "{ me { email } }"}))
    with pytest.raises(ValueError, match="not the SHA-256"):
        load_safelist(str(path))
