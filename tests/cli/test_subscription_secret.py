"""A subscription's secret can be shown again, and the command line says how: `subscriptions
secret` reads it (``GET /v1/subscriptions/{id}/secret``) from the real relay, during a rotation with
the time until which the previous secret signs too."""

from __future__ import annotations

from tests.cli.test_console import as_json, ok, run
from tests.relay.conftest import StackFactory


async def test_the_secret_is_shown_again_on_request(stack: StackFactory) -> None:
    async with stack() as s:
        created = ok(await run(s, "subscriptions", "create", "https://hooks.example.com/in"))
        sub_id = created.stdout.split("id: ")[1].split()[0]
        secret = created.stdout.split("secret: ")[1].split()[0]
        hint = " ".join(created.stderr.split())
        assert f"`wiro-relay subscriptions secret {sub_id}` shows it again" in hint
        assert "not shown again" not in hint

        shown = ok(await run(s, "subscriptions", "secret", sub_id))
        assert shown.stdout == f"secret: {secret}\n"
        assert as_json(await run(s, "subscriptions", "secret", sub_id, "--json"))["secret"] == secret

        rotated = ok(await run(s, "subscriptions", "rotate-secret", sub_id, "--grace-seconds", "600"))
        new_secret = rotated.stdout.split("secret: ")[1].split()[0]
        assert "shows it again" in rotated.stderr
        during = ok(await run(s, "subscriptions", "secret", sub_id)).stdout.splitlines()
        assert during[0] == f"secret: {new_secret}"
        assert during[1].startswith("the previous secret signs too until ")

        ok(await run(s, "subscriptions", "rotate-secret", sub_id, "--grace-seconds", "0"))
        after = ok(await run(s, "subscriptions", "secret", sub_id)).stdout.splitlines()
        assert len(after) == 1, after  # the previous secret no longer signs: nothing to say of it

        missing = ok(await run(s, "subscriptions", "secret", "sub_missing"), 2)
        assert "subscription_not_found" in missing.stderr
