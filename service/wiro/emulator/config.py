"""How one emulator is built: the project's credentials, its balance and limits, its pace, its faults.

Nothing here reads the environment: the CLI does (``WIRO_API_KEY`` / ``WIRO_API_SECRET``) and hands
the values in, and tests build an ``EmulatorConfig`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.wiro.emulator.faults import Faults


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Settings fixed for the emulator's life (faults and the project's money can change at run time).

    - ``api_key`` / ``api_secret``: with both, signature mode (``x-api-key``, ``x-nonce``,
      ``x-signature`` required); with a key only, key-only mode; with neither, no authentication at
      all, so a demo works without credentials.
    - ``time_scale``: multiplies every emulated duration (1.0 = as long as the real model; tests use
      0.001-0.01). Reported ``elapsedseconds`` and costs stay those of the real model.
    - ``fail_rate``: share of tasks that fail (a shortcut for ``faults.fail_rate``, used when > 0).
    - ``max_concurrency``: most tasks from ``task_queue`` until terminal; 0 = Wiro's own rule
      (``max(1, floor(balance * 0.10))`` while the balance is ≤ $250, else unlimited).
    - ``balance_usd``: the project's balance (None = unlimited); successful and killed tasks are
      charged against it, and Run answers code 97 when it cannot pay.
    - ``seed``: seeds the RNG behind ids, tokens and fault rates (None = different every run).
    - ``public_url``: base of the emulator's own URLs in answers (outputs, uploads); by default the
      base URL each request came in on.
    - ``callback_timeout``: seconds for one callback POST.
    - ``first_task_id``: the first task's id (None = derived from the start time, so a restarted
      emulator does not hand out an id it gave before).
    """

    api_key: str | None = None
    api_secret: str | None = None
    time_scale: float = 1.0
    fail_rate: float = 0.0
    max_concurrency: int = 0
    balance_usd: float | None = None
    seed: int | None = None
    public_url: str | None = None
    callback_timeout: float = 10.0
    first_task_id: int | None = None
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        if self.api_secret and not self.api_key:
            raise ValueError("api_secret needs api_key (signature mode signs with both)")
        if not self.time_scale > 0:
            raise ValueError("time_scale must be positive")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        if self.max_concurrency < 0:
            raise ValueError("max_concurrency must not be negative (0 = Wiro's own rule)")
        if self.balance_usd is not None and self.balance_usd < 0:
            raise ValueError("balance_usd must not be negative")
        if self.callback_timeout <= 0:
            raise ValueError("callback_timeout must be positive")
        self.faults.check()

    def initial_faults(self) -> Faults:
        """A fresh, mutable copy of the faults to start (or reset) with."""
        faults = self.faults.updated({})
        if self.fail_rate > 0:
            faults.fail_rate = self.fail_rate
        return faults
