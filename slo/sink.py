"""A webhook receiver on loopback that logs what it gets (the demo's pager).

It accepts Alertmanager webhook JSON (version "4") as genobs' ``webhook`` receiver sends
it, checks the ``X-Genobs-Signature`` when given a secret, and calls ``on_message`` (and
logs) for each message. Binds 127.0.0.1 on a free port; ``close()`` stops it.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from genobs.slo.notifiers import sign

log = logging.getLogger("genobs.slo.sink")


def describe(message: dict[str, Any]) -> list[str]:
    """One line per alert: status, severity, SLO, summary."""
    lines = []
    for alert in message.get("alerts", []):
        labels = alert.get("labels", {})
        lines.append(f"[{alert.get('status', '?').upper()}] {labels.get('severity', '?')} {labels.get('slo', '?')}: "
                     f"{alert.get('annotations', {}).get('summary', '')} (since {alert.get('startsAt')})")
    return lines


class WebhookSink:
    def __init__(self, *, secret: str | None = None,
                 on_message: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.rejected = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if secret is not None and not hmac.compare_digest(
                        self.headers.get("X-Genobs-Signature", ""), sign(body, secret)):
                    sink.rejected += 1
                    self._answer(401)
                    return
                try:
                    message = json.loads(body)
                except ValueError:
                    self._answer(400)
                    return
                sink.messages.append(message)
                for line in describe(message):
                    log.info("webhook: %s", line)
                if on_message is not None:
                    on_message(message)
                self._answer(200)

            def _answer(self, code: int) -> None:
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, name="genobs-webhook-sink", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "WebhookSink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
