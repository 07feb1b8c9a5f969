"""Per-task token parameters: a task's own scope, audience or resource over the connection's.

One app registration often serves several APIs (Entra ID's ``https://API/.default`` per
resource): the connection holds the client, each task names what it needs. The overrides become
part of the ``ClientConfig``, so each distinct set is its own cache identity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_oauthcc.auth.config import ClientConfig, parse_resources, parse_scope

TOKEN_PARAM_NAMES = ("scope", "audience", "resource")


@dataclass(frozen=True)
class TokenParams:
    """What a task asks for instead of the connection's values; ``None`` keeps the connection's.

    ``scope`` is a space-separated string or a list; ``resource`` one URI or a list.
    """

    scope: str | None = None
    audience: str | None = None
    resource: tuple[str, ...] | None = None

    @classmethod
    def of(
        cls,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        resource: str | Sequence[str] | None = None,
    ) -> TokenParams:
        """Validate task arguments (raises OAuthCCConfigError naming the argument)."""
        extras: dict[str, Any] = {}
        if scope is not None:
            extras["scope"] = list(scope) if isinstance(scope, tuple) else scope
        if resource is not None:
            extras["resource"] = list(resource) if isinstance(resource, tuple) else resource
        parsed_audience = None
        if audience is not None:
            from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError

            if not isinstance(audience, str):
                raise OAuthCCConfigError("audience", "must be a string")
            parsed_audience = audience.strip() or None
        return cls(
            scope=parse_scope(extras) if scope is not None else None,
            audience=parsed_audience,
            resource=parse_resources(extras) if resource is not None else None,
        )

    @classmethod
    def from_serialized(cls, data: Mapping[str, Any] | None) -> TokenParams:
        """From :meth:`serialize`'s form (what a trigger stores)."""
        data = data or {}
        return cls.of(data.get("scope"), data.get("audience"), data.get("resource"))

    def serialize(self) -> dict[str, Any]:
        """JSON-ready, only the overrides given (what a trigger stores)."""
        values: dict[str, Any] = {"scope": self.scope, "audience": self.audience}
        if self.resource is not None:
            values["resource"] = list(self.resource)
        return {k: v for k, v in values.items() if v is not None}

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.scope, self.audience, self.resource))

    def apply(self, config: ClientConfig) -> ClientConfig:
        """``config`` with these overrides: another token, under another cache key."""
        if not self:
            return config
        changes: dict[str, Any] = {}
        if self.scope is not None:
            changes["scope"] = self.scope
        if self.audience is not None:
            changes["audience"] = self.audience
        if self.resource is not None:
            changes["resource"] = self.resource
        return dataclasses.replace(config, **changes)
