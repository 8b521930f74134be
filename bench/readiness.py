"""How many attachments of a namespace are Ready, followed by a watch rather than by listing them all.

Listing 1,000 attachments four times a second cost the API server and the benchmark more CPU than the
operator spends (about 3 MB of JSON per list): on two cores that starved the system being measured. A watch
streams each change once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import urllib3
from kubernetes import client, watch

GROUP, VERSION, PLURAL = "ecsnic.io", "v1alpha1", "ecsnicattachments"


def is_ready(obj: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in obj.get("status", {}).get("conditions", [])
    )


class ReadyWatch:
    """Started before the objects are created (or before they are deleted): ``ready()`` and ``present()`` count
    the Ready ones and all of them right now."""

    def __init__(self, api: client.CustomObjectsApi, namespace: str) -> None:
        self._api = api
        self._namespace = namespace
        self._ready: set[str] = set()
        self._present: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        self._apply(listed["items"])
        self._version: str = listed["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, name=f"ready-{namespace}", daemon=True)
        self._thread.start()

    def ready(self) -> int:
        with self._lock:
            return len(self._ready)

    def present(self) -> int:
        with self._lock:
            return len(self._present)

    def close(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        self._thread.join(timeout=10)

    def _apply(self, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self._ready = {o["metadata"]["name"] for o in items if is_ready(o)}
            self._present = {o["metadata"]["name"] for o in items}

    def _run(self) -> None:
        while not self._stop.is_set():
            self._watch = watch.Watch()
            try:
                for event in self._watch.stream(
                    self._api.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self._namespace,
                    PLURAL,
                    resource_version=self._version,
                    timeout_seconds=300,
                ):
                    obj = event["object"]
                    self._version = obj["metadata"]["resourceVersion"]
                    name = obj["metadata"]["name"]
                    with self._lock:
                        if event["type"] == "DELETED":
                            self._present.discard(name)
                        else:
                            self._present.add(name)
                        if event["type"] != "DELETED" and is_ready(obj):
                            self._ready.add(name)
                        else:
                            self._ready.discard(name)
            except client.ApiException as exc:
                if exc.status != 410:
                    raise
                self._relist()
            except (urllib3.exceptions.HTTPError, OSError):
                # The stream broke (the API server ends watches at times): go on from the last version seen,
                # as a reflector does; a version too old by then answers 410 and re-lists.
                time.sleep(0.1)

    def _relist(self) -> None:
        listed = self._api.list_namespaced_custom_object(GROUP, VERSION, self._namespace, PLURAL)
        self._apply(listed["items"])
        self._version = listed["metadata"]["resourceVersion"]
