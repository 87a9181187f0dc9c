"""The login and logout pages of a served dashboard (basic auth).

Panel's own pages load their logo and icon from Panel's CDN: a login page would
then reach the internet (and tell a CDN who is logging in, and when). These are
self-contained. Panel reads templates from files, so :func:`template_files`
writes them to a private temporary directory once per process.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

__all__ = ["LOGIN_TEMPLATE", "LOGOUT_TEMPLATE", "template_files"]

_STYLE = """
body { font-family: system-ui, sans-serif; background: #f3f4f6; margin: 0; }
.box { max-width: 340px; margin: 12vh auto; background: #fff; border-radius: 8px;
       padding: 28px 32px; box-shadow: 0 1px 4px rgba(0,0,0,.12); }
h1 { font-size: 20px; margin: 0 0 4px 0; }
p { color: #6b7280; font-size: 14px; margin: 0 0 16px 0; }
input { display: block; width: 100%; box-sizing: border-box; margin: 8px 0;
        padding: 9px 10px; border: 1px solid #d1d5db; border-radius: 5px; font-size: 15px; }
button { width: 100%; margin-top: 10px; padding: 9px; border: 0; border-radius: 5px;
         background: #3730a3; color: #fff; font-size: 15px; cursor: pointer; }
.error { color: #991b1b; font-weight: 600; }
"""

LOGIN_TEMPLATE = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dspex_lab · log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_STYLE}</style></head>
<body><form class="box" action=".{{{{ login_endpoint }}}}" method="post">
<h1>dspex_lab</h1><p>Log in to see the dashboard.</p>
<div class="error">{{{{ errormessage|escape }}}}</div>
<input name="username" type="text" autocapitalize="off" autocorrect="off"
       autocomplete="username" placeholder="user" required autofocus>
<input name="password" type="password" autocomplete="current-password"
       placeholder="password" required>
<button type="submit">Log in</button>
</form></body></html>
"""

LOGOUT_TEMPLATE = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dspex_lab · logged out</title>
<style>{_STYLE}</style></head>
<body><form class="box" action=".{{{{ LOGIN_ENDPOINT }}}}" method="get">
<h1>dspex_lab</h1><p>You are logged out.</p><button type="submit">Log in again</button>
</form></body></html>
"""


@functools.cache
def template_files() -> tuple[str, str]:
    """Paths of the login and logout templates (written once, removed at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="dspex-app-login-"))
    atexit.register(shutil.rmtree, folder, True)
    login, logout = folder / "login.html", folder / "logout.html"
    login.write_text(LOGIN_TEMPLATE, encoding="utf-8")
    logout.write_text(LOGOUT_TEMPLATE, encoding="utf-8")
    return str(login), str(logout)
