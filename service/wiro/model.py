"""The inputs of Wan-AI/Wan2.2-I2V-A14B, as its Wiro product page (the seed) defines them.

One definition serves the emulator (which refuses bad input the way Wiro does) and the relay (which
validates a job before it is stored). Field names are Wiro's, camelCase, exactly as Run takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["text", "textarea", "select", "number", "float"]

DEFAULT_PROMPT = (
    "Cinematic medium shot, warm contrasting lighting. A man sits on a large industrial pipe, "
    "holding and reading a newspaper. The top of the newspaper catches the warm glow from nearby "
    "flames, which flicker naturally in the background. The firelight casts shifting highlights "
    "across the newspaper and the man's face while the flames move fluidly. The camera remains "
    "still, focusing on the subtle motion of the flames and the realistic play of light and shadow."
)
DEFAULT_NEGATIVE_PROMPT = (
    "bad quality, unrealistic flame motion, low detail in paper texture, unnatural lighting"
)
RESOLUTIONS = ("480P", "580P", "720P")
ASPECT_RATIOS = ("Default", "16:9", "9:16", "1:1")


@dataclass(frozen=True, slots=True)
class InputField:
    """One input of the model: its Wiro name, kind, default and allowed options."""

    name: str
    kind: FieldKind
    default: str | int | float | None
    required: bool = False
    options: tuple[str, ...] = ()


INPUT_FIELDS: tuple[InputField, ...] = (
    InputField("inputImageUrl", "text", None, required=True),
    InputField("prompt", "textarea", DEFAULT_PROMPT),
    InputField("negativePrompt", "textarea", DEFAULT_NEGATIVE_PROMPT),
    InputField("resolution", "select", "480P", options=RESOLUTIONS),
    InputField("aspectRatio", "select", "Default", options=ASPECT_RATIOS),
    InputField("numFrames", "number", 81),
    InputField("scale", "float", 5.0),
    InputField("steps", "number", 25),
    InputField("fps", "number", 16),
    InputField("seed", "text", "42"),
)
FIELDS_BY_NAME = {f.name: f for f in INPUT_FIELDS}


def defaults() -> dict[str, str | int | float]:
    """The seed's defaults for every field that has one."""
    return {f.name: f.default for f in INPUT_FIELDS if f.default is not None}


def frames_ok(num_frames: int) -> bool:
    """The seed's rule for numFrames: 4n+1 (and at least one frame)."""
    return num_frames >= 1 and num_frames % 4 == 1
