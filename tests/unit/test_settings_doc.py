"""Every setting is documented in docs/settings.md, and settings resolve env > file > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudsms.config import Settings
from cloudsms.exceptions import ConfigError

DOC = Path(__file__).parents[2] / "docs" / "settings.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [
        name for name, _, _ in Settings.describe() if f"`CLOUDSMS_{name.upper()}`" not in text
    ]
    assert missing == []


def test_resolution_order(tmp_path: Path) -> None:
    file = tmp_path / "cloudsms.toml"
    file.write_text('port = 2000\nhost = "0.0.0.0"\nlog_json = true\n')
    settings = Settings.load(file=file, environ={"CLOUDSMS_PORT": "3000"})
    assert (settings.port, settings.host, settings.log_json) == (3000, "0.0.0.0", True)
    assert Settings.load(file=file, environ={"CLOUDSMS_PORT": "3000"}, port=4000).port == 4000
    assert Settings.load(environ={}).port == 1815


@pytest.mark.parametrize(
    ("environ", "file_text"),
    [({"CLOUDSMS_PORT": "eighty"}, None), ({}, "nonsense = 1\n"), ({}, "port = [\n")],
)
def test_bad_settings_are_readable_errors(
    tmp_path: Path, environ: dict[str, str], file_text: str | None
) -> None:
    file = None
    if file_text is not None:
        file = tmp_path / "bad.toml"
        file.write_text(file_text)
    with pytest.raises(ConfigError) as info:
        Settings.load(file=file, environ=environ)
    assert str(info.value)
