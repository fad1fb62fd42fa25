"""Root mutation fields, one module per area."""

import strawberry

from schema.documents import DocumentMutations
from schema.emr import EmrMutations
from schema.integrations import IntegrationMutations
from schema.mutations.admin import AdminMutations
from schema.mutations.auth import AuthMutations
from schema.mutations.patients import PatientMutations
from schema.mutations.sessions import SessionMutations
from schema.notifications import NotificationMutations
from schema.payments import PaymentMutations


@strawberry.type
class Mutation(
    AuthMutations,
    AdminMutations,
    PatientMutations,
    SessionMutations,
    IntegrationMutations,
    PaymentMutations,
    NotificationMutations,
    EmrMutations,
    DocumentMutations,
):
    pass
