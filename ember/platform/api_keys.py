"""API keys: created once in plaintext, stored only as a SHA-256 hash, scoped read < write < admin.

A key looks like ``ember-<43 url-safe chars>``; its first 12 characters are kept in clear as a
prefix so `ember keys list` can tell keys apart without revealing them.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from ember.platform.db import Database
from ember.platform.errors import InvalidInputError, NotFoundError
from ember.platform.tables import ApiKey, utcnow
from ember.platform.types import SCOPES, KeyInfo

KEY_PREFIX = "ember-"
PREFIX_CHARS = 12
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        row.id, row.name, row.prefix, list(row.scopes), row.created_at, row.last_used_at, row.revoked_at
    )


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_key(db: Database, name: str, scopes: list[str]) -> tuple[KeyInfo, str]:
    """Store a new key; the plaintext is returned here and never again."""
    if not name.strip():
        raise InvalidInputError("key name must not be empty")
    if not scopes:
        raise InvalidInputError(f"a key needs at least one scope among {', '.join(SCOPES)}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidInputError(f"unknown scope(s) {', '.join(unknown)}; choose among {', '.join(SCOPES)}")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.session() as session:
        row = ApiKey(
            name=name.strip(),
            prefix=plaintext[:PREFIX_CHARS],
            key_hash=hash_key(plaintext),
            scopes=sorted(set(scopes), key=SCOPES.index),
        )
        session.add(row)
        session.flush()
        return _info(row), plaintext


def list_keys(db: Database) -> list[KeyInfo]:
    with db.session() as session:
        return [_info(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(db: Database, key_id_or_prefix: str) -> KeyInfo:
    """Revoke by numeric id or by the prefix shown in `ember keys list`."""
    with db.session() as session:
        query = select(ApiKey).where(ApiKey.prefix == key_id_or_prefix)
        if key_id_or_prefix.isdigit():
            query = select(ApiKey).where(ApiKey.id == int(key_id_or_prefix))
        row = session.scalars(query).first()
        if row is None:
            raise NotFoundError(f"no API key with id or prefix '{key_id_or_prefix}'")
        row.revoked_at = row.revoked_at or utcnow()
        return _info(row)


def verify_key(db: Database, plaintext: str) -> KeyInfo | None:
    """The active key matching ``plaintext``, or None. The hash is compared in constant time."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    digest = hash_key(plaintext)
    with db.session() as session:  # read only: concurrent requests must not queue on a write lock
        candidates = session.scalars(select(ApiKey).where(ApiKey.prefix == plaintext[:PREFIX_CHARS])).all()
        match = next(
            (
                row
                for row in candidates
                if hmac.compare_digest(row.key_hash, digest) and row.revoked_at is None
            ),
            None,
        )
        info = _info(match) if match else None
    if info is not None:
        _touch(db, info.id)
    return info


_last_touch: dict[tuple[str, int], float] = {}  # (database, key id) -> when this process last recorded a use
_touch_lock = threading.Lock()


def _touch(db: Database, key_id: int) -> None:
    """Record the key's last use, at most once a minute per key and process, in its own short write."""
    now = time.monotonic()
    with _touch_lock:
        if now - _last_touch.get((db.url, key_id), -math.inf) < LAST_USED_RESOLUTION.total_seconds():
            return
        _last_touch[db.url, key_id] = now
    with db.session() as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))
