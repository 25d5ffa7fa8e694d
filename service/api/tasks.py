"""/v1/tasks: accept jobs, answer for them, cancel them."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.api.bodies import BodyOverLimit, parse_json_object
from service.api.params import decode_cursor, encode_cursor, limit, only, timestamp
from service.api.spec import PAGE_LIMIT, Answer, Body, Header, Query, operation
from service.api.validate import refuse_non_text, validated
from service.deadlines import CANCEL_AFTER_MAX_SECONDS, CANCEL_AFTER_MIN_SECONDS, parse_duration
from service.errors import (
    ApiError,
    ConflictingImage,
    DuplicateField,
    EmptyImage,
    ImageTooLarge,
    InvalidCancelAfter,
    InvalidIdempotencyKey,
    InvalidMetadata,
    InvalidMultipart,
    InvalidParameter,
    TaskNotFound,
    UnexpectedFile,
    UnsupportedImageType,
    UnsupportedMediaType,
)
from service.lifecycle import Image, Job
from service.models import Task, TaskStatus
from service.relay import Relay
from service.schemas import TaskCreate
from service.store.base import TaskQuery
from service.views import task_view
from service.webhooks.destinations import refuse_destination

MAX_LIMIT = 200
_IMAGE_TYPES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
_PLACEHOLDER_URL = "https://upload.invalid/inputImage"


def _relay(request: Request) -> Relay:
    relay: Relay = request.app.state.relay
    return relay


def _image_type(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((t for magic, t in _IMAGE_TYPES.items() if head.startswith(magic)), None)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise InvalidIdempotencyKey("Idempotency-Key must be 1-255 printable ASCII characters")
    return key


def _task_response(task: Task, status: int, *, replayed: bool = False) -> JSONResponse:
    headers = {"Location": f"/v1/tasks/{task.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(task_view(task, timeline=False), status_code=status, headers=headers)


def _cancel_after(request: Request) -> float | None:
    raw = request.headers.get("cancel-after")
    if raw is None:
        return None
    seconds = parse_duration(raw) if len(raw) <= 64 else None
    if seconds is None or not CANCEL_AFTER_MIN_SECONDS <= seconds <= CANCEL_AFTER_MAX_SECONDS:
        raise InvalidCancelAfter(
            "Cancel-After must be a duration such as 90s, 15m, 2h or 1h30m, or bare seconds, "
            "from 1 second to 30 days",
        )  # fmt: skip
    return seconds


@operation(
    "createTask", "Accept a job (JSON, or multipart with an inputImage file).",
    headers=(
        Header("Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255}),
        Header(
            "Cancel-After", {"type": "string", "maxLength": 64},
            "Cap on the task's whole life, from creation: 90s, 15m, 2h, 1h30m or bare seconds; "
            "1 second to 30 days.",
        ),
    ),
    body=Body(TaskCreate, file="inputImage"),
    answers={202: Answer("Stored, queued for Wiro.", "Task")},
    errors=(409, 413, 415, 422, 502, 503),
)  # fmt: skip
async def create_task(request: Request) -> JSONResponse:
    only(request)
    relay = _relay(request)
    key = _idempotency_key(request)
    cancel_after = _cancel_after(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    image: Image | None = None
    if content_type == "application/json":
        body = validated(TaskCreate, parse_json_object(await request.body()), strict=True)
    elif content_type == "multipart/form-data":
        body, image = await _read_multipart(request, relay)
    else:
        raise UnsupportedMediaType("send application/json or multipart/form-data")
    if body.webhook_url is not None:
        refuse_destination(body.webhook_url, "webhook_url", relay.settings.webhook_allow_cidrs)
    job = Job(body, image=image, idempotency_key=key, cancel_after=cancel_after)
    task, replayed = await relay.lifecycle.intake.accept(job)
    return _task_response(task, 202, replayed=replayed)


async def _form(request: Request) -> FormData:
    try:
        return await request.form(max_files=1, max_fields=64, max_part_size=64 * 1024)
    except BodyOverLimit:
        raise  # the body limit answers 413, not a parse error
    except Exception as exc:  # python-multipart's and Starlette's parse errors have no common base
        raise InvalidMultipart(f"the multipart body could not be read: {exc}") from None


async def _read_multipart(request: Request, relay: Relay) -> tuple[TaskCreate, Image | None]:
    form = await _form(request)
    try:
        fields: dict[str, Any] = {}
        upload: UploadFile | None = None
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name != "inputImage":
                    raise UnexpectedFile(f"only an inputImage file is accepted, not {name!r}")
                upload = value
            elif name in fields:
                raise DuplicateField(f"field {name!r} is given twice")
            else:
                fields[name] = value
        image = await _read_image(upload, relay.settings.max_upload_bytes) if upload else None
    finally:
        await form.close()
    top = {k: fields.pop(k) for k in ("model", "webhook_url", "metadata") if k in fields}
    refuse_non_text(top)  # the form's charset can be one (unicode_escape) that makes surrogates
    refuse_non_text(fields, "input")
    if "metadata" in top:
        try:
            top["metadata"] = parse_json_object(str(top["metadata"]).encode())
        except ApiError as exc:
            raise InvalidMetadata(f"metadata must be a JSON object: {exc.message}") from None
    if image is not None:
        if "inputImageUrl" in fields:
            raise ConflictingImage("give inputImage or inputImageUrl, not both")
        fields["inputImageUrl"] = _PLACEHOLDER_URL
    return validated(TaskCreate, {**top, "input": fields}, strict=False), image


async def _read_image(upload: UploadFile, limit: int) -> Image:
    refuse_non_text(upload.filename or "", "inputImage.filename")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"inputImage exceeds {limit} bytes")
    if not data:
        raise EmptyImage("inputImage is empty")
    kind = _image_type(data[:16])
    if kind is None:
        raise UnsupportedImageType("inputImage must be a PNG, JPEG, WebP or GIF image")
    name = (upload.filename or "input").replace("/", "_").replace("\\", "_")[:128] or "input"
    return Image(data, name, kind)


@operation(
    "getTask", "A task with its timeline.",
    answers={200: Answer("The task.", "Task")}, errors=(404,),
)  # fmt: skip
async def get_task(request: Request) -> JSONResponse:
    only(request)
    task = await _relay(request).store.get_task(request.path_params["task_id"], timeline=True)
    if task is None:
        raise TaskNotFound(request.path_params["task_id"])
    return JSONResponse(task_view(task))


@operation(
    "cancelTask", "Cancel wherever it is; idempotent.",
    answers={200: Answer("Cancelled.", "Task"), 202: Answer("Cancel on its way to Wiro.", "Task")},
    errors=(404, 409),
)  # fmt: skip
async def cancel_task(request: Request) -> JSONResponse:
    only(request)
    relay = _relay(request)
    task = await relay.store.get_task(request.path_params["task_id"])
    if task is None:
        raise TaskNotFound(request.path_params["task_id"])
    task = await relay.lifecycle.stops.cancel(task)  # CancelRefused when it already ended otherwise
    status = 200 if task.status is TaskStatus.CANCELLED else 202
    return JSONResponse(task_view(task, timeline=False), status_code=status)


def task_query(request: Request) -> TaskQuery:
    only(request)
    params = request.query_params
    metadata: list[tuple[str, str]] = []
    for name in params:
        if name.startswith("metadata."):
            key = name.removeprefix("metadata.")
            values = params.getlist(name)
            if not key or len(key) > 64 or len(values) != 1:
                raise InvalidParameter(f"{name[:80]} must name one key, once")
            metadata.append((key, values[0]))
    statuses: list[TaskStatus] = []
    for raw in params.getlist("status"):
        for part in raw.split(","):
            try:
                statuses.append(TaskStatus(part.strip()))
            except ValueError:
                raise InvalidParameter(
                    f"status {part[:40]!r} is not one of " + ", ".join(s.value for s in TaskStatus)
                ) from None
    cursor = params.get("cursor")
    return TaskQuery(
        statuses=tuple(dict.fromkeys(statuses)),
        model=params.get("model"),
        created_after=timestamp("created_after", params["created_after"])
        if "created_after" in params
        else None,
        created_before=timestamp("created_before", params["created_before"])
        if "created_before" in params
        else None,
        metadata=tuple(metadata),
        limit=limit(params.get("limit"), maximum=MAX_LIMIT),
        after=decode_cursor(cursor) if cursor else None,
    )


@operation(
    "listTasks", "Tasks, newest first; metadata.<key>=<value> filters too.",
    query=(
        Query("status", "Comma-separated states."),
        Query("model", "The model slug."),
        Query("created_after", "RFC 3339 or Unix seconds."),
        Query("created_before", "RFC 3339 or Unix seconds."),
        Query("limit", "Page size.", PAGE_LIMIT),
        Query("cursor", "next_cursor of the previous page."),
    ),
    query_prefixes=("metadata.",),
    answers={200: Answer("A page of tasks.", "TaskPage")},
)  # fmt: skip
async def list_tasks(request: Request) -> JSONResponse:
    page = await _relay(request).store.list_tasks(task_query(request))
    return JSONResponse(
        {
            "data": [task_view(t, timeline=False) for t in page.items],
            "next_cursor": encode_cursor(page.next_after) if page.next_after else None,
        }
    )


@operation(
    "summarizeTasks", "Counts by state and cost over a window of creation times.",
    query=(Query("since", "RFC 3339 or Unix seconds."), Query("until", "RFC 3339 or Unix seconds.")),
    answers={200: Answer("The summary.", "Summary")},
)  # fmt: skip
async def summary(request: Request) -> JSONResponse:
    only(request)
    params = request.query_params
    since = timestamp("since", params["since"]) if "since" in params else None
    until = timestamp("until", params["until"]) if "until" in params else None
    result = await _relay(request).store.summary(since, until)
    return JSONResponse({"since": params.get("since"), "until": params.get("until"), **result})


routes = [
    Route("/v1/tasks", create_task, methods=["POST"]),
    Route("/v1/tasks", list_tasks, methods=["GET"]),
    Route("/v1/tasks/summary", summary, methods=["GET"]),
    Route("/v1/tasks/{task_id}", get_task, methods=["GET"]),
    Route("/v1/tasks/{task_id}/cancel", cancel_task, methods=["POST"]),
]
