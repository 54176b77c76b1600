"""The signing platforms Bastion offers: the catalogue behind ListSigningPlatforms and
GetSigningPlatform, and the check PutSigningProfile makes.

Bastion signs with one algorithm: ECDSA on P-256 over SHA-256, the signature DER-encoded
(what AWS's ``AmazonFreeRTOS-Default`` platform produces and the FreeRTOS OTA agent
checks, ``sig-sha256-ecdsa`` in the OTA job document). Every other AWS platform (RSA,
SHA-1, SHA-384, container images, Lambda) is refused by name, never silently signed
with something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ._errors import NotFoundError, ValidationError


@dataclass(frozen=True, slots=True)
class Platform:
    """A signing platform, as AWS Signer describes one."""

    platform_id: str
    display_name: str
    partner: str
    target: str
    category: str
    encryption_algorithm: str
    hash_algorithm: str
    image_format: str
    max_size_in_mb: int

    def to_json(self) -> dict[str, Any]:
        """The ``SigningPlatform`` shape of the ``signer`` model."""
        return {
            "platformId": self.platform_id,
            "displayName": self.display_name,
            "partner": self.partner,
            "target": self.target,
            "category": self.category,
            "signingConfiguration": {
                "encryptionAlgorithmOptions": {"allowedValues": [self.encryption_algorithm],
                                               "defaultValue": self.encryption_algorithm},
                "hashAlgorithmOptions": {"allowedValues": [self.hash_algorithm],
                                         "defaultValue": self.hash_algorithm},
            },
            "signingImageFormat": {"supportedFormats": [self.image_format],
                                   "defaultFormat": self.image_format},
            "maxSizeInMB": self.max_size_in_mb,
            "revocationSupported": True,
        }


FREERTOS_ECDSA: Final = Platform(
    platform_id="AmazonFreeRTOS-Default",
    display_name="Amazon FreeRTOS",
    partner="AmazonFreeRTOS",
    target="SHA256-ECDSA",
    category="AWSIoT",
    encryption_algorithm="ECDSA",
    hash_algorithm="SHA256",
    image_format="JSONDetached",
    max_size_in_mb=16,
)

PLATFORMS: Final[Mapping[str, Platform]] = {FREERTOS_ECDSA.platform_id: FREERTOS_ECDSA}


def get_platform(platform_id: object) -> Platform:
    """:raises NotFoundError: not a platform Bastion offers."""
    found = PLATFORMS.get(platform_id) if isinstance(platform_id, str) else None
    if found is None:
        raise NotFoundError(f"Signing platform {platform_id!r} does not exist in Bastion")
    return found


def check_platform(platform_id: object) -> Platform:
    """The platform a profile may use.

    :raises ValidationError: any platform but ECDSA P-256 / SHA-256.
    """
    found = PLATFORMS.get(platform_id) if isinstance(platform_id, str) else None
    if found is None:
        raise ValidationError(
            f"Platform {platform_id!r} is not supported: Bastion signs with ECDSA P-256 and "
            f"SHA-256 only (platformId {FREERTOS_ECDSA.platform_id})")
    return found


def check_overrides(platform: Platform, overrides: object) -> dict[str, Any]:
    """The profile's ``overrides``, which may only restate the platform's algorithm.

    :raises ValidationError: another encryption or hash algorithm, another image format.
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ValidationError("overrides must be an object")
    configuration = overrides.get("signingConfiguration") or {}
    if not isinstance(configuration, Mapping):
        raise ValidationError("overrides.signingConfiguration must be an object")
    encryption = configuration.get("encryptionAlgorithm")
    if encryption not in (None, platform.encryption_algorithm):
        raise ValidationError(f"encryptionAlgorithm {encryption} is not supported: "
                              f"{platform.platform_id} signs with "
                              f"{platform.encryption_algorithm} only")
    hashing = configuration.get("hashAlgorithm")
    if hashing not in (None, platform.hash_algorithm):
        raise ValidationError(f"hashAlgorithm {hashing} is not supported: "
                              f"{platform.platform_id} hashes with {platform.hash_algorithm}")
    image_format = overrides.get("signingImageFormat")
    if image_format not in (None, platform.image_format):
        raise ValidationError(f"signingImageFormat {image_format} is not supported: "
                              f"{platform.platform_id} writes {platform.image_format}")
    return dict(overrides)
