"""The per-clinic settings every FHIR R4 EMR plugin understands."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

# Minimum necessary: reading patients is always needed, writes only when turned on.
PATIENT_READ = "system/Patient.read"
APPOINTMENT_WRITE = "system/Appointment.write"
DOCUMENT_WRITE = "system/DocumentReference.write"


class FhirConfig(BaseModel):
    # Set by each vendor plugin's subclass: the EMR's name in errors and health checks.
    vendor: ClassVar[str]

    base_url: str = Field(pattern=r"^https?://", description="The FHIR R4 base address")
    client_id: str | None = Field(None, description="Client id of the backend app registration")
    private_key: SecretStr | None = Field(
        None, description="PEM private key whose public half the EMR knows (JWKS)"
    )
    key_id: str | None = Field(None, description="`kid` of the key in the published JWKS")
    algorithm: Literal["RS384", "ES384"] = Field("RS384", description="JWT assertion signature")
    client_secret: SecretStr | None = Field(
        None, description="Symmetric client secret, for servers that issue one instead of keys"
    )
    push_appointments: bool = Field(
        False, description="Push booked, rescheduled and cancelled sessions as FHIR Appointments"
    )
    push_documents: bool = Field(False, description="File patient documents as DocumentReferences")
    connect_timeout_seconds: float = Field(3.05, gt=0, le=30)
    # Below INTEGRATION_TIMEOUT_SECONDS (10 s), so a slow read fails as itself, not as a timeout.
    read_timeout_seconds: float = Field(8.0, gt=0, le=60)
    max_pages: int = Field(5, ge=1, le=50, description="Search result pages followed at most")

    @property
    def open_access(self) -> bool:
        """No credentials: an open (sandbox) endpoint, read-only (vendors that offer one)."""
        return bool(getattr(self, "open_sandbox", False))

    @property
    def scopes(self) -> str:
        wanted = [PATIENT_READ]
        if self.push_appointments:
            wanted.append(APPOINTMENT_WRITE)
        if self.push_documents:
            wanted.append(DOCUMENT_WRITE)
        return " ".join(wanted)

    @model_validator(mode="after")
    def _credentials_complete(self) -> FhirConfig:
        if self.open_access:
            if self.push_appointments or self.push_documents:
                raise ValueError("an open (no-auth) endpoint is read-only: turn pushes off")
            return self
        if not self.client_id:
            raise ValueError("client_id is required")
        if self.private_key is None and self.client_secret is None:
            raise ValueError("private_key (with key_id) or client_secret is required")
        if self.private_key is not None and not self.key_id:
            raise ValueError("key_id is required with private_key")
        return self
