"""A clinic's plugin configuration: validation, platform defaults, secret encryption, masking.

Non-secret fields are stored as JSON; secret fields as one Fernet token
(DataCipher, so `santana rotate-keys` re-encrypts them). Platform defaults (a
JSON/TOML file, and environment variables such as EPIC_CLIENT_ID for a plugin
declaring env_prefix="EPIC_") fill fields a clinic leaves empty; they are read
at call time and never copied into a clinic's row.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from gateway.crypto import DataCipher
from gateway.errors import ValidationFailed
from gateway.integrations.types import PluginDeclaration

MASK = "********"


@dataclass(frozen=True)
class PlatformDefaults:
    """Operator-provided values per plugin: {plugin: {field: value}}."""

    values: dict[str, dict[str, Any]]

    @classmethod
    def load(
        cls,
        declarations: list[PluginDeclaration],
        file: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> PlatformDefaults:
        environ = os.environ if environ is None else environ
        values: dict[str, dict[str, Any]] = {}
        if file:
            values = {k: dict(v) for k, v in _read_file(Path(file)).items()}
        for declaration in declarations:
            if not declaration.env_prefix:
                continue
            for name in declaration.config_model.model_fields:
                env_value = environ.get(f"{declaration.env_prefix}{name}".upper())
                if env_value not in (None, ""):
                    values.setdefault(declaration.name, {})[name] = env_value
        return cls(values)

    def for_plugin(self, name: str) -> dict[str, Any]:
        return dict(self.values.get(name, {}))


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    raw = path.read_bytes()
    data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected a table per plugin name")
    return data


class ConfigStore:
    """Turns stored rows + defaults into a plugin's typed config, and input into rows."""

    def __init__(self, cipher: DataCipher, defaults: PlatformDefaults) -> None:
        self.cipher = cipher
        self.defaults = defaults

    # --- input from the API -----------------------------------------------------------

    def split_input(
        self,
        declaration: PluginDeclaration,
        config: dict[str, Any] | None,
        secrets: dict[str, Any] | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check that config holds only plain fields and secrets only secret ones."""
        fields = set(declaration.config_model.model_fields)
        secret = set(declaration.secret_fields())
        config, secrets = dict(config or {}), dict(secrets or {})
        for key in config:
            if key not in fields:
                raise ValidationFailed(
                    f"Unknown configuration field {key!r}.", field=f"config.{key}"
                )
            if key in secret:
                raise ValidationFailed(
                    f"{key!r} is secret: pass it in `secrets`.", field=f"config.{key}"
                )
        for key, value in secrets.items():
            if key not in secret:
                raise ValidationFailed(f"{key!r} is not a secret field.", field=f"secrets.{key}")
            if value is not None and not isinstance(value, str):
                raise ValidationFailed(f"Secret {key!r} must be a string.", field=f"secrets.{key}")
        return config, secrets

    def merged(
        self, declaration: PluginDeclaration, config: dict[str, Any], secrets: dict[str, str]
    ) -> dict[str, Any]:
        values = self.defaults.for_plugin(declaration.name)
        values.update({k: v for k, v in config.items() if v is not None})
        values.update({k: v for k, v in secrets.items() if v is not None})
        return values

    def build(
        self, declaration: PluginDeclaration, config: dict[str, Any], secrets: dict[str, str]
    ) -> BaseModel:
        """The plugin's typed config; errors name fields, never echo values."""
        values = self.merged(declaration, config, secrets)
        try:
            return declaration.config_model.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "config"
            # `msg` describes the rule; `input` (the value) is deliberately left out.
            raise ValidationFailed(
                f"Invalid configuration for {declaration.label}: {where}: {first['msg']}.",
                field=where,
                problems=len(exc.errors()),
            ) from None

    # --- secrets at rest ------------------------------------------------------------------

    def encrypt(self, secrets: dict[str, str]) -> str | None:
        clean = {k: v for k, v in secrets.items() if v is not None}
        return self.cipher.encrypt(json.dumps(clean, sort_keys=True)) if clean else None

    def decrypt(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        data = json.loads(self.cipher.decrypt(token))
        return {str(k): str(v) for k, v in data.items()}

    # --- what the API may show ---------------------------------------------------------------

    def masked(
        self, declaration: PluginDeclaration, secrets: dict[str, str]
    ) -> list[dict[str, Any]]:
        platform = self.defaults.for_plugin(declaration.name)
        out = []
        for name in declaration.secret_fields():
            source = "clinic" if name in secrets else "platform" if name in platform else None
            out.append(
                {
                    "name": name,
                    "is_set": source is not None,
                    "masked": MASK if source else None,
                    "source": source,
                }
            )
        return out

    def platform_fields(self, declaration: PluginDeclaration) -> list[str]:
        return sorted(self.defaults.for_plugin(declaration.name))


def secret_values(
    declaration: PluginDeclaration,
    model: BaseModel | None = None,
    secrets: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every secret string known for a call (clinic's and platform's), for redaction."""
    values = [str(v) for v in (secrets or {}).values() if v]
    if model is not None:
        for name in declaration.secret_fields():
            value = getattr(model, name, None)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
            elif isinstance(value, str):
                values.append(value)
    return values


def config_schema(declaration: PluginDeclaration) -> dict[str, Any]:
    """JSON Schema of the config, secret fields flagged `secret` and `writeOnly`."""
    schema = declaration.config_model.model_json_schema()
    for name in declaration.secret_fields():
        prop = schema.get("properties", {}).get(name)
        if prop is not None:
            prop.update({"secret": True, "writeOnly": True})
            prop.pop("default", None)
    return schema
