"""Run's input rules for Wan2.2-I2V-A14B, refused the way Wiro refuses input (code 0).

Fields, kinds, defaults and options come from ``service.wiro.model`` (the seed). Messages:

- taken from Wiro's error reference (``markdown/error-reference.md`` in ``wiroai/Wiro-Docs``):
  ``Request parameter [{name}] required``, ``Request parameter [{name}] must be integer or float``,
  ``Request parameter [{name}] must be between {min} and {max}``;
- chosen here, in the same style, where Wiro documents none: ``... must be one of {options}`` (a
  select), ``... must be integer`` (a number with a fraction), ``... must be 4n+1`` (numFrames).

Bounds are chosen (the seed gives none): numFrames 5..161, steps 1..100, fps 1..60, scale 1..20;
``seed`` is text on the product page, so any integer text (or empty, for a random seed) is taken.
An omitted field, or JSON ``null``, takes the seed's default; a number, float or select field sent
empty is refused as missing, which is how a form with an empty ``numFrames`` meets ``required``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from service.wiro.model import INPUT_FIELDS, InputField, frames_ok

BOUNDS: dict[str, tuple[float, float]] = {
    "numFrames": (5, 161),
    "steps": (1, 100),
    "fps": (1, 60),
    "scale": (1.0, 20.0),
}
INVALID_BODY = "Request parameters are invalid."


def check_inputs(raw: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The task's parameters (every field, defaults filled, as strings) and Wiro's messages for
    every rule broken (empty when the input is acceptable)."""
    parameters: dict[str, str] = {}
    errors: list[str] = []
    for spec in INPUT_FIELDS:
        value = raw.get(spec.name)
        if value is None:
            if spec.required:
                errors.append(_required(spec.name))
            elif spec.default is not None:
                parameters[spec.name] = str(spec.default)
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            errors.append(INVALID_BODY)
            continue
        text = value.strip() if isinstance(value, str) else str(value)
        stored, error = _check_field(spec, text)
        if error is None:
            parameters[spec.name] = stored
        else:
            errors.append(error)
    return parameters, errors


def _check_field(spec: InputField, text: str) -> tuple[str, str | None]:
    """The field's stored value and, when the value breaks a rule, Wiro's message."""
    name = spec.name
    if not text and (spec.required or spec.kind in ("select", "number", "float")):
        return text, _required(name)
    if spec.kind == "select" and text not in spec.options:
        return text, f"Request parameter [{name}] must be one of {', '.join(spec.options)}"
    if spec.kind in ("number", "float"):
        return _check_number(spec, text)
    if name == "seed" and text and _integer(text) is None:
        return text, f"Request parameter [{name}] must be integer or float"
    return text, None


def _check_number(spec: InputField, text: str) -> tuple[str, str | None]:
    name = spec.name
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        return text, f"Request parameter [{name}] must be integer or float"
    if spec.kind == "number" and not number.is_integer():
        return text, f"Request parameter [{name}] must be integer"
    low, high = BOUNDS.get(name, (-math.inf, math.inf))
    if not low <= number <= high:
        return text, f"Request parameter [{name}] must be between {low:g} and {high:g}"
    if name == "numFrames" and not frames_ok(int(number)):
        return text, f"Request parameter [{name}] must be 4n+1"
    return (str(int(number)) if spec.kind == "number" else text), None


def _required(name: str) -> str:
    return f"Request parameter [{name}] required"


def _integer(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
