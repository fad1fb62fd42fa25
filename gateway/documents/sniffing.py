"""What a file really is, from its first bytes (never from its name or a header).

Only the allow-list is accepted: PDF, PNG, JPEG. A name whose extension claims
another allowed type than the bytes show is refused too (a disguised file).
"""

from __future__ import annotations

from pathlib import PurePosixPath

# (magic bytes, content type); the longest signature is 8 bytes.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
SNIFF_BYTES = 8
ALLOWED = frozenset(content_type for _, content_type in SIGNATURES)
EXTENSIONS = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
FILE_EXTENSION = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}


def sniff(head: bytes) -> str | None:
    """The allowed content type the bytes start with, or None."""
    for magic, content_type in SIGNATURES:
        if head.startswith(magic):
            return content_type
    return None


def claimed_type(filename: str | None) -> str | None:
    """The content type the file name's extension claims (None: no or unknown extension)."""
    if not filename:
        return None
    return EXTENSIONS.get(PurePosixPath(filename).suffix.lower())
