"""``python -m cloudsms`` runs the operator CLI."""

from __future__ import annotations

from cloudsms.cli import main

if __name__ == "__main__":
    main()
