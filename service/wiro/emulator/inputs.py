"""Run's input rules for Wan2.2-I2V-A14B, refused the way Wiro refuses input (code 0).

The fields, their defaults and every rule on them are ``service.wiro.model``'s (which says where each
comes from); this module only words the refusals. Messages:

- taken from Wiro's error reference (``markdown/error-reference.md`` in ``wiroai/Wiro-Docs``):
  ``Request parameter [{name}] required``, ``Request parameter [{name}] must be integer or float``,
  ``Request parameter [{name}] must be between {min} and {max}``;
- chosen here, in the same style, where Wiro documents none: ``... must be one of {options}`` (a
  select), ``... must be integer`` (a number with a fraction), ``... must be 4n+1`` (numFrames),
  ``... must be at most {n} digits`` (seed).

An omitted field, or JSON ``null``, takes the seed's default; a number, float or select field sent
empty is refused as missing, which is how a form with an empty ``numFrames`` meets ``required``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.wiro.model import INPUT_FIELDS, InputField, Rule

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
                errors.append(_message(spec, "required"))
            elif spec.default is not None:
                parameters[spec.name] = str(spec.default)
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            errors.append(INVALID_BODY)
            continue
        text = value.strip() if isinstance(value, str) else str(value)
        rule = spec.broken(text)
        if rule is None:
            parameters[spec.name] = str(int(float(text))) if spec.kind == "number" else text
        else:
            errors.append(_message(spec, rule))
    return parameters, errors


def _message(spec: InputField, rule: Rule) -> str:
    if rule == "option":
        what = f"must be one of {', '.join(spec.options)}"
    elif rule == "range":
        what = f"must be between {spec.minimum:g} and {spec.maximum:g}"
    elif rule == "digits":
        what = f"must be at most {spec.digits} digits"
    else:
        what = _FIXED[rule]
    return f"Request parameter [{spec.name}] {what}"


_FIXED: dict[Rule, str] = {
    "required": "required",
    "number": "must be integer or float",
    "integer": "must be integer",
    "4n+1": "must be 4n+1",
}
