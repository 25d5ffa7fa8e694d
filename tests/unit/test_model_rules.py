"""The model's rules have one source, ``service.wiro.model``: the relay's OpenAPI schema, the
command line's help and docs/api.md all state what it says, and its bounds are the ones the emulator
documents (numFrames 4n+1 from 5 to 161, scale 1 to 20, steps 1 to 100, fps 1 to 60)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from service.console import submit
from service.openapi import document
from service.wiro.model import FIELDS_BY_NAME, INPUT_FIELDS, help_text, rules_markdown

DOCS = Path(__file__).parents[2] / "docs"
OPTIONS = {
    "--prompt": "prompt",
    "--negative-prompt": "negativePrompt",
    "--resolution": "resolution",
    "--aspect-ratio": "aspectRatio",
    "--num-frames": "numFrames",
    "--scale": "scale",
    "--steps": "steps",
    "--fps": "fps",
    "--seed": "seed",
}


def test_the_bounds_are_the_emulators_documented_ones() -> None:
    bounds = {f.name: (f.minimum, f.maximum) for f in INPUT_FIELDS if f.minimum is not None}
    assert bounds == {"numFrames": (5, 161), "scale": (1, 20), "steps": (1, 100), "fps": (1, 60)}
    assert FIELDS_BY_NAME["numFrames"].frames


def test_the_openapi_schema_states_the_models_rules() -> None:
    schema = document()["components"]["schemas"]["WanInput"]
    assert set(schema["properties"]) == set(FIELDS_BY_NAME)
    assert schema["required"] == [f.name for f in INPUT_FIELDS if f.required]
    assert schema["additionalProperties"] is False
    for spec in INPUT_FIELDS:
        prop = schema["properties"][spec.name]
        assert prop.get("minimum") == spec.minimum, spec.name
        assert prop.get("maximum") == spec.maximum, spec.name
        assert prop.get("enum") == (list(spec.options) if spec.options else None), spec.name
        assert prop.get("maxLength") == spec.max_length, spec.name
        assert prop.get("default") == spec.default, spec.name
        assert prop["type"] == {"number": "integer", "float": "number"}.get(spec.kind, "string"), spec.name
        assert prop["description"] == help_text(spec.name), spec.name
    assert "4n+1" in schema["properties"]["numFrames"]["description"]


@pytest.mark.parametrize(("option", "name"), OPTIONS.items())
def test_submit_help_states_each_fields_rules(option: str, name: str) -> None:
    (param,) = (p for p in submit.params if option in p.opts)
    assert isinstance(param, click.Option)
    assert param.help == help_text(name)


def test_submit_help_says_the_true_limits() -> None:
    text = " ".join(CliRunner().invoke(submit, ["--help"]).output.split())
    assert "4n+1 from 5 to 161" in text
    assert "a number from 1 to 20" in text
    assert "241" not in text


def test_the_api_reference_lists_the_models_rules() -> None:
    listed = "\n".join(line.strip() for line in (DOCS / "api.md").read_text().splitlines())
    assert rules_markdown() in listed, "docs/api.md: paste service.wiro.model.rules_markdown()"
