"""What fuzzing found in the relay itself, each pinned by one focused test over real sockets.

(The Wiro answer parser's findings are pinned in ``test_wiro_parser.py``.)
"""

from __future__ import annotations

import json
from typing import Any

from service import openapi
from service.api.ops import openapi_document
from tests.relay.conftest import StackFactory, job, stack

__all__ = ["stack"]  # the relay stack fixture, shared with tests/relay


async def test_every_v1_operation_documents_the_401_it_answers(stack: StackFactory) -> None:
    """GET /v1/tasks answered 401 (and 400) without documenting either."""
    async with stack() as s:
        for path, item in openapi_document()["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for method, operation in item.items():
                url = s.relay_url + path.replace("{", "").replace("}", "")
                response = await s.raw.request(method.upper(), url)
                assert response.status_code == 401, (method, path)
                assert {"400", "401"} <= set(operation["responses"]), (method, path)
        listed = await s.api.get("/v1/tasks", params={"limit": "0"})
        assert listed.status_code == 400
        openapi.Error.model_validate(listed.json(), strict=True)


async def test_each_streamed_event_is_what_the_document_says(stack: StackFactory) -> None:
    """The stream was documented as one JSON string; it is a sequence of events, each carrying an
    ``Event`` as JSON data."""
    documented = openapi_document()["paths"]["/v1/events/stream"]["get"]["responses"]["200"]["content"]
    schema = documented["text/event-stream"]["schema"]
    assert schema["required"] == ["id", "event", "data"]
    assert schema["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/Event"}
    async with stack(sse_heartbeat_seconds=0.1) as s:
        await s.submit(job(numFrames=17))
        fields: dict[str, Any] = {}
        async with s.api.stream("GET", "/v1/events/stream") as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line and not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
                if not line and fields:
                    break
        assert set(fields) == set(schema["required"])
        event = openapi.Event.model_validate(json.loads(fields["data"]), strict=True)
        assert fields["event"] == event.type
        assert fields["id"] == str(event.seq)
        assert fields["event"] in schema["properties"]["event"]["enum"]


async def test_a_task_killed_at_its_deadline_says_why(stack: StackFactory) -> None:
    """Stopped at Wiro at its deadline, a task ended ``timed_out`` with ``error: null``: the error
    the API documents for a time-out was only set when no Wiro task had to be killed."""
    async with stack(task_deadline_seconds=1.0) as s:
        await s.faults(hold_queue=True)  # Wiro keeps it queued: only the deadline can end it
        task = await s.submit(job(numFrames=17))
        await s.wait_for(task["id"], ["submitted"])
        ended = await s.wait_for(task["id"], ["succeeded", "failed", "cancelled", "timed_out"])
        assert ended["status"] == "timed_out", ended
        assert ended["error"] is not None
        assert ended["error"]["code"] == "deadline_exceeded"
        assert ended["wiro"]["status"] == "task_cancel"  # it was stopped at Wiro, not only locally
        assert (await s.emulator_task(ended["wiro"]["task_id"]))["outcome"] == "cancelled"
