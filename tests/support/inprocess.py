"""The real app served in this process (werkzeug's threaded server), for tests that read the bridge's
own state on its loop or swap its telemetry providers: the same app a subprocess would run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """The app's base URL while it serves; afterwards the server and the bridge (its sessions) are down."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        app.extensions["voicebridge"].shutdown(timeout=2.0)


def serve(request, app: Flask) -> str:
    """`serving` for the rest of the test: down when the test ends (after what it registers later)."""
    stack = ExitStack()
    request.addfinalizer(stack.close)
    return stack.enter_context(serving(app))
