"""Platform alerts out through plugins: the `alert` hook of each plugin in ALERT_PLUGINS.

Registered as a notifier of gateway.ops.alerts. Every plugin is called concurrently
with the integration timeout; one that fails or hangs is logged and never delays
the others or the alert evaluator.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.integrations.errors import redact
from gateway.integrations.hub import IntegrationHub
from gateway.integrations.types import AlertNotice, PluginContext, _RedactingLogger

log = logging.getLogger("santana.integrations.alerting")


class AlertForwarder:
    def __init__(self, hub: IntegrationHub) -> None:
        self.hub = hub

    async def __call__(self, alert: Any) -> None:
        notice = AlertNotice(
            key=alert.key,
            severity=alert.severity,
            priority=alert.priority,
            title=alert.title,
            message=alert.message,
            state=alert.state,
            value=alert.value,
            threshold=alert.threshold,
            since=alert.since,
        )
        names = self.hub.settings.alert_plugin_names
        await asyncio.gather(*(self._send(name, notice) for name in names))

    async def _send(self, name: str, notice: AlertNotice) -> None:
        loaded = self.hub.manager.get(name)
        call = self.hub.manager.implementation(name, "alert")
        if loaded is None or call is None:
            log.warning("ALERT_PLUGINS names %r, which is not loaded or has no alert hook", name)
            return
        declaration = loaded.declaration
        secrets: list[str] = []
        try:
            values = self.hub.store.defaults.for_plugin(name)
            config = declaration.config_model.model_validate(values)
            secrets = [str(values[f]) for f in declaration.secret_fields() if values.get(f)]
            ctx = PluginContext(
                clinic_id=None,
                plugin=name,
                config=config,
                http=self.hub.http,
                log=_RedactingLogger(logging.getLogger(f"santana.plugins.{name}"), secrets),
            )
            await asyncio.wait_for(
                call(ctx=ctx, notice=notice), self.hub.settings.integration_timeout_seconds
            )
        except Exception as exc:  # a broken notifier must not stop the others
            log.warning("alert plugin %s failed: %s", name, redact(f"{exc!r}", secrets))
