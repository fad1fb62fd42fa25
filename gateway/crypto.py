"""Encryption of data at rest (counseling notes, later integration secrets).

Fernet (AES-128-CBC + HMAC-SHA256) with MultiFernet for rotation: the first key
of DATA_ENCRYPTION_KEYS encrypts, every listed key decrypts, and `rotate`
re-encrypts a value under the first key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class DataCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            # Never include the token or the key in the message.
            raise ValueError("stored value cannot be decrypted with the configured keys") from exc

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()
