"""The composition root: builds a process's components by role, wires them, starts, stops, serves.

* ``platform``: ``Platform`` and ``build_platform`` (the components of a role and the wake-ups
  between them), start in order and stop in reverse;
* ``components``: the start/stop protocol (``Component``) and the adapters to it;
* ``uip_server``: ``UipServer``, the UIP listener (the platform's own HTTP protocol), which
  starts and stops the platform;
* ``serve``: the UIP listener and the admin listener (uvicorn), side by side;
* ``listening``: the admin listener's uvicorn server that logs what it listens on.

Nothing below this package imports it; the CLI (and tests) build platforms through it.
"""

from __future__ import annotations

from cloudsms.runtime.components import Component
from cloudsms.runtime.platform import Platform, build_platform, webhook_settings
from cloudsms.runtime.uip_server import UipServer

__all__ = ["Component", "Platform", "UipServer", "build_platform", "webhook_settings"]
