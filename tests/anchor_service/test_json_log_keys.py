"""JSON log lines spell their keys in camelCase, like every JSON document the project writes:
the fields the service adds (a repeat summary's flag) and those a library passes (uvicorn's
start-up lines) alike. A real process writing to a real stderr, with a real uvicorn server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from typing import Any

from testkit.net import free_port

_SNAKE = re.compile(r"[a-z0-9]_[a-z0-9]")


def _json_lines(script: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=60, check=True)
    return [json.loads(line) for line in done.stderr.splitlines()]


def test_json_log_keys_are_camel_case() -> None:
    lines = _json_lines(f"""
        import logging, threading
        import uvicorn
        from anchor_service.logs import configure_logging

        async def app(scope, receive, send):
            pass

        repeats = configure_logging(json_lines=True, repeat_limit=2, repeat_interval=60)
        for n in range(5):
            logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
        repeats.flush()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port={free_port()},
                                               log_config=None, lifespan="off"))
        def stop_when_started():
            while not server.started:
                threading.Event().wait(0.05)
            server.should_exit = True
        threading.Thread(target=stop_when_started, daemon=True).start()
        server.run()
    """)
    summary = next(line for line in lines if line["message"].startswith("suppressed"))
    assert summary["repeatSummary"] is True
    running = next(line for line in lines if line["message"].startswith("Uvicorn running on"))
    assert running["logger"] == "uvicorn.error"
    assert [key for line in lines for key in line if _SNAKE.search(key)] == []
