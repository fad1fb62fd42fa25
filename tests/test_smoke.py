from tests.conftest import GraphQLClient
from tests.factories import World


async def test_me_returns_the_logged_in_user(client: GraphQLClient, world: World) -> None:
    data = await client.data("{ me { fullName role clinic { slug } } }", user=world.a.counselor)
    assert data["me"] == {
        "fullName": "Counselor a",
        "role": "COUNSELOR",
        "clinic": {"slug": "clinic-a"},
    }
