"""Per-object encryption of documents: chunked AES-256-GCM, key wrapped by the data key.

Each document gets a random 256-bit key. The plaintext is cut into CHUNK_SIZE
pieces, each sealed on its own (so a 20 MB file streams through in 64 KiB steps):
nonce = 7-byte random prefix | 4-byte chunk index | 1-byte "last chunk" flag,
the associated data binds every chunk to its clinic and document id. Reordering,
dropping, truncating or swapping objects between rows fails authentication.

The object key is stored wrapped by DataCipher (the Fernet keys of
DATA_ENCRYPTION_KEYS), so rotating the data key re-wraps 44-byte keys and never
re-encrypts files.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.crypto import DataCipher

CIPHER_NAME = "aes-256-gcm-chunked-v1"
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
PREFIX_SIZE = 7
MAX_CHUNKS = 2**32


class DocumentCorrupt(Exception):
    """The stored bytes do not authenticate: tampered, truncated, or under another key."""


def new_object_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def new_nonce_prefix() -> bytes:
    return os.urandom(PREFIX_SIZE)


def wrap_key(cipher: DataCipher, key: bytes) -> str:
    return cipher.encrypt(base64.b64encode(key).decode())


def unwrap_key(cipher: DataCipher, wrapped: str) -> bytes:
    return base64.b64decode(cipher.decrypt(wrapped))


def associated_data(clinic_id: uuid.UUID, document_id: uuid.UUID) -> bytes:
    return clinic_id.bytes + document_id.bytes


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= MAX_CHUNKS:
        raise ValueError("object too large for one key")
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def encrypted_size(plain_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    chunks = max(1, -(-plain_size // chunk_size))
    return plain_size + chunks * TAG_SIZE


class ChunkEncryptor:
    """Feed plaintext in any pieces; get sealed chunks back. `finish` seals the last one.

    A full chunk is held back until more data arrives, because only then is it
    known not to be the last (the last chunk carries the flag).
    """

    def __init__(self, key: bytes, prefix: bytes, aad: bytes, chunk_size: int = CHUNK_SIZE) -> None:
        self._aead = AESGCM(key)
        self._prefix = prefix
        self._aad = aad
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._index = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buffer += data
        while len(self._buffer) > self._chunk_size:
            piece = bytes(self._buffer[: self._chunk_size])
            del self._buffer[: self._chunk_size]
            yield self._seal(piece, last=False)

    def finish(self) -> bytes:
        sealed = self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        return sealed

    def _seal(self, piece: bytes, *, last: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index, last), piece, self._aad)
        self._index += 1
        return sealed


async def decrypt_stream(
    stored: AsyncIterable[bytes],
    key: bytes,
    prefix: bytes,
    aad: bytes,
    chunk_size: int = CHUNK_SIZE,
) -> AsyncIterator[bytes]:
    """The plaintext of a stored object, chunk by chunk, authenticated as it goes."""
    aead = AESGCM(key)
    record = chunk_size + TAG_SIZE
    buffer = bytearray()
    index = 0
    try:
        async for data in stored:
            buffer += data
            while len(buffer) > record:
                piece = bytes(buffer[:record])
                del buffer[:record]
                yield aead.decrypt(_nonce(prefix, index, False), piece, aad)
                index += 1
        if len(buffer) < TAG_SIZE:
            raise DocumentCorrupt("stored object is truncated")
        yield aead.decrypt(_nonce(prefix, index, True), bytes(buffer), aad)
    except InvalidTag:
        raise DocumentCorrupt("stored object failed authentication") from None
