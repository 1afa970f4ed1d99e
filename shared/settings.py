"""Rules the agent's and the controller's settings share: precedence, secrets, the broker URL.

Precedence, highest first, on both sides: keyword arguments (what a command
line passes), environment variables, the YAML file, field defaults. A flag
typed for one run beats the environment, which beats the file the box ships.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import yaml
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource

PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "change_me", "password", "secret", "admin", "test", "xxx"}
)
"""Values refused as secrets outside dev mode (compared stripped and lower-cased)."""


def is_placeholder(secret: SecretStr | None) -> bool:
    """Whether a set secret is empty or a well-known placeholder."""
    return secret is not None and secret.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS


def refuse_placeholders(settings: object, names: Iterable[str]) -> None:
    """Raise ValueError naming the first secret setting that is empty or a placeholder."""
    for name in names:
        if is_placeholder(getattr(settings, name)):
            raise ValueError(
                f"{name} is empty or a placeholder; set a real secret or enable dev_mode"
            )


def describe(exc: ValidationError) -> str:
    """Each error as ``field: reason``, without the input values (they may be secrets)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )


class SettingsFileError(ValueError):
    """A settings file that cannot be read as a mapping; the message names the file."""


def read_settings_file(path: Path) -> dict[str, Any]:
    """The YAML file's top-level mapping (empty file: no settings)."""
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise SettingsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:  # its message quotes the lines around: they may hold a secret
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SettingsFileError(f"{path}: not valid YAML{where} ({problem})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise SettingsFileError(f"{path}: expected a mapping of settings")
    return loaded or {}


class LayeredSettings(BaseSettings):
    """Base of both settings classes: keywords, then environment, then file values."""

    file_values: ClassVar[Mapping[str, Any]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keywords beat the environment, which beats the file's values."""
        return init_settings, env_settings, InitSettingsSource(settings_cls, dict(cls.file_values))

    @classmethod
    def layered(cls, file_values: Mapping[str, Any], **overrides: Any) -> Self:
        """Settings from a file's values under the environment under ``overrides``."""
        namespace = {"file_values": dict(file_values), "__module__": cls.__module__}
        with_file: type[Self] = type(cls.__name__, (cls,), namespace)
        return with_file(**overrides)


def check_broker_url(value: str) -> str:
    """``mqtt://host[:port]`` or ``mqtts://``; credentials go in their own settings, not logs."""
    parts = urlsplit(value)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError("must look like mqtt://host:port or mqtts://host:port")
    if parts.username or parts.password:
        raise ValueError("must not contain credentials; use mqtt_username and mqtt_password")
    try:
        parts.port  # noqa: B018  (urlsplit checks the port only when asked)
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    return value


@dataclass(frozen=True)
class BrokerAddress:
    """Where a broker URL points, with the scheme's default port."""

    host: str
    port: int
    tls: bool

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """Split a URL that passed :func:`check_broker_url`."""
        parts = urlsplit(url)
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls)
