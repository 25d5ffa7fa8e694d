"""A stand-in for Wiro's HTTP API, with Wiro's faults on demand.

The relay is developed, demonstrated, tested and load-tested against it with no Wiro account. It
answers ``/v1`` as Wiro does (the seed and Wiro's public documentation), walks each task through
Wiro's statuses on a scalable clock, serves a real mp4 as each success's output, POSTs completion
callbacks, and injects faults on request. ``create_app(EmulatorConfig(...))`` builds it;
``wiro-relay emulator`` runs it.

::

    config.py     EmulatorConfig: credentials, pace, money, seed
    faults.py     Faults (rates and next-N counters) and the injector that applies them
    clock.py      SystemClock, ManualClock
    task.py       one task's timeline and its Task/Detail entry at any moment
    engine.py     the project's tasks and files; Cancel, Kill, limits, balance
    inputs.py     Run's input rules and messages
    protocol.py   envelopes, body encodings, credentials
    callbacks.py  the completion-callback sender
    runtime.py    Emulator: everything one emulator holds (``app.state.emulator``)
    app.py        create_app and the /v1 endpoints
    control.py    /cdn and /_emulator routes
    media.py      the sample video (assets/sample.mp4)
    cli.py        the ``emulator`` command
"""

from service.wiro.emulator.app import create_app
from service.wiro.emulator.clock import Clock, ManualClock, SystemClock
from service.wiro.emulator.config import EmulatorConfig
from service.wiro.emulator.faults import Faults
from service.wiro.emulator.runtime import Emulator

__all__ = ["Clock", "Emulator", "EmulatorConfig", "Faults", "ManualClock", "SystemClock", "create_app"]
