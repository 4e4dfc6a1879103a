"""`Notifier`: the governor's `on_event` hook that delivers events to their channels off the caller's path.

Delivery runs on one daemon thread with a bounded queue; a failed POST is retried with backoff and then
logged — a notification is never allowed to slow down or fail a call.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from fiscus.notify.channels import ChannelConfig, NotifyConfig
from fiscus.notify.payloads import event_dict, payload, summary

log = logging.getLogger("fiscus.notify")

Post = Callable[[str, dict[str, Any], float], None]


def post_json(url: str, body: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


class Notifier:
    def __init__(
        self,
        config: NotifyConfig,
        *,
        post: Post = post_json,
        attempts: int = 3,
        backoff_s: float = 0.5,
        max_queue: int = 10_000,
    ) -> None:
        self.config = config
        self._post = post
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._queue: queue.Queue[tuple[str, object] | None] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    def __call__(self, event: object) -> None:
        for name in self.channels_for(event):
            try:
                self._queue.put_nowait((name, event))
            except queue.Full:
                self.failed += 1
                log.warning("notification queue full; dropped %s for %s", type(event).__name__, name)
                continue
            self._ensure_thread()

    def channels_for(self, event: object) -> list[str]:
        named = getattr(event, "channel", None)
        if named:
            if named not in self.config.channels:
                log.warning("event names channel %r, which fiscus.yaml does not configure", named)
                return list(self.config.default)
            return [named]
        return list(self.config.default)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued notification was delivered or given up on."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="fiscus-notify", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._deliver(*item)
            finally:
                self._queue.task_done()

    def _deliver(self, name: str, event: object) -> None:
        channel: ChannelConfig = self.config.channels[name]
        if channel.kind == "log":
            log.warning("%s", summary(event_dict(event)))
            self.delivered += 1
            return
        for attempt in range(self._attempts):
            try:
                self._post(channel.target_url(), payload(channel, event), channel.timeout_s)
            except Exception as exc:
                if attempt + 1 == self._attempts:
                    self.failed += 1
                    log.warning("notify %s failed after %d attempts: %s", name, self._attempts, exc)
                    return
                time.sleep(self._backoff_s * (2**attempt))
            else:
                self.delivered += 1
                return
