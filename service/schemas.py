"""Request models: what POST /v1/tasks accepts, validated field by field.

The same pydantic models validate requests and generate the OpenAPI schemas, so the document cannot
drift from the code. JSON bodies are validated strictly (``"81"`` is not a number); multipart form
fields arrive as text and are read in lax mode, where ``"81"`` is.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from service.wiro import model as seed

MAX_METADATA_KEYS = 32
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_URL = 2048
MAX_PROMPT = 4000
_KEY = re.compile(r"[A-Za-z0-9_.\-]+")  # with fullmatch: "$" also matches before a final "\n"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("must not contain whitespace or control characters")
    return value


HttpUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL), AfterValidator(_http_url)]


def _frames(value: int) -> int:
    if not seed.frames_ok(value):
        raise ValueError("must be of the form 4n+1 (5, 9, ..., 81, ...)")
    return value


class WanInput(BaseModel):
    """The seed's inputs for Wan-AI/Wan2.2-I2V-A14B, with the seed's defaults."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    inputImageUrl: HttpUrl = Field(description="The input image; a URL Wiro can fetch.")
    prompt: Annotated[str, StringConstraints(max_length=MAX_PROMPT)] = seed.DEFAULT_PROMPT
    negativePrompt: Annotated[str, StringConstraints(max_length=MAX_PROMPT)] = seed.DEFAULT_NEGATIVE_PROMPT
    resolution: Literal["480P", "580P", "720P"] = "480P"
    aspectRatio: Literal["Default", "16:9", "9:16", "1:1"] = "Default"
    numFrames: Annotated[int, Field(ge=5, le=241), AfterValidator(_frames)] = 81
    scale: Annotated[float, Field(ge=0, le=20, allow_inf_nan=False)] = 5.0
    steps: Annotated[int, Field(ge=1, le=100)] = 25
    fps: Annotated[int, Field(ge=1, le=60)] = 16
    seed: Annotated[str, StringConstraints(pattern=r"^-?[0-9]{1,20}$")] = "42"

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_as_text(cls, value: object) -> object:
        # The seed is a "text" field, but people (and the seed's own curl example) send numbers.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


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
