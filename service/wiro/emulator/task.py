"""One emulated task: a timeline fixed at Run, and its Task/Detail entry derived for any moment.

Nothing here changes by itself: the status at time ``t`` is read off the timeline, so a Detail call,
a callback and the ``/_emulator/tasks`` truth all agree without a background state machine. Only
Cancel, Kill and releasing a held queue change a task (by setting one timestamp).

Durations (emulated seconds, i.e. at ``time_scale`` 1.0; the wall clock runs ``time_scale`` times
as long). The model is Wan2.2-I2V-A14B on one H100::

    task_queue 2, task_accept 1, task_assign 4, task_preprocess_start 2, task_preprocess_end 1,
    task_start 8 (text encoder, image encode), task_output = sampling + decode,
    task_output_full 0.5, task_end 0.5, task_postprocess_start 3 (mp4 encode, CDN upload)

    sampling = 7.2 s * steps * r^1.5      decode = 4 s * r
    r = (width * height * numFrames) / (832 * 480 * 81)

so the seed's default job (480P, 81 frames, 25 steps) takes about 3.5 minutes end to end and 720P
about 11: video tokens grow with pixels * frames and attention grows faster than linearly in them.
A failing task stops after 40 % of ``task_output``.

Money and time fields (chosen to match the seed's example, where ``totalcost = cps * elapsedseconds``
and ``elapsedseconds`` runs from ``assigntime`` to ``endtime``): ``elapsedseconds`` is the emulated
GPU time from ``task_assign`` to the process's exit (``task_end``), so it and ``totalcost`` are what
the real model would report whatever the time scale; the ``*time`` fields are real Unix seconds, so
they agree with the caller's clock. A field is ``"0"`` until its moment has passed.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from service.wiro.types import CANCEL_STATUS, MODEL_SLUG, RUNNING_STATUSES, SUCCESS_STATUS

CPS = Decimal("0.001350000000")
"""Chosen cost per GPU second for an H100 (about $4.86 an hour): the default job costs about $0.28."""

MODEL_DESCRIPTION = (
    "Wan2.2-I2V-A14B model, designed for image-to-video generation, supporting both 480P and 720P "
    "resolutions."
)
MODEL_CATEGORIES = json.dumps(  # a JSON text in a string, compact, as the seed shows it
    [
        "text-to-video",
        "quick-showcase",
        "persistent",
        "model",
        "h100",
        "checkpoint-folder",
        "wan2.2",
        "compare-landscape",
    ],
    separators=(",", ":"),
)
QUEUE_SECONDS = 2.0
SECONDS_PER_STEP = 7.2
DECODE_SECONDS = 4.0
FAILURE_SHARE = 0.4
_FIXED_SECONDS = {
    "task_accept": 1.0,
    "task_assign": 4.0,
    "task_preprocess_start": 2.0,
    "task_preprocess_end": 1.0,
    "task_start": 8.0,
    "task_output_full": 0.5,
    "task_end": 0.5,
    "task_postprocess_start": 3.0,
}
_PIXELS = {"480P": 832 * 480, "580P": 1024 * 576, "720P": 1280 * 720}
_REFERENCE = 832 * 480 * 81
BILLED_STATUSES = RUNNING_STATUSES[RUNNING_STATUSES.index("task_assign") : RUNNING_STATUSES.index("task_end")]
"""GPU time: from ``task_assign`` until the process exits (``task_end``)."""
_STALE_STATUSES = RUNNING_STATUSES[: RUNNING_STATUSES.index("task_output") + 1]

FAILURE_STDERR = (
    "Traceback (most recent call last):\n"
    '  File "/workspace/wan2.2/generate.py", line 412, in <module>\n'
    "    video = pipeline.generate(prompt, img, frame_num=frame_num, sampling_steps=steps)\n"
    '  File "/workspace/wan2.2/wan/image2video.py", line 388, in generate\n'
    "    noise_pred_cond = model(latent_model_input, t=timestep, **arg_c)[0]\n"
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total "
    "capacity of 79.11 GiB of which 1.02 GiB is free.\n"
)


def phase_seconds(parameters: dict[str, str], *, failed: bool) -> tuple[tuple[str, float], ...]:
    """Emulated seconds in each status after ``task_queue``, in Wiro's order."""
    pixels = _PIXELS.get(parameters.get("resolution", "480P"), _PIXELS["480P"])
    ratio = pixels * int(parameters.get("numFrames", "81")) / _REFERENCE
    sampling = SECONDS_PER_STEP * int(parameters.get("steps", "25")) * ratio**1.5
    output = sampling + DECODE_SECONDS * ratio
    if failed:
        output *= FAILURE_SHARE
    return tuple(
        (status, output if status == "task_output" else _FIXED_SECONDS[status])
        for status in RUNNING_STATUSES[1:]
    )


def billed_seconds(phases: tuple[tuple[str, float], ...]) -> float:
    """The GPU seconds a task with these phases is billed for when it runs to the end."""
    return sum(seconds for status, seconds in phases if status in BILLED_STATUSES)


@dataclass(frozen=True, slots=True)
class OutputFile:
    """The task's one mp4, as Wiro lists it; served by the emulator's ``/cdn`` route."""

    id: str
    parent_id: str
    access_key: str
    folder: str
    name: str
    size: int

    def path(self) -> str:
        return f"{self.folder}/{self.name}"


@dataclass(slots=True, eq=False)
class EmulatedTask:
    """A task's identity, inputs and timeline. Times are real Unix seconds; durations emulated."""

    id: str
    uuid: str
    token: str
    model: str
    parameters: dict[str, str]
    callback_url: str
    created: float
    time_scale: float
    phases: tuple[tuple[str, float], ...]
    failed: bool
    output: OutputFile
    cdn_base: str
    project_id: str = "699"
    released: float | None = None
    """When the queue wait started counting: ``created``, or the release of a held queue; None while held."""
    cancelled: float | None = None
    killed: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    """Set whenever the timeline changes, so the callback sender re-reads it."""

    # -- the timeline ---------------------------------------------------------------------------

    def schedule(self) -> list[tuple[str, float]]:
        """Each status with the real time it starts, ending with the terminal one; [] while held."""
        if self.released is None:
            return []
        starts = [("task_queue", self.created)]
        moment = self.released + QUEUE_SECONDS * self.time_scale
        for status, seconds in self.phases:
            starts.append((status, moment))
            moment += seconds * self.time_scale
        starts.append((SUCCESS_STATUS, moment))
        return starts

    def start_of(self, status: str) -> float | None:
        """When ``status`` starts (or started), ignoring cancellation; None while held."""
        return dict(self.schedule()).get(status)

    def natural_end(self) -> float | None:
        schedule = self.schedule()
        return schedule[-1][1] if schedule else None

    def terminal_at(self) -> float | None:
        """When the task is (or will be) terminal; None while held in the queue and not cancelled."""
        end = self.natural_end()
        if self.cancelled is not None and (end is None or self.cancelled < end):
            return self.cancelled
        return end

    def status_at(self, at: float) -> str:
        if self.cancelled is not None and at >= self.cancelled:
            return CANCEL_STATUS
        status = "task_queue"
        for name, start in self.schedule():
            if start > at:
                break
            status = name
        return status

    def is_terminal(self, at: float) -> bool:
        return self.status_at(at) in (SUCCESS_STATUS, CANCEL_STATUS)

    def stale_moment(self) -> float:
        """A moment before the end at which the task was still running, for a stale snapshot."""
        end = self.terminal_at()
        moments = [
            start
            for status, start in self.schedule()
            if status in _STALE_STATUSES and (end is None or start < end)
        ]
        return max(moments, default=self.created)

    # -- money ------------------------------------------------------------------------------

    def elapsed_seconds(self, at: float) -> float:
        """Emulated GPU seconds billed by ``at``: from ``task_assign`` until the process exits."""
        schedule = self.schedule()
        if not schedule:
            return 0.0
        stop = at if self.cancelled is None else min(at, self.cancelled)
        total = 0.0
        for (status, start), (_, seconds) in zip(schedule[1:-1], self.phases, strict=True):
            if status in BILLED_STATUSES and start < stop:
                total += min(seconds, (stop - start) / self.time_scale)
        return total

    def cost(self, at: float) -> Decimal:
        """What the task costs as of ``at``: successes and kills are charged, nothing else."""
        status = self.status_at(at)
        charged = (status == SUCCESS_STATUS and not self.failed) or (status == CANCEL_STATUS and self.killed)
        if not charged:
            return Decimal(0)
        return (CPS * Decimal(f"{self.elapsed_seconds(at):.4f}")).quantize(Decimal("1e-12"))

    # -- the Task/Detail entry ----------------------------------------------------------------

    def entry(self, at: float) -> dict[str, Any]:
        """The task's ``tasklist`` entry as Wiro would answer it at time ``at``."""
        status = self.status_at(at)
        cancelled = status == CANCEL_STATUS
        succeeded = status == SUCCESS_STATUS and not self.failed
        starts = dict(self.schedule())
        reached_until = at if self.cancelled is None else min(at, self.cancelled)

        def moment(name: str) -> str:
            start = starts.get(name)
            return str(int(start)) if start is not None and start <= reached_until else "0"

        end_time = moment("task_end")
        if self.killed and self.cancelled is not None and cancelled:
            end_time = str(int(self.cancelled))
        cost = self.cost(at)
        outputs = [self._output_entry()] if succeeded else []
        return {
            "id": self.id,
            "uuid": self.uuid,
            "name": "",
            "socketaccesstoken": self.token,
            "parameters": dict(self.parameters),
            "debugoutput": "",
            "debugerror": FAILURE_STDERR if self.failed and _after(status, "task_output") else "",
            "starttime": moment("task_start"),
            "endtime": end_time,
            "elapsedseconds": f"{self.elapsed_seconds(at):.4f}",
            "status": status,
            "cps": f"{CPS:.12f}",
            "totalcost": f"{cost:.12f}" if cost else "0",
            "guestid": None,
            "projectid": self.project_id,
            "modelid": "598",
            "description": "",
            "basemodelid": "0",
            "runtype": "model",
            "modelfolderid": "",
            "modelfileid": "",
            "callbackurl": self.callback_url,
            "marketplaceid": None,
            "createtime": str(int(self.created)),
            "canceltime": str(int(self.cancelled)) if self.cancelled is not None and cancelled else "0",
            "assigntime": moment("task_assign"),
            "accepttime": moment("task_accept"),
            "preprocessstarttime": moment("task_preprocess_start"),
            "preprocessendtime": moment("task_preprocess_end"),
            "postprocessstarttime": moment("task_postprocess_start"),
            "postprocessendtime": moment(SUCCESS_STATUS),
            "pexit": ("1" if self.failed else "0") if status == SUCCESS_STATUS else "",
            "categories": MODEL_CATEGORIES,
            "outputs": outputs,
            "size": str(self.output.size) if outputs else "0",
            "modelslugowner": self.model.split("/", 1)[0],
            "modelslugproject": self.model.split("/", 1)[-1],
            "modeldescription": MODEL_DESCRIPTION if self.model == MODEL_SLUG else "",
        }

    def _output_entry(self) -> dict[str, Any]:
        added = str(int(self.start_of("task_postprocess_start") or self.created))
        return {
            "id": self.output.id,
            "name": self.output.name,
            "contenttype": "video/mp4",
            "parentid": self.output.parent_id,
            "uuid": self.uuid,
            "size": str(self.output.size),
            "addedtime": added,
            "modifiedtime": added,
            "accesskey": self.output.access_key,
            "foldercount": "0",
            "filecount": "0",
            "ispublic": 0,
            "expiretime": None,
            "url": f"{self.cdn_base}/cdn/{self.output.path()}",
        }


def _after(status: str, reference: str) -> bool:
    """True when ``status`` comes after ``reference`` in a task's walk (terminal ones last)."""
    order = (*RUNNING_STATUSES, SUCCESS_STATUS)
    return status in order and order.index(status) > order.index(reference)
