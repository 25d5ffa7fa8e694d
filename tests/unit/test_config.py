"""Settings: defaults, every bad value named by its variable, *_FILE secrets, nothing secret shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import VARIABLES, ConfigError, Settings, load_settings, reference_markdown


def test_defaults_match_the_contract() -> None:
    s = load_settings({})
    assert (s.host, s.port, s.public_url) == ("127.0.0.1", 8787, "http://127.0.0.1:8787")
    assert s.wiro_base_url == "https://api.wiro.ai/v1"
    assert s.database_url == "sqlite:///./data/relay.db"
    assert s.webhook_retry_schedule == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert s.api_tokens == ()
    assert s == Settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELAY_PORT", "eighty"),
        ("RELAY_PORT", "70000"),
        ("RELAY_PUBLIC_URL", "relay.local"),
        ("WIRO_BASE_URL", "ftp://wiro"),
        ("RELAY_DATABASE_URL", "postgres://x"),
        ("RELAY_API_TOKENS", "short"),
        ("RELAY_LOG_FORMAT", "xml"),
        ("RELAY_LOG_LEVEL", "loud"),
        ("RELAY_MAX_IN_FLIGHT", "-1"),
        ("RELAY_TASK_DEADLINE_SECONDS", "0"),
        ("RELAY_POLL_AFTER_SECONDS", "nan"),
        ("RELAY_WEBHOOK_RETRY_SCHEDULE", "1,-5"),
        ("RELAY_WEBHOOK_ALLOW_CIDRS", "10.0.0.0/33"),
        ("RELAY_ALLOW_UNAUTHENTICATED", "maybe"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value})
    assert caught.value.variable == name
    assert str(caught.value).startswith(f"{name}: ")


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"RELAY_API_TOKENS": "tiny-secret"})
    assert "tiny-secret" not in str(caught.value)
    s = load_settings({"WIRO_API_KEY": "k-123", "WIRO_API_SECRET": "s-456", "RELAY_SECRET": "r-789"})
    assert not {"k-123", "s-456", "r-789"} & set(repr(s).replace("'", " ").split())


def test_file_variants_win(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("from-file\n")
    s = load_settings({"WIRO_API_KEY": "from-env", "WIRO_API_KEY_FILE": str(tmp_path / "key")})
    assert s.wiro_api_key == "from-file"
    with pytest.raises(ConfigError) as caught:
        load_settings({"WIRO_API_SECRET_FILE": str(tmp_path / "missing")})
    assert caught.value.variable == "WIRO_API_SECRET_FILE"


def test_every_variable_has_help_and_a_valid_default() -> None:
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names))
    for var in VARIABLES:
        assert var.help
        var.parse(var.default)


def test_the_configuration_reference_is_current() -> None:
    doc = Path(__file__).parents[2] / "docs" / "configuration.md"
    hint = "run: wiro-relay config --reference > docs/configuration.md"
    assert doc.read_text() == reference_markdown(), hint
