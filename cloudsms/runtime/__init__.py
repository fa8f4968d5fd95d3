"""The composition root: builds a process's components by role, wires them, starts, stops, serves.

* ``platform``: ``Platform`` and ``build_platform`` (the components of a role and the wake-ups
  between them), start in order and stop in reverse;
* ``components``: the start/stop protocol (``Component``) and the adapters to it;
* ``app``: ``create_app``, the UIP listener's app whose lifespan runs the platform;
* ``serve``: uvicorn for the UIP listener and the admin listener, side by side;
* ``listening``: the uvicorn server that logs what it listens on.

Nothing below this package imports it; the CLI (and tests) build platforms through it.
"""

from __future__ import annotations

from cloudsms.runtime.app import create_app
from cloudsms.runtime.components import Component
from cloudsms.runtime.platform import Platform, build_platform, webhook_settings

__all__ = ["Component", "Platform", "build_platform", "create_app", "webhook_settings"]
