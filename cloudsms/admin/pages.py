"""What the console and the portal pages share: templates, sessions, forms, flash messages.

Pages are rendered on the server (Jinja2, autoescaped); the only script is the console's own
``static/console.js`` plus Chart.js, served by the platform from the directory ``make assets``
installs it into (``vendor_dir``), so the pages need no network but the platform's.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from cloudsms.admin import auth
from cloudsms.admin.context import AdminContext, fmt_money, fmt_time
from cloudsms.admin.errors import ApiError

PACKAGE_DIR = Path(__file__).parent
#: Where ``make assets`` installs the front-end packages (``package.json`` beside this file).
DEFAULT_VENDOR_DIR = PACKAGE_DIR / "node_modules"
#: The Chart.js build the pages load, relative to the vendor directory.
CHART_JS = Path("chart.js/dist/chart.umd.min.js")
FLASH_COOKIE = "cloudsms_flash"
MAX_FORM = 65_536


def vendor_dir() -> Path:
    """The installed front-end packages: ``CLOUDSMS_CONSOLE_ASSETS`` or the package's own."""
    configured = os.environ.get("CLOUDSMS_CONSOLE_ASSETS")
    return Path(configured) if configured else DEFAULT_VENDOR_DIR


def chart_js_path() -> Path | None:
    path = vendor_dir() / CHART_JS
    return path if path.is_file() else None


def _tojson(value: Any) -> str:
    # Safe inside <script>: no "</" can close the element early.
    return json.dumps(value, default=str).replace("</", "<\\/")


env = Environment(
    loader=PackageLoader("cloudsms.admin", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["time"] = fmt_time
env.filters["money"] = fmt_money
env.filters["tojson_safe"] = _tojson
env.filters["pct"] = lambda v: "–" if v is None else f"{v * 100:.1f}%"


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    flash = read_flash(request)
    html = env.get_template(template).render(
        request=request, flash=flash, charts=chart_js_path() is not None, **values
    )
    response = HTMLResponse(html, status_code=status_code)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


# -- cookies ----------------------------------------------------------------------------------


def set_cookie(ctx: AdminContext, response: Response, name: str, value: str, path: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=ctx.signer.max_age_s,
        path=path,
        httponly=True,
        samesite="strict",
        secure=ctx.secure_cookies,
    )


def flash_redirect(
    ctx: AdminContext, url: str, message: str, level: str = "ok", status: int = 303
) -> RedirectResponse:
    response = RedirectResponse(url, status_code=status)
    value = ctx.signer.dumps({"m": message[:500], "l": level})
    response.set_cookie(FLASH_COOKIE, value, path="/", httponly=True, samesite="strict")
    return response


def read_flash(request: Request) -> dict[str, str] | None:
    ctx: AdminContext = request.app.state.admin
    data = ctx.signer.loads(request.cookies.get(FLASH_COOKIE))
    if not data:
        return None
    return {"message": str(data.get("m", "")), "level": str(data.get("l", "ok"))}


# -- forms ------------------------------------------------------------------------------------


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (the only kind our forms send)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/x-www-form-urlencoded", ""):
        raise ApiError(415, "forms must be sent as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM:
        raise ApiError(413, "form too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise ApiError(400, "form is not UTF-8") from exc
    return dict(pairs)


def safe_next(value: str | None, prefix: str, default: str) -> str:
    """A redirect target inside ``prefix`` only (never another site: no open redirect)."""
    if value and value.startswith(prefix) and not value.startswith("//") and "\\" not in value:
        return value
    return default


def login_redirect(request: Request, login_path: str) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{login_path}?next={quote(target)}", status_code=303)


def new_prelogin() -> str:
    """A random value set as a cookie and echoed by the login form (double-submit CSRF)."""
    return secrets.token_urlsafe(18)


def check_csrf(session: Mapping[str, Any], form: Mapping[str, str]) -> None:
    if not auth.csrf_ok(session.get("csrf"), form.get("csrf")):
        raise ApiError(403, "the form expired or came from another site (CSRF check failed)")
