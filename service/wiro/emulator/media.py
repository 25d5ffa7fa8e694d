"""The emulator's media: the one real video every successful task outputs, and uploaded files.

A relay (and a person trying the demo) should get a file that really plays, so outputs are a real
H.264 mp4 shipped as package data, ``assets/sample.mp4`` (9,370 bytes). It was made once with
ffmpeg 5.1 (Debian 12); ffmpeg is not needed at run time::

    ffmpeg -f lavfi -i "testsrc2=size=160x90:rate=16:duration=2" \\
        -c:v libx264 -preset veryslow -crf 36 -pix_fmt yuv420p -profile:v baseline \\
        -movflags +faststart -map_metadata -1 -fflags +bitexact -flags:v +bitexact -an sample.mp4

Two seconds, 32 frames at 16 fps (the model's default fps), 160x90, Constrained Baseline, yuv420p,
``moov`` before ``mdat`` (faststart), so browsers and players start it at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

VIDEO_CONTENT_TYPE = "video/mp4"


@functools.cache
def sample_video() -> bytes:
    """The asset's bytes, read once."""
    return resources.files("service.wiro.emulator").joinpath("assets/sample.mp4").read_bytes()


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file the emulator serves under ``/cdn/{path}``: a task's output or an upload."""

    name: str
    content_type: str
    data: bytes
    added: float
