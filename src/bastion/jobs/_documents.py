"""The plug point for job documents kept outside the job: ``documentSource`` and the
``${aws:iot:s3-presigned-url:<url>}`` placeholders (:class:`JobDocumentSource`).

Without one, the service takes documents inline only and hands placeholders to devices
as they are; Bastion plugs in its file service (:class:`bastion.files.FileService`).
"""

from __future__ import annotations

from typing import Final, Protocol

DEFAULT_PRESIGNED_EXPIRY: Final = 3600
"""``presignedUrlConfig.expiresInSec`` when the job does not say (AWS's default)."""


class JobDocumentSource(Protocol):
    """Where job documents and the files they point at are kept."""

    def fetch_document(self, source: str) -> str:
        """The document at ``source`` (a ``documentSource`` URL).

        :raises LookupError: nothing is kept at ``source``.
        :raises ValueError: ``source`` is not a URL this source serves, or holds no text.
        """
        ...

    def check_document(self, document: str) -> None:
        """Check, at job creation, that the placeholders of ``document`` can be resolved.

        :raises LookupError: a placeholder designates a file that does not exist.
        :raises ValueError: a placeholder designates no file this source serves.
        """
        ...

    def presign_document(self, document: str, expires_in_sec: int, *,
                         execution: tuple[str, str, int] | None = None) -> str:
        """``document`` with its placeholders replaced by URLs valid ``expires_in_sec``
        from now — those for uploads by URLs of ``execution`` (job id, thing name,
        execution number); it must not open a store transaction (it runs inside the
        service's)."""
        ...
