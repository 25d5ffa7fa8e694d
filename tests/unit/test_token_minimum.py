"""RELAY_API_TOKENS' minimum length is enforced and said wherever the variable is explained: in its
help (and so in the generated docs/configuration.md) and in README.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import MIN_TOKEN_LENGTH, VARIABLES, ConfigError, load_settings

ROOT = Path(__file__).parents[2]
SAID = f"at least {MIN_TOKEN_LENGTH} characters"


def test_the_minimum_is_enforced_at_its_bound() -> None:
    good = "t" * MIN_TOKEN_LENGTH
    assert load_settings({"RELAY_API_TOKENS": f"{good}, {good}x"}).api_tokens == (good, good + "x")
    with pytest.raises(ConfigError, match=SAID) as refused:
        load_settings({"RELAY_API_TOKENS": f"{good},{good[1:]}"})
    assert good not in str(refused.value)


def test_the_minimum_is_documented() -> None:
    (tokens,) = (v for v in VARIABLES if v.name == "RELAY_API_TOKENS")
    assert SAID in tokens.help
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    assert SAID in next(line for line in configuration.splitlines() if "`RELAY_API_TOKENS`" in line)
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"`RELAY_API_TOKENS` (comma-separated) must be {SAID}" in readme
