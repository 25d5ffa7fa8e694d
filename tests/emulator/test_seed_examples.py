"""The seed's own shell commands (openssl signature, curl calls) get answers in the seed's shapes."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from typing import Any

import pytest

from service.wiro.model import DEFAULT_NEGATIVE_PROMPT
from tests.conftest import DEFAULT_CONFIG, TEST_KEY, TEST_SECRET, EmulatorFactory, RunningEmulator

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "openssl")),
    reason="needs bash, curl and openssl",
)

# The seed's "Header Prepare" block, verbatim but for the values.
HEADER_PREPARE = """
export YOUR_API_KEY="{key}";
export YOUR_API_SECRET="{secret}";
export NONCE=$(date +%s);
export SIGNATURE="$(echo -n "${{YOUR_API_SECRET}}${{NONCE}}" | openssl dgst -sha256 -hmac "${{YOUR_API_KEY}}")";
"""  # noqa: E501 - verbatim from the seed
# `openssl dgst` prints "SHA2-256(stdin)= <hex>"; the seed sends that whole line, the docs' variant
# keeps the last field. Both must be accepted, so the curl commands below use the docs' `awk`.
SIGNATURE_LAST_FIELD = 'export SIGNATURE="$(echo "$SIGNATURE" | awk \'{print $NF}\')";\n'
CURL = (
    'curl -s -X POST "{url}" -H "Content-Type: multipart/form-data" -H "x-api-key: ${{YOUR_API_KEY}}" '
    '-H "x-nonce: ${{NONCE}}" -H "x-signature: ${{SIGNATURE}}" -d \'{body}\';'
)
SEED_RUN_BODY = {
    "inputImageUrl": "wan_2_2_input.jpg",
    "prompt": "Cinematic medium shot, warm contrasting lighting.",
    "negativePrompt": DEFAULT_NEGATIVE_PROMPT,
    "resolution": "480P",
    "aspectRatio": "Default",
    "numFrames": 81,
    "scale": "5.0",
    "steps": 25,
    "fps": 16,
    "seed": "42",
    "callbackUrl": (
        "You can provide a callback URL; Wiro will send a POST request to it when the task is completed."
    ),
}
SEED_DETAIL_KEYS = {"total", "errors", "tasklist", "result"}
SEED_ENTRY_KEYS = {
    "id", "uuid", "socketaccesstoken", "parameters", "debugoutput", "debugerror", "starttime", "endtime",
    "elapsedseconds", "status", "createtime", "canceltime", "assigntime", "accepttime",
    "preprocessstarttime", "preprocessendtime", "postprocessstarttime", "postprocessendtime", "outputs",
    "size",
}  # fmt: skip
SEED_KILL_ENTRY_KEYS = SEED_ENTRY_KEYS | {
    "name", "cps", "totalcost", "guestid", "projectid", "modelid", "description", "basemodelid", "runtype",
    "modelfolderid", "modelfileid", "callbackurl", "marketplaceid", "pexit", "categories",
}  # fmt: skip
SEED_OUTPUT_KEYS = {
    "id", "name", "contenttype", "parentid", "uuid", "size", "addedtime", "modifiedtime", "accesskey",
    "foldercount", "filecount", "ispublic", "expiretime", "url",
}  # fmt: skip


async def seed_curl(emulator: RunningEmulator, endpoint: str, body: dict[str, Any]) -> Any:
    """Run the seed's header preparation and curl command against the emulator; the JSON answer."""
    script = (
        HEADER_PREPARE.format(key=TEST_KEY, secret=TEST_SECRET)
        + SIGNATURE_LAST_FIELD
        + CURL.format(url=f"{emulator.base_url}/{endpoint}", body=json.dumps(body))
    )
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


async def test_seed_run_and_detail_by_id_and_token(emulator: RunningEmulator) -> None:
    run = await seed_curl(emulator, "Run/Wan-AI/Wan2.2-I2V-A14B", SEED_RUN_BODY)
    assert list(run) == ["errors", "taskid", "socketaccesstoken", "result"]
    assert run["result"] is True
    assert run["errors"] == []
    assert run["taskid"].isdigit()
    assert len(run["socketaccesstoken"]) == 30

    await emulator.wait_for(run["taskid"])
    by_id = await seed_curl(emulator, "Task/Detail", {"taskid": run["taskid"]})
    by_token = await seed_curl(emulator, "Task/Detail", {"tasktoken": run["socketaccesstoken"]})
    assert set(by_id) == SEED_DETAIL_KEYS
    assert by_id["total"] == "1"
    assert by_id["tasklist"] == by_token["tasklist"]
    entry = by_id["tasklist"][0]
    assert set(entry) >= SEED_KILL_ENTRY_KEYS
    assert entry["status"] == "task_postprocess_end"
    assert entry["pexit"] == "0"
    assert all(isinstance(entry[key], str) for key in SEED_ENTRY_KEYS - {"parameters", "outputs"})
    (output,) = entry["outputs"]
    assert set(output) >= SEED_OUTPUT_KEYS
    assert output["contenttype"] == "video/mp4"
    assert output["url"].startswith(emulator.root_url + "/cdn/")
    assert entry["parameters"]["numFrames"] == "81"
    assert entry["parameters"]["inputImageUrl"] == "wan_2_2_input.jpg"


async def test_seed_kill_and_cancel(emulator_factory: EmulatorFactory) -> None:
    # Slow enough that the task is surely still running when Kill arrives.
    emulator = await emulator_factory(replace(DEFAULT_CONFIG, time_scale=0.05))
    await emulator.set_faults(hold_queue=True)
    queued = await emulator.run()
    cancelled = await seed_curl(emulator, "Task/Cancel", {"taskid": queued["taskid"]})
    assert list(cancelled) == ["errors", "tasklist", "result"]
    assert cancelled["result"] is True
    assert set(cancelled["tasklist"][0]) >= SEED_KILL_ENTRY_KEYS
    assert cancelled["tasklist"][0]["status"] == "task_cancel"

    running = await emulator.run()
    await emulator.set_faults(hold_queue=False)
    await emulator.wait_for(running["taskid"], outcome="running")
    killed = await seed_curl(emulator, "Task/Kill", {"socketaccesstoken": running["socketaccesstoken"]})
    assert list(killed) == ["errors", "tasklist", "result"]
    assert killed["result"] is True
    assert killed["tasklist"][0]["status"] == "task_cancel"
    assert killed["tasklist"][0]["id"] == running["taskid"]


async def test_seed_signature_with_the_whole_openssl_line_is_refused(emulator: RunningEmulator) -> None:
    # Literally the seed's recipe: `openssl dgst` output is "SHA2-256(stdin)= <hex>", not the hex
    # alone; Wiro's own docs pipe it through awk. The emulator checks the hex, as Wiro must.
    script = HEADER_PREPARE.format(key=TEST_KEY, secret=TEST_SECRET) + CURL.format(
        url=f"{emulator.base_url}/Task/Detail", body='{"taskid": "1"}'
    )
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", script + ' echo; echo "$SIGNATURE"', stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    answer, signature_line = stdout.decode().strip().split("\n")
    if signature_line.strip() == signature_line.strip().rsplit(" ", 1)[-1]:
        pytest.skip("this openssl prints the bare hex digest")
    assert json.loads(answer)["errors"][0]["message"] == "Project authorization is not valid."
