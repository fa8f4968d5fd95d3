"""CloudSMS: UIP packets over HTTP in, SMPP 3.4 out to carriers, delivery reports back.

``cloudsms.__version__`` is the installed distribution's version (``cloudsms --version``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cloudsms")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
