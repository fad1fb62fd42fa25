"""Chunked AES-GCM: the round trip, and every way stored bytes can be wrong is detected."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.crypto import DataCipher
from gateway.documents import crypto

CLINIC, DOC = uuid.uuid4(), uuid.uuid4()
AAD = crypto.associated_data(CLINIC, DOC)
CHUNK = 1024  # small chunks so a few KiB span many


def seal(plain: bytes, key: bytes, prefix: bytes, pieces: int = 7) -> bytes:
    encryptor = crypto.ChunkEncryptor(key, prefix, AAD, CHUNK)
    out = bytearray()
    step = max(1, len(plain) // pieces)
    for start in range(0, len(plain), step):  # uneven pieces, like network reads
        out += b"".join(encryptor.feed(plain[start : start + step]))
    out += encryptor.finish()
    return bytes(out)


async def open_(stored: bytes, key: bytes, prefix: bytes, aad: bytes = AAD) -> bytes:
    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(stored), 333):
            yield stored[start : start + 333]

    return b"".join([c async for c in crypto.decrypt_stream(pieces(), key, prefix, aad, CHUNK)])


@pytest.mark.parametrize("size", [1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 17])
async def test_round_trip_and_size(size: int) -> None:
    plain = os.urandom(size)
    key, prefix = crypto.new_object_key(), crypto.new_nonce_prefix()
    stored = seal(plain, key, prefix)
    assert len(stored) == crypto.encrypted_size(size, CHUNK)
    assert plain not in stored
    assert await open_(stored, key, prefix) == plain


async def test_tampering_truncation_reordering_and_swapping_fail() -> None:
    plain = os.urandom(3 * CHUNK + 10)
    key, prefix = crypto.new_object_key(), crypto.new_nonce_prefix()
    stored = seal(plain, key, prefix)
    record = CHUNK + crypto.TAG_SIZE
    flipped = bytearray(stored)
    flipped[5] ^= 1
    attempts = {
        "one bit flipped": bytes(flipped),
        "last chunk dropped": stored[: 3 * record],  # a full chunk without the last flag
        "tail cut": stored[:-1],
        "chunks swapped": stored[record : 2 * record] + stored[:record] + stored[2 * record :],
    }
    for what, bad in attempts.items():
        with pytest.raises(crypto.DocumentCorrupt):
            await open_(bad, key, prefix)
        assert what
    # The object of one document row cannot be served for another.
    with pytest.raises(crypto.DocumentCorrupt):
        await open_(stored, key, prefix, crypto.associated_data(CLINIC, uuid.uuid4()))
    with pytest.raises(crypto.DocumentCorrupt):
        await open_(stored, crypto.new_object_key(), prefix)


def test_key_wrapping_survives_rotation() -> None:
    old, new = DataCipher.generate_key(), DataCipher.generate_key()
    key = crypto.new_object_key()
    wrapped = crypto.wrap_key(DataCipher([old]), key)
    assert key.hex() not in wrapped
    rotated = DataCipher([new, old]).rotate(wrapped)
    assert crypto.unwrap_key(DataCipher([new]), rotated) == key
    with pytest.raises(ValueError):
        crypto.unwrap_key(DataCipher([new]), wrapped)
