"""The Wiro client's error tree: callers decide by class, never by parsing messages.

::

    WiroError
    ├── WiroTransientError          try again later (reads are retried by the client itself)
    │   ├── WiroNetworkError        connect/read failure or timeout on a call that is safe to repeat
    │   ├── WiroServerError         HTTP 408 or 5xx
    │   ├── WiroRateLimited         HTTP 429 (``retry_after`` when Wiro sent one)
    │   └── WiroConcurrencyLimit    code 96: the project's running-task limit is reached
    ├── WiroPermanentError          repeating the same call will not help
    │   ├── WiroValidationError     code 0, with Wiro's own message (``Request parameter [x] ...``)
    │   ├── WiroNotFound            code 1 (``There is no task yet.``, not cancellable, ...)
    │   ├── WiroInsufficientBalance code 97
    │   └── WiroAuthError           codes 98, 99, HTTP 401 and 403
    └── WiroAmbiguousError          a Run that may have reached Wiro but got no answer: the task
                                    may exist and bill, so it must be reconciled, never resent blindly

Two labels are class attributes, so a caller reads one instead of keeping a table of classes:
``outcome``, the ``outcome`` of ``wiro_relay_wiro_call_duration_seconds`` for a call that failed so,
and ``relay_code``, the ``error.code`` a task ends ``failed`` with when Wiro refuses its Run so. A
class that sets neither inherits its parent's::

    class                           outcome               relay_code
    WiroError (and its branches)    error                 wiro_refused
    WiroServerError                 server_error
    WiroRateLimited                 rate_limited
    WiroConcurrencyLimit            concurrency_limit
    WiroValidationError             validation_error      wiro_validation_error
    WiroNotFound                    not_found             wiro_not_found
    WiroInsufficientBalance         insufficient_balance  wiro_insufficient_balance
    WiroAuthError                   auth_error
    WiroAmbiguousError              ambiguous
"""

from __future__ import annotations

from typing import ClassVar


class WiroError(Exception):
    """Base of every error the Wiro client raises."""

    outcome: ClassVar[str] = "error"
    relay_code: ClassVar[str] = "wiro_refused"

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        code: int | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, endpoint={self.endpoint!r}, "
            f"code={self.code!r}, http_status={self.http_status!r})"
        )


class WiroTransientError(WiroError):
    """The call failed in a way that may pass: retry with backoff."""


class WiroNetworkError(WiroTransientError):
    """No answer: connection refused or reset, or a timeout on a call safe to repeat."""


class WiroServerError(WiroTransientError):
    """HTTP 408 or 5xx from Wiro."""

    outcome = "server_error"


class WiroRateLimited(WiroTransientError):
    """HTTP 429: Wiro's per-project rate limit."""

    outcome = "rate_limited"


class WiroConcurrencyLimit(WiroTransientError):
    """Code 96: as many tasks are running as the balance allows; retry later."""

    outcome = "concurrency_limit"


class WiroPermanentError(WiroError):
    """Wiro refused the call; repeating it unchanged will not succeed."""


class WiroValidationError(WiroPermanentError):
    """Code 0: the request was refused, usually an input rule; ``message`` is Wiro's."""

    outcome = "validation_error"
    relay_code = "wiro_validation_error"


class WiroNotFound(WiroPermanentError):
    """Code 1: no such task, or the task is not in a state that allows the call."""

    outcome = "not_found"
    relay_code = "wiro_not_found"


class WiroInsufficientBalance(WiroPermanentError):
    """Code 97: the project's balance cannot pay for the task."""

    outcome = "insufficient_balance"
    relay_code = "wiro_insufficient_balance"


class WiroAuthError(WiroPermanentError):
    """Codes 98 and 99, HTTP 401 and 403: the credentials are missing, wrong or not allowed."""

    outcome = "auth_error"


class WiroAmbiguousError(WiroError):
    """A Run that may have reached Wiro but got no usable answer.

    The task may exist and may bill. Reconcile (Task/List, matching the callbackUrl) before any
    second Run for the same job.
    """

    outcome = "ambiguous"


CODE_CLASSES: dict[int, type[WiroError]] = {
    0: WiroValidationError,
    1: WiroNotFound,
    96: WiroConcurrencyLimit,
    97: WiroInsufficientBalance,
    98: WiroAuthError,
    99: WiroAuthError,
}
"""Wiro's documented ``errors[].code`` values and the class each maps to."""
