"""File/Upload stores a file and answers Wiro's list entry; the emulator serves it back at that URL."""

from __future__ import annotations

import pytest

from service.wiro.client import WiroClient
from tests.conftest import TEST_KEY, TEST_SECRET, RunningEmulator

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def test_upload_then_download(emulator: RunningEmulator) -> None:
    response = await emulator.http.post(
        f"{emulator.base_url}/File/Upload",
        files={"file": ("my photo.png", PNG, "image/png")},
        data={"folderid": "folder-7"},
        headers=emulator.headers(),
    )
    answer = response.json()
    assert answer["result"] is True
    assert answer["errors"] == []
    (entry,) = answer["list"]
    assert (entry["name"], entry["contenttype"], entry["size"], entry["parentid"]) == (
        "my_photo.png",
        "image/png",
        str(len(PNG)),
        "folder-7",
    )
    assert entry["url"].startswith(f"{emulator.root_url}/cdn/")
    assert entry["url"].endswith("/my_photo.png")
    download = await emulator.http.get(entry["url"])
    assert (download.status_code, download.content, download.headers["content-type"]) == (
        200,
        PNG,
        "image/png",
    )
    counters = await emulator.counters()
    assert counters["outcomes"]["File/Upload"] == {"ok": 1}
    assert counters["outcomes"]["cdn"] == {"ok": 1}


async def test_an_uploaded_image_can_feed_a_run(emulator: RunningEmulator) -> None:
    client = WiroClient(emulator.http, base_url=emulator.base_url, api_key=TEST_KEY, api_secret=TEST_SECRET)
    uploaded = await client.upload_file("in.png", PNG, "image/png")
    result = await client.run({"inputImageUrl": uploaded.url}, callback_url="")
    assert (await emulator.detail(result.task_id))["parameters"]["inputImageUrl"] == uploaded.url


async def test_a_missing_file_is_refused(emulator: RunningEmulator) -> None:
    answer = (await emulator.call("File/Upload", {"folderid": "x"})).json()
    assert answer == {"result": False, "errors": [{"code": 0, "message": "Request files [file] required"}]}


async def test_files_over_the_limit_are_refused(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.wiro.emulator.app.MAX_UPLOAD_BYTES", 100)
    response = await emulator.http.post(
        f"{emulator.base_url}/File/Upload",
        files={"file": ("big.bin", b"x" * 101)},
        headers=emulator.headers(),
    )
    assert response.json() == {
        "result": False,
        "errors": [{"code": 0, "message": "Request files [file] must be at most 100 MB"}],
    }
    assert emulator.state.engine.files == {}
