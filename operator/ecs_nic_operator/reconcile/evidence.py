"""Ownership evidence: the attach intent, signed with a key only the operator holds.

The intent (when an attach started, on which server, which ports the server already had) is what lets a
retry after a lost answer adopt the NIC it made instead of attaching a second one. It lives in an
annotation, written with the finalizer in one guarded patch before the POST (the cheapest durable place:
one write), so anyone who may edit the attachment may edit it. Signing makes that harmless: the HMAC covers
the object's uid, cloud and spec identity, so a hand-written, garbled, or copied-from-another-object
intent does not verify, and an unverified intent is evidence of nothing (the reconciler blocks on it).
An earlier intent of the same object, copied back, is signed too: each intent carries a sequence number, and
status.intentSeq (the status subresource, which a namespace user cannot write) holds the latest one the
operator acted on; an intent older than that does not verify either.

The key is a Secret in the operator's own namespace, created by the first operator that needs it, so every
replica (and every restart) verifies the same signatures. A namespace user cannot read it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import secrets

from ecs_nic_operator.kube import Conflict, Gone, Kube
from ecs_nic_operator.resources import Attachment, AttachmentSpec, Intent

log = logging.getLogger("ecs_nic_operator.evidence")

KEY_SECRET = "ecs-nic-operator-intent-key"
KEY_FIELD = "key"


class KeyUnavailable(Exception):
    """The signing key could not be read or created (RBAC, API server down)."""


def _message(uid: str, cloud: str, spec: AttachmentSpec, intent: Intent) -> bytes:
    fields: list[object] = [
        1,
        uid,
        cloud,
        intent.server,
        spec.net_id,
        spec.port_id,
        spec.fixed_ip,
        list(intent.known_ports) if intent.known_ports is not None else None,
        intent.started_at,
        intent.replaces,
    ]
    if intent.seq:
        fields.append(intent.seq)  # intents signed before sequences existed keep their signature
    return json.dumps(fields, separators=(",", ":")).encode()


class Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, obj: Attachment, intent: Intent) -> Intent:
        mac = hmac.new(self._key, _message(obj.uid, obj.spec.cloud, obj.spec, intent), hashlib.sha256)
        return dataclasses.replace(intent, sig=mac.hexdigest())

    def verify(self, obj: Attachment, intent: Intent | None = None) -> bool:
        """Written by this operator for this object, and not older than the latest intent it acted on; or an
        intent of the previous release that the status corroborates (see ``upgraded``)."""
        intent = intent if intent is not None else obj.intent
        if intent is not None and intent is obj.intent and upgraded(obj):
            return True
        if intent is None or not intent.sig or not intent.server or not obj.uid:
            return False
        if intent.seq < obj.intent_seq:
            return False  # an earlier intent of this object, copied back: its baseline is out of date
        want = hmac.new(self._key, _message(obj.uid, obj.spec.cloud, obj.spec, intent), hashlib.sha256).hexdigest()
        return hmac.compare_digest(want, intent.sig)


def previous_release(intent: Intent | None) -> bool:
    """An intent in the previous release's format: a start time and known ports, unsigned."""
    return (
        intent is not None
        and bool(intent.started_at)
        and not intent.sig
        and not intent.server
        and intent.replaces is None
        and not intent.seq
    )


def upgraded(obj: Attachment) -> bool:
    """The upgrade path of an unsigned intent the previous release wrote (its attach unanswered at the upgrade).

    Accepted only where it cannot widen adoption and the status, which a namespace user cannot write, shows the
    previous release handled this object: the spec names the NIC by port ID or fixed IP (so the unsigned
    ``knownPorts`` are never read; adoption takes only that port, and only if no other attachment claims it),
    status has no port and no intentSeq of this release, and its Synced condition, for this generation, has a
    reason other than this release's IntentUnverifiable. A plain-network intent's baseline cannot be
    corroborated by anything in status: it stays IntentUnverifiable (docs/ownership.md says what to do).
    """
    if not previous_release(obj.intent) or obj.port_id or obj.intent_seq:
        return False
    if not (obj.spec.port_id or obj.spec.fixed_ip):
        return False
    status = obj.status
    if status.get("observedGeneration") != obj.generation:
        return False
    synced = next((c for c in status.get("conditions") or [] if c.get("type") == "Synced"), None)
    return synced is not None and synced.get("reason") not in (None, "", "IntentUnverifiable")


class Evidence:
    """The signer, loaded once (get, or create when absent; a lost create race reads the winner's key)."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self._kube = kube
        self.namespace = namespace
        self.signer: Signer | None = None
        self._loading = asyncio.Lock()

    async def load(self) -> Signer:
        if self.signer is not None:
            return self.signer
        async with self._loading:
            if self.signer is None:
                self.signer = Signer(await self._key())
        return self.signer

    async def _key(self) -> bytes:
        where = f"Secret {self.namespace}/{KEY_SECRET}"
        for _ in range(3):
            try:
                data = await self._kube.secret_data(self.namespace, KEY_SECRET)
            except Gone:
                key = base64.b64encode(secrets.token_bytes(32)).decode()
                try:
                    await self._kube.create_secret(self.namespace, KEY_SECRET, {KEY_FIELD: key})
                except Conflict:
                    continue  # another replica created it first: read theirs
                except Gone as exc:
                    raise KeyUnavailable(f"cannot create {where}: namespace {self.namespace!r} not found") from exc
                except Exception as exc:
                    raise KeyUnavailable(f"cannot create {where}: {exc}") from exc
                log.info("created the intent signing key %s", where)
                return base64.b64decode(key)
            except Exception as exc:
                raise KeyUnavailable(f"cannot read {where}: {exc}") from exc
            raw = data.get(KEY_FIELD, "")
            try:
                key_bytes = base64.b64decode(raw, validate=True)
            except ValueError:
                key_bytes = b""
            if len(key_bytes) < 16:
                raise KeyUnavailable(f"{where} has no usable {KEY_FIELD!r} (base64, at least 16 bytes)")
            return key_bytes
        raise KeyUnavailable(f"{where}: created and deleted concurrently; retrying")
