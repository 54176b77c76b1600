"""The wire-error contract: what every refused request carries to the peer.

Whose fault, and what the peer sees: a :class:`ServiceError` is a *remote* violation —
a caller (an operator over HTTPS, a device over MQTT) asked for something the rules
refuse. It carries what the AWS front doors answer:

* :attr:`ServiceError.aws_error_type` — the AWS error type, the ``x-amzn-ErrorType``
  header (``ResourceNotFoundException``), which botocore turns into the exception class
  a client catches;
* :attr:`ServiceError.http_status` — the HTTP status (404);
* :attr:`ServiceError.message` — the ``message`` of the JSON body;
* :meth:`ServiceError.body_fields` — further body fields (``resourceId``,
  ``resourceArn``), usually none.

Each package keeps its own base (``RegistryError``, ``JobsError``, ``ShadowError``…)
deriving from :class:`ServiceError`; its subclasses set the two class attributes. The
API answers every :class:`ServiceError` in one place, from these attributes only. MQTT
doors put their own wire fields on the package's errors (``mqtt_code`` for jobs, the
shadow's ``{"code": http_status}`` document, provisioning's ``errorCode``).

Errors that reach no peer (a store constraint, a keystore that cannot be opened, an MQTT
protocol violation with its reason code) are not :class:`ServiceError`. Local misuse
(a wrong type from our own caller) raises the built-in :class:`TypeError` /
:class:`ValueError`.

This module imports nothing from :mod:`bastion`, so every package can import it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ServiceError"]


class ServiceError(Exception):
    """Base class: a request that is refused, with what goes on the wire.

    Subclasses set :attr:`aws_error_type` and :attr:`http_status` as class attributes; an
    error whose wire identity is only known when it is raised (an :class:`ApiError
    <bastion.api.ApiError>`, a provisioning step the registry refused) sets them on the
    instance.

    :param message: the AWS-style message for the response body. It never contains
        secrets (signatures, secret keys, private keys, ownership tokens).
    :ivar aws_error_type: the AWS error type (``x-amzn-ErrorType``).
    :ivar http_status: the HTTP status, 400–599.
    :ivar message: the body's ``message``.
    """

    aws_error_type: str = "InternalFailureException"
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def aws_error_type_for(self, service: str) -> str:
        """The AWS error type as ``service`` (``iot``, ``iot-data``, ``iot-jobs-data``)
        names it.

        A few refusals are named differently by two AWS services (a version conflict is
        ``VersionConflictException`` in ``iot`` and ``ConflictException`` in
        ``iot-jobs-data``); by default it is :attr:`aws_error_type`.
        """
        del service
        return self.aws_error_type

    def body_fields(self) -> Mapping[str, str]:
        """Fields of the JSON error body besides ``message`` (none by default)."""
        return {}
