"""The demo, as `wiro-relay demo` runs it: the seed's default job to a video and a verified webhook."""

from __future__ import annotations

from pathlib import Path

from service.demo import run_demo


async def test_the_demo_ends_with_a_video_and_a_verified_webhook(tmp_path: Path) -> None:
    lines: list[str] = []
    result = await run_demo(lines.append, time_scale=0.004, data_dir=tmp_path)
    assert result.ok
    assert result.task["input"]["numFrames"] == 81
    assert result.task["input"]["seed"] == "42"
    assert (tmp_path / "demo.db").exists()
    (video,) = tmp_path.glob("*.mp4")
    assert video.read_bytes()[4:8] == b"ftyp"
    text = "\n".join(lines)
    assert "signature VERIFIED" in text
    assert "relay: succeeded" in text
