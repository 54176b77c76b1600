"""Bastion: a self-hosted device gateway with the security plane of AWS IoT Core."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
