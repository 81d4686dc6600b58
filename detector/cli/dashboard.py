"""`distillguard dashboard`: the Streamlit triage app as a server process."""

from __future__ import annotations

import os
import sys
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import typer

from detector.cli import RulesOption, WarehouseOption, app, console, fail, load_rules
from detector.cli.nightly import DEFAULT_WAREHOUSE


@app.command()
def dashboard(
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    address: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8501,
    roles: Annotated[
        Path | None, typer.Option(help="Roles file (TOML: analysts = [...], viewers = [...])")
    ] = None,
    trusted_header: Annotated[
        str | None,
        typer.Option(help="Take the user from this header set by an authenticating proxy"),
    ] = None,
    read_only: Annotated[bool, typer.Option(help="Everyone is a viewer")] = False,
    rules_dir: RulesOption = None,
) -> None:
    """Serve the Streamlit triage dashboard (localhost only unless login is configured)."""
    from dashboards.access import serving_refusal

    refusal = serving_refusal(address, trusted_header)
    if refusal:
        raise fail(refusal)
    if roles is not None and not roles.is_file():
        raise fail(f"--roles {roles}: no such file")
    if not warehouse.is_file():
        console.print(f"[yellow]note:[/yellow] {warehouse} does not exist yet; the pages say so")
    env = os.environ | {"DISTILLGUARD_WAREHOUSE": str(warehouse.resolve())}
    if roles is not None:
        env["DISTILLGUARD_ROLES"] = str(roles.resolve())
    if trusted_header:
        env["DISTILLGUARD_TRUSTED_HEADER"] = trusted_header
    if read_only:
        env["DISTILLGUARD_ROLE"] = "viewer"
    if rules_dir is not None:
        load_rules(rules_dir)  # refuse bad rule files before serving
        env["DISTILLGUARD_RULES"] = str(rules_dir.resolve())
    command = [
        sys.executable, "-m", "streamlit", "run", str(files("dashboards") / "app.py"),
        "--server.address", address, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    console.print(f"Dashboard on http://{address}:{port} (Ctrl-C stops it)")
    sys.stdout.flush()
    # become the server: signals (Ctrl-C, a supervisor's SIGTERM) reach Streamlit itself
    os.execve(sys.executable, command, env)
