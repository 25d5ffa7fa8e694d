"""Request models: what POST /v1/tasks accepts, validated field by field.

The same pydantic models validate requests and generate the OpenAPI schemas, so the document cannot
drift from the code. JSON bodies are validated strictly (``"81"`` is not a number); multipart form
fields arrive as text and are read in lax mode, where ``"81"`` is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from service.wiro import model as seed

T = TypeVar("T", str, int, float)

MAX_METADATA_KEYS = 32
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_URL = seed.MAX_URL
_KEY = re.compile(r"[A-Za-z0-9_.\-]+")  # with fullmatch: "$" also matches before a final "\n"
_RULE_MESSAGES = {
    "required": "must not be empty",
    "option": "must be one of {options}",
    "number": "must be a number",
    "integer": "must be an integer",
    "range": "must be from {spec.minimum:g} to {spec.maximum:g}",
    "4n+1": "must be of the form 4n+1 (5, 9, ..., 81, ...)",
    "digits": "must be an integer of at most {spec.digits} digits",
}


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must not contain whitespace or control characters")
    return value


HttpUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL), AfterValidator(_http_url)]


def _wiro_rules(spec: seed.InputField) -> Callable[[T], T]:
    """Wiro's rules (the emulator's own check) on the value as Run's form will carry it."""

    def check(value: T) -> T:
        rule = spec.broken(str(value))
        if rule is not None:
            raise ValueError(_RULE_MESSAGES[rule].format(spec=spec, options=", ".join(spec.options)))
        return value

    return check


def _input(name: str) -> Any:
    """The pydantic constraints of one input, all from ``service.wiro.model``: the default, bounds,
    options and lengths for validation and the OpenAPI schema, then Wiro's rules as the emulator
    applies them (which also covers what a schema cannot say, such as 4n+1)."""
    spec = seed.FIELDS_BY_NAME[name]
    schema: dict[str, Any] = {"enum": list(spec.options)} if spec.options else {}
    field = Field(
        default=... if spec.required else spec.default,
        description=seed.help_text(name),
        ge=spec.minimum,
        le=spec.maximum,
        min_length=1 if spec.required else None,
        max_length=spec.max_length,
        pattern=seed.SEED_PATTERN if spec.digits is not None else None,
        allow_inf_nan=False if spec.kind == "float" else None,
        json_schema_extra=schema or None,
    )
    checks = [AfterValidator(_http_url)] if spec.url else []
    return [field, *checks, AfterValidator(_wiro_rules(spec))]


class WanInput(BaseModel):
    """The model's inputs for Wan-AI/Wan2.2-I2V-A14B, with the model page's defaults; every rule is
    ``service.wiro.model``'s."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    inputImageUrl: Annotated[str, *_input("inputImageUrl")]
    prompt: Annotated[str, *_input("prompt")]
    negativePrompt: Annotated[str, *_input("negativePrompt")]
    resolution: Annotated[str, *_input("resolution")]
    aspectRatio: Annotated[str, *_input("aspectRatio")]
    numFrames: Annotated[int, *_input("numFrames")]
    scale: Annotated[float, *_input("scale")]
    steps: Annotated[int, *_input("steps")]
    fps: Annotated[int, *_input("fps")]
    seed: Annotated[str, *_input("seed")]

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_as_text(cls, value: object) -> object:
        # The seed is a "text" field, but people (and the seed's own curl example) send numbers.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


if set(WanInput.model_fields) != set(seed.FIELDS_BY_NAME):  # pragma: no cover - caught at import
    raise RuntimeError("WanInput's fields are not service.wiro.model's")


def _metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if not (1 <= len(key) <= MAX_METADATA_KEY) or not _KEY.fullmatch(key):
            raise ValueError(f"key {key[:80]!r} must be 1-{MAX_METADATA_KEY} characters of A-Z a-z 0-9 _ . -")
        if len(item) > MAX_METADATA_VALUE:
            raise ValueError(f"value of {key!r} is longer than {MAX_METADATA_VALUE} characters")
    return value


Metadata = Annotated[dict[str, str], AfterValidator(_metadata)]


class TaskCreate(BaseModel):
    """A job for the relay: the model's input plus where to report it and how to find it later."""

    model_config = ConfigDict(extra="forbid")

    model: Literal["Wan-AI/Wan2.2-I2V-A14B"] = "Wan-AI/Wan2.2-I2V-A14B"
    input: WanInput
    webhook_url: HttpUrl | None = Field(default=None, description="Gets this task's events, signed.")
    metadata: Metadata = Field(default_factory=dict, description="Your own labels; filterable.")


EventType = Literal[
    "task.queued",
    "task.submitted",
    "task.running",
    "task.succeeded",
    "task.failed",
    "task.cancelled",
    "task.timed_out",
]


class SubscriptionCreate(BaseModel):
    """A subscriber: where to POST, which events, and (optionally) only for tasks with this metadata."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    event_types: list[EventType] | None = Field(default=None, description="All types when omitted.")
    metadata: Metadata = Field(default_factory=dict, description="Only tasks whose metadata has these pairs.")
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    enabled: bool = True


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    event_types: list[EventType] | None = None
    metadata: Metadata | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    enabled: bool | None = None


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: Annotated[float, Field(ge=0, le=30 * 86400, allow_inf_nan=False)] | None = Field(
        default=None,
        description="How long the old secret keeps signing; RELAY_WEBHOOK_SECRET_GRACE_SECONDS by default.",
    )


class Recover(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(
        description="Replay failed deliveries created since then (RFC 3339 or Unix seconds)."
    )
