"""Command line: `python -m voicebridge serve|emulator|smoke`."""

from __future__ import annotations

import argparse
import os
import sys

from . import logs
from .settings import Settings, SettingsError


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"voicebridge: invalid configuration: {exc}", file=sys.stderr)
        return 2
    from .tools import Toolbox, ToolLoadError

    try:  # here, so that a tools module that cannot load stops startup with its reason
        Toolbox.load(settings.tools)
    except ToolLoadError as exc:
        print(f"voicebridge: invalid configuration: VOICEBRIDGE_TOOLS: {exc}", file=sys.stderr)
        return 2
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    settings = settings.with_overrides(**overrides)
    logs.configure(settings.log_level)
    from .server import port_in_use, serve

    if port_in_use(settings.host, settings.port):
        print(f"voicebridge: port {settings.port} on {settings.host} is already in use (another server running?); "
              f"stop it, or choose another port: PORT={settings.port + 1} make run", file=sys.stderr)
        return 1
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(f"voicebridge: open http://{shown}:{settings.port}/ in your browser (Ctrl-C stops)", file=sys.stderr)
    serve(settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="voicebridge", description="Talk to Azure AI Voice Live from a browser.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web app (gunicorn, one event-loop worker per core)")
    serve.add_argument("--host", help="interface to bind (default VOICEBRIDGE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default PORT or 8000)")
    commands.add_parser("emulator", help="run the built-in Voice Live emulator alone", add_help=False)
    commands.add_parser("smoke", help="check a deployed app end to end", add_help=False)

    if argv and argv[0] == "emulator":
        from .emulator.cli import main as emulator_main

        return emulator_main(argv[1:])
    if argv and argv[0] == "smoke":
        from .smoke import main as smoke_main

        return smoke_main(argv[1:])
    args = parser.parse_args(argv)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
