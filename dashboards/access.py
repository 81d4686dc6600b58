"""Who is looking, and what they may do: viewer (read) or analyst (read and decide).

Identity comes from, in this order:
1. Streamlit's OIDC login (`st.login`) when `.streamlit/secrets.toml` has an `[auth]` section;
2. a header set by an authenticating reverse proxy, named by `DISTILLGUARD_TRUSTED_HEADER`
   (e.g. `X-Forwarded-Email` behind oauth2-proxy); only safe when the proxy is the sole way in;
3. otherwise the local user (`DISTILLGUARD_USER`, else the OS login): the server then listens on
   localhost only, so whoever reaches it is at the machine.

Roles come from the TOML file named by `DISTILLGUARD_ROLES`:

    analysts = ["alice@example.com", "*@trust.example.com"]
    viewers = ["*"]

(shell-style patterns; anyone listed under neither gets no access). Without a roles file the
local user is an analyst and a logged-in or proxied user is a viewer.
`DISTILLGUARD_ROLE=viewer` forces read-only for everyone.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import streamlit as st

ROLES = ("viewer", "analyst")


@dataclass(frozen=True)
class User:
    name: str
    role: str | None  # None: not allowed in
    how: str  # "oidc", "proxy" or "local"

    @property
    def can_decide(self) -> bool:
        return self.role == "analyst"


def role_for(name: str, rules: dict | None, how: str) -> str | None:
    """The role a user gets from the roles file's `analysts`/`viewers` patterns."""
    if rules is None:
        return "analyst" if how == "local" else "viewer"
    for role, key in (("analyst", "analysts"), ("viewer", "viewers")):
        patterns = rules.get(key, [])
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"roles file: {key} must be a list of strings, got {patterns!r}")
        if any(fnmatchcase(name.lower(), p.lower()) for p in patterns):
            return role
    return None


def load_rules(path: str | None) -> dict | None:
    if not path:
        return None
    file = Path(path)
    try:
        return tomllib.loads(file.read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"DISTILLGUARD_ROLES: {file} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"DISTILLGUARD_ROLES: {file} is not valid TOML ({exc})") from exc


LOOPBACK = ("127.0.0.1", "localhost", "::1")
SECRETS = (Path(".streamlit/secrets.toml"), Path.home() / ".streamlit/secrets.toml")
"""Where Streamlit looks for `secrets.toml` (the working directory's, then the user's)."""


def login_configured_on_disk() -> bool:
    """Whether a secrets file Streamlit will read has an `[auth]` section (OIDC login), read
    before the server starts (`oidc_configured` asks the running app)."""
    for secrets in SECRETS:
        if secrets.is_file() and "auth" in tomllib.loads(secrets.read_text()):
            return True
    return False


def serving_refusal(address: str, trusted_header: str | None) -> str | None:
    """Why the dashboard must not listen on `address`, or None when it may: beyond loopback
    only with a login (OIDC) or behind an authenticating proxy (`trusted_header`)."""
    if address in LOOPBACK or trusted_header or login_configured_on_disk():
        return None
    return (
        f"--address {address} would serve beyond this machine without login: configure "
        "st.login ([auth] in .streamlit/secrets.toml) or --trusted-header behind a proxy"
    )


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: Streamlit raises its own not-found error
        return False


def current_user() -> User:
    """The session's user; stops the page with a login button or a refusal when needed."""
    if oidc_configured():
        if not st.user.is_logged_in:
            st.title("distillguard triage")
            st.button("Log in", on_click=st.login, type="primary")
            st.stop()
        name, how = str(st.user.get("email") or st.user.get("name") or "unknown"), "oidc"
    elif header := os.environ.get("DISTILLGUARD_TRUSTED_HEADER"):
        name, how = st.context.headers.get(header, ""), "proxy"
        if not name:
            st.error(f"No {header} header: open the dashboard through the authenticating proxy.")
            st.stop()
    else:
        name, how = os.environ.get("DISTILLGUARD_USER") or getpass.getuser(), "local"
    role = role_for(name, load_rules(os.environ.get("DISTILLGUARD_ROLES")), how)
    if role and os.environ.get("DISTILLGUARD_ROLE") == "viewer":
        role = "viewer"
    return User(name, role, how)
