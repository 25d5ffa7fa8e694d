"""The service's error tree: each class carries the machine-readable ``code`` it is known by.

A caller decides by class and a client by ``code``, never by parsing a message or a class's name.
The API answers an error as ``{"error": {"code", "message", "details"}}``; the HTTP status of each
class is chosen in one place, ``service.api.errors.STATUS``. ``message`` and ``details`` are what a
client may read; an internal error's (the store's) are logged, and the API answers only
``internal_error`` for it. The Wiro client's own tree is ``service.wiro.errors``.

::

    ServiceError                    internal_error
    ├── ApiError                    bad_request              the request is wrong as sent
    │   ├── InvalidJson             invalid_json
    │   ├── InvalidBody             invalid_body
    │   ├── InvalidMultipart        invalid_multipart
    │   ├── InvalidMetadata         invalid_metadata
    │   ├── UnexpectedFile          unexpected_file
    │   ├── DuplicateField          duplicate_field
    │   ├── ConflictingImage        conflicting_image
    │   ├── EmptyImage              empty_image
    │   ├── UnknownParameter        unknown_parameter
    │   ├── InvalidParameter        invalid_parameter
    │   ├── InvalidCursor           invalid_cursor
    │   ├── InvalidIdempotencyKey   invalid_idempotency_key
    │   ├── InvalidCancelAfter      invalid_cancel_after
    │   ├── Unauthorized            unauthorized
    │   ├── MethodNotAllowed        method_not_allowed
    │   ├── BodyTooLarge            body_too_large
    │   │   └── ImageTooLarge       image_too_large
    │   ├── UnsupportedMediaType    unsupported_media_type
    │   │   └── UnsupportedImageType unsupported_image_type
    │   └── ValidationFailed        validation_failed        one entry per field in ``details``
    │       └── WebhookUrlRefused   webhook_url_refused
    ├── NotFound                    not_found
    │   ├── SubscriptionNotFound    subscription_not_found
    │   └── DeliveryNotFound        delivery_not_found
    ├── Conflict                    conflict                 the resource's state refuses it
    │   ├── CancelRefused           task_finished
    │   ├── TooManySubscriptions    too_many_subscriptions
    │   ├── DeliverySucceeded       delivery_succeeded
    │   └── SubscriptionDisabled    subscription_disabled
    ├── WiroUnavailable             wiro_unavailable         Wiro failed a call the API waits on, for now
    ├── WiroUploadRefused           wiro_upload_refused      Wiro refused the image for good
    └── StoreError                  store_error              the store's own (``service.store``)
        ├── TaskNotFound            task_not_found           also a ``LookupError``
        ├── IdempotencyConflict     idempotency_key_reused
        ├── DatabaseBusy            database_busy
        └── MigrationError          migration_failed
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from service.models import Task


class ServiceError(Exception):
    """Base of every error of the service's own; ``str()`` of one is its ``message``."""

    code: ClassVar[str] = "internal_error"

    def __init__(
        self, message: str, details: Any = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


class ApiError(ServiceError):
    """The request is wrong as sent: its body, a header, a parameter, its size or its type.

    Handlers raise the subclass that names the problem; sending the same request again will not help.
    """

    code = "bad_request"


class InvalidJson(ApiError):
    code = "invalid_json"


class InvalidBody(ApiError):
    """The body is JSON but not the object the route reads."""

    code = "invalid_body"


class InvalidMultipart(ApiError):
    code = "invalid_multipart"


class InvalidMetadata(ApiError):
    """A multipart task's ``metadata`` field is not a JSON object."""

    code = "invalid_metadata"


class UnexpectedFile(ApiError):
    code = "unexpected_file"


class DuplicateField(ApiError):
    code = "duplicate_field"


class ConflictingImage(ApiError):
    """Both an uploaded ``inputImage`` and an ``inputImageUrl``."""

    code = "conflicting_image"


class EmptyImage(ApiError):
    code = "empty_image"


class UnknownParameter(ApiError):
    """A query parameter the route does not take; the names are in ``details.parameters``."""

    code = "unknown_parameter"


class InvalidParameter(ApiError):
    code = "invalid_parameter"


class InvalidCursor(ApiError):
    code = "invalid_cursor"


class InvalidIdempotencyKey(ApiError):
    code = "invalid_idempotency_key"


class InvalidCancelAfter(ApiError):
    code = "invalid_cancel_after"


class Unauthorized(ApiError):
    code = "unauthorized"


class MethodNotAllowed(ApiError):
    code = "method_not_allowed"


class BodyTooLarge(ApiError):
    code = "body_too_large"


class ImageTooLarge(BodyTooLarge):
    code = "image_too_large"


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"


class UnsupportedImageType(UnsupportedMediaType):
    code = "unsupported_image_type"


class ValidationFailed(ApiError):
    """Fields that fail validation; ``details`` has one ``{field, code, message}`` per field."""

    code = "validation_failed"


class WebhookUrlRefused(ValidationFailed):
    """A destination the SSRF guard refuses before anything is stored."""

    code = "webhook_url_refused"


class NotFound(ServiceError):
    code = "not_found"


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"


class Conflict(ServiceError):
    """The request is well formed but the resource's present state refuses it."""

    code = "conflict"


class CancelRefused(Conflict):
    """The task already finished in another state than cancelled."""

    code = "task_finished"

    def __init__(self, task: Task) -> None:
        status = task.status.value
        super().__init__(f"the task already ended as {status}", {"status": status})
        self.task = task


class TooManySubscriptions(Conflict):
    code = "too_many_subscriptions"


class DeliverySucceeded(Conflict):
    code = "delivery_succeeded"


class SubscriptionDisabled(Conflict):
    code = "subscription_disabled"


class WiroUnavailable(ServiceError):
    """A call to Wiro that a request waits on failed in a way that may pass; try again."""

    code = "wiro_unavailable"


class WiroUploadRefused(ServiceError):
    """Wiro refused an uploaded image; sending it again will not help."""

    code = "wiro_upload_refused"


class StoreError(ServiceError):
    """Base of the store's own errors."""

    code = "store_error"


class TaskNotFound(StoreError, LookupError):
    """No task has this id."""

    code = "task_not_found"

    def __init__(self, task_id: str) -> None:
        super().__init__("no task has this id")
        self.task_id = task_id


class IdempotencyConflict(StoreError):
    """The Idempotency-Key was used before with a different request body."""

    code = "idempotency_key_reused"

    def __init__(self, task_id: str) -> None:
        super().__init__("this Idempotency-Key was used with a different request", {"task_id": task_id})
        self.task_id = task_id


class DatabaseBusy(StoreError):
    """Another process serves this SQLite file."""

    code = "database_busy"


class MigrationError(StoreError):
    """The database's recorded migrations disagree with the files."""

    code = "migration_failed"
