"""Run refuses each input rule with code 0 and Wiro's message, fills defaults, and reads every encoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.wiro.model import defaults
from tests.conftest import RunningEmulator

RUN = "Run/Wan-AI/Wan2.2-I2V-A14B"
IMAGE = "https://example.com/in.jpg"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"prompt": "no image"}, "Request parameter [inputImageUrl] required"),
        ({"inputImageUrl": "  "}, "Request parameter [inputImageUrl] required"),
        ({"inputImageUrl": IMAGE, "numFrames": ""}, "Request parameter [numFrames] required"),
        (
            {"inputImageUrl": IMAGE, "resolution": "1080P"},
            "Request parameter [resolution] must be one of 480P, 580P, 720P",
        ),
        (
            {"inputImageUrl": IMAGE, "resolution": "480p"},
            "Request parameter [resolution] must be one of 480P, 580P, 720P",
        ),
        (
            {"inputImageUrl": IMAGE, "aspectRatio": "4:3"},
            "Request parameter [aspectRatio] must be one of Default, 16:9, 9:16, 1:1",
        ),
        ({"inputImageUrl": IMAGE, "numFrames": "80"}, "Request parameter [numFrames] must be 4n+1"),
        (
            {"inputImageUrl": IMAGE, "numFrames": "eighty"},
            "Request parameter [numFrames] must be integer or float",
        ),
        ({"inputImageUrl": IMAGE, "numFrames": "81.5"}, "Request parameter [numFrames] must be integer"),
        (
            {"inputImageUrl": IMAGE, "numFrames": "1"},
            "Request parameter [numFrames] must be between 5 and 161",
        ),
        (
            {"inputImageUrl": IMAGE, "numFrames": "165"},
            "Request parameter [numFrames] must be between 5 and 161",
        ),
        ({"inputImageUrl": IMAGE, "scale": "high"}, "Request parameter [scale] must be integer or float"),
        ({"inputImageUrl": IMAGE, "scale": "nan"}, "Request parameter [scale] must be integer or float"),
        ({"inputImageUrl": IMAGE, "scale": "0.5"}, "Request parameter [scale] must be between 1 and 20"),
        ({"inputImageUrl": IMAGE, "steps": "0"}, "Request parameter [steps] must be between 1 and 100"),
        ({"inputImageUrl": IMAGE, "steps": "25.5"}, "Request parameter [steps] must be integer"),
        ({"inputImageUrl": IMAGE, "fps": "61"}, "Request parameter [fps] must be between 1 and 60"),
        ({"inputImageUrl": IMAGE, "seed": "lucky"}, "Request parameter [seed] must be integer or float"),
    ],
)
async def test_each_rule_is_refused_with_code_0(
    emulator: RunningEmulator, inputs: dict[str, Any], message: str
) -> None:
    response = await emulator.call(RUN, inputs)
    assert response.status_code == 200
    assert response.json() == {"result": False, "errors": [{"code": 0, "message": message}]}
    assert emulator.state.engine.tasks == {}


async def test_every_broken_rule_is_reported(emulator: RunningEmulator) -> None:
    answer = (await emulator.call(RUN, {"numFrames": "80", "fps": "0"})).json()
    assert [e["message"] for e in answer["errors"]] == [
        "Request parameter [inputImageUrl] required",
        "Request parameter [numFrames] must be 4n+1",
        "Request parameter [fps] must be between 1 and 60",
    ]
    assert {e["code"] for e in answer["errors"]} == {0}


async def test_omitted_fields_take_the_seeds_defaults(emulator: RunningEmulator) -> None:
    answer = await emulator.run(inputImageUrl=IMAGE)
    parameters = (await emulator.detail(answer["taskid"]))["parameters"]
    expected = {name: str(value) for name, value in defaults().items()}
    assert parameters == {"inputImageUrl": IMAGE, **expected}


async def test_accepted_values_are_kept_as_wiro_strings(emulator: RunningEmulator) -> None:
    answer = await emulator.run(
        resolution="720P", aspectRatio="9:16", numFrames=5, scale="7.5", steps=4, fps=24, seed="-1"
    )
    parameters = (await emulator.detail(answer["taskid"]))["parameters"]
    assert parameters | {"prompt": "", "negativePrompt": ""} == {
        "inputImageUrl": "https://example.com/wan_2_2_input.jpg",
        "prompt": "",
        "negativePrompt": "",
        "resolution": "720P",
        "aspectRatio": "9:16",
        "numFrames": "5",
        "scale": "7.5",
        "steps": "4",
        "fps": "24",
        "seed": "-1",
    }


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data", None])
async def test_json_bodies_are_read_whatever_they_are_labelled(
    emulator: RunningEmulator, content_type: str | None
) -> None:
    body = json.dumps({"inputImageUrl": IMAGE, "numFrames": 81, "scale": 5.0, "steps": 25})
    headers = emulator.headers() | ({"content-type": content_type} if content_type else {})
    answer = (await emulator.http.post(f"{emulator.base_url}/{RUN}", content=body, headers=headers)).json()
    assert answer["result"] is True, answer
    parameters = (await emulator.detail(answer["taskid"]))["parameters"]
    assert (parameters["numFrames"], parameters["scale"]) == ("81", "5.0")


async def test_url_encoded_forms_are_read(emulator: RunningEmulator) -> None:
    response = await emulator.http.post(
        f"{emulator.base_url}/{RUN}",
        data={"inputImageUrl": IMAGE, "numFrames": "9"},
        headers=emulator.headers(),
    )
    answer = response.json()
    assert answer["result"] is True, answer
    assert (await emulator.detail(answer["taskid"]))["parameters"]["numFrames"] == "9"


@pytest.mark.parametrize(
    "body",
    [b"[1, 2]", b"{not json", b"\xff\xfe", b'{"inputImageUrl": ["a", "b"]}', b'{"inputImageUrl": true}'],
)
async def test_unreadable_bodies_are_refused(emulator: RunningEmulator, body: bytes) -> None:
    headers = emulator.headers() | {"content-type": "application/json"}
    answer = (await emulator.http.post(f"{emulator.base_url}/{RUN}", content=body, headers=headers)).json()
    assert answer == {"result": False, "errors": [{"code": 0, "message": "Request parameters are invalid."}]}


async def test_an_unknown_model_is_refused_as_wiro_does(emulator: RunningEmulator) -> None:
    answer = (await emulator.call("Run/black-forest-labs/flux-dev", {"prompt": "x"})).json()
    assert answer == {"result": False, "errors": [{"code": 1, "message": "slug-owner-project-not-exist"}]}
