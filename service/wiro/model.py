"""The inputs of Wan-AI/Wan2.2-I2V-A14B and every rule on them: the one definition that the emulator
(which refuses bad input the way Wiro does), the relay (which validates a job before it is stored and
describes it in /openapi.json) and the command line (whose help states it) all read.

Field names are Wiro's, camelCase, exactly as Run takes them. Where each rule comes from:

- The seed, Wiro's product page (``seed-wiro-wan2.2-i2v-a14b.txt``): the fields, their kinds
  (text, textarea, select, number, float), their defaults, the select options, and numFrames 4n+1
  ("The number should be 4n+1").
- ``WIRO_API.md``: inputImageUrl is required (a URL; a local file goes through File/Upload first).
- The emulator's documented behaviour (``docs/emulator.md``), where the seed gives no bound: numFrames
  5-161, scale 1-20, steps 1-100, fps 1-60; a number field takes no fraction; seed, a text field, is
  empty (Wiro picks one) or an integer of at most 20 digits.
- The relay's own limits, which Wiro does not state and the emulator does not apply (the relay is
  stricter, never looser): prompts at most ``MAX_PROMPT`` characters, and inputImageUrl an http(s)
  URL of at most ``MAX_URL`` characters.

``InputField.broken`` is Wiro's rules as one function of the value as Run's form carries it (text):
the emulator refuses what it names, and the relay runs it on each value as it will send it, so a
job the relay accepts is never refused by Run for its input.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["text", "textarea", "select", "number", "float"]
Rule = Literal["required", "option", "number", "integer", "range", "4n+1", "digits"]
"""The rule a value breaks: missing, not one of the options, not a number, not an integer, outside
the bounds, not 4n+1 (numFrames), more digits than a seed may have."""

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
SEED_DIGITS = 20
SEED_PATTERN = rf"^(-?[0-9]{{1,{SEED_DIGITS}}})?$"
MAX_PROMPT = 4000
MAX_URL = 2048
_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True, slots=True)
class InputField:
    """One input of the model: its Wiro name, kind, default, and the rules on its value.

    ``minimum``/``maximum`` bound a number or float field; ``frames`` asks for 4n+1; ``digits`` bounds
    an integer text (the seed). ``max_length`` and ``url`` are the relay's own limits (see above)."""

    name: str
    kind: FieldKind
    default: str | int | float | None
    about: str
    required: bool = False
    options: tuple[str, ...] = ()
    minimum: int | float | None = None
    maximum: int | float | None = None
    frames: bool = False
    digits: int | None = None
    max_length: int | None = None
    url: bool = False

    def broken(self, text: str) -> Rule | None:
        """The first of Wiro's rules that ``text``, the value as Run's form carries it, breaks."""
        text = text.strip()
        if not text:
            return "required" if self.required or self.kind in ("select", "number", "float") else None
        if self.kind == "select":
            return None if text in self.options else "option"
        if self.digits is not None:
            return _integer_text(text, self.digits)
        if self.kind not in ("number", "float"):
            return None
        try:
            number = float(text)
        except ValueError:
            return "number"
        if not math.isfinite(number):
            return "number"
        if self.kind == "number" and not number.is_integer():
            return "integer"
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            return "range"
        return "4n+1" if self.frames and not frames_ok(int(number)) else None

    def rule_text(self) -> str:
        """The rules in a few words, for help texts and the docs: ``4n+1 from 5 to 161``."""
        if self.options:
            return "one of " + ", ".join(self.options)
        if self.digits is not None:
            return f"an integer of at most {self.digits} digits, or empty for a random one"
        if self.url:
            return f"an http(s) URL Wiro can fetch, at most {self.max_length:,} characters"
        if self.max_length is not None:
            return f"at most {self.max_length:,} characters"
        words = "4n+1" if self.frames else "an integer" if self.kind == "number" else "a number"
        if self.minimum is not None and self.maximum is not None:
            words += f" from {self.minimum:g} to {self.maximum:g}"
        return words


INPUT_FIELDS: tuple[InputField, ...] = (
    InputField(
        "inputImageUrl", "text", None, "The input image.", required=True, max_length=MAX_URL, url=True
    ),
    InputField("prompt", "textarea", DEFAULT_PROMPT, "What the video should show.", max_length=MAX_PROMPT),
    InputField(
        "negativePrompt",
        "textarea",
        DEFAULT_NEGATIVE_PROMPT,
        "What the video should avoid.",
        max_length=MAX_PROMPT,
    ),
    InputField("resolution", "select", "480P", "Resolution.", options=RESOLUTIONS),
    InputField("aspectRatio", "select", "Default", "Aspect ratio.", options=ASPECT_RATIOS),
    InputField("numFrames", "number", 81, "Frames to generate.", minimum=5, maximum=161, frames=True),
    InputField("scale", "float", 5.0, "Guidance scale.", minimum=1, maximum=20),
    InputField("steps", "number", 25, "Sampling steps.", minimum=1, maximum=100),
    InputField("fps", "number", 16, "Frames per second.", minimum=1, maximum=60),
    InputField("seed", "text", "42", "Random seed.", digits=SEED_DIGITS),
)
FIELDS_BY_NAME = {f.name: f for f in INPUT_FIELDS}


def defaults() -> dict[str, str | int | float]:
    """The seed's defaults for every field that has one."""
    return {f.name: f.default for f in INPUT_FIELDS if f.default is not None}


def frames_ok(num_frames: int) -> bool:
    """The seed's rule for numFrames: 4n+1 (and at least one frame)."""
    return num_frames >= 1 and num_frames % 4 == 1


def help_text(name: str) -> str:
    """A field's help line: what it is, its rules and its default (the command line's options)."""
    spec = FIELDS_BY_NAME[name]
    rules = spec.rule_text()
    default = "" if spec.default is None else f"; default {spec.default}"
    if spec.kind == "textarea":
        default = "; default: the model page's"
    return f"{spec.about.rstrip('.')}{': ' + rules if rules else ''}{default}."


def rules_markdown() -> str:
    """The fields and their rules as a Markdown table (``docs/api.md`` holds it; a test compares)."""
    lines = ["| field | type | default | rule |", "| --- | --- | --- | --- |"]
    for spec in INPUT_FIELDS:
        default = f"`{spec.default}`"
        if spec.required or spec.kind == "textarea":
            default = "(required)" if spec.required else "the model page's"
        lines.append(f"| `{spec.name}` | {spec.kind} | {default} | {spec.rule_text()} |")
    return "\n".join(lines) + "\n"


def _integer_text(text: str, digits: int) -> Rule | None:
    if _INTEGER.fullmatch(text) is None:
        return "integer" if _is_number(text) else "number"
    return "digits" if len(text.removeprefix("-")) > digits else None


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
