"""Root mutation fields, one module per area."""

import strawberry

from schema.integrations import IntegrationMutations
from schema.mutations.admin import AdminMutations
from schema.mutations.auth import AuthMutations
from schema.mutations.patients import PatientMutations
from schema.mutations.sessions import SessionMutations


@strawberry.type
class Mutation(
    AuthMutations, AdminMutations, PatientMutations, SessionMutations, IntegrationMutations
):
    pass
