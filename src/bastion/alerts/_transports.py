"""The wire: an HTTPS POST and an SMTP submission with STARTTLS (blocking; the
dispatcher runs them in worker threads). Each raises :class:`DeliveryError`, which says
whether trying again may help."""

from __future__ import annotations

import http.client
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Final
from urllib.parse import urlsplit

from ._errors import DeliveryError
from ._model import EmailSettings, WebhookSettings

MAX_RESPONSE: Final = 64 * 1024
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Certificate-verifying client context, TLS 1.2+ (``ca_file`` replaces the system
    trust store)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def post_webhook(settings: WebhookSettings, body: bytes, headers: dict[str, str]) -> int:
    """POST ``body`` to the webhook; the HTTP status of a 2xx answer.

    :raises DeliveryError: connection or TLS failure, timeout, or a non-2xx answer
        (retryable: 5xx, 408, 425, 429 and network errors).
    """
    parts = urlsplit(settings.url)
    if parts.scheme != "https" or not parts.hostname:
        raise DeliveryError("webhook URLs must be https://", retryable=False)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443,
                                             timeout=settings.timeout,
                                             context=tls_context(settings.ca_file))
    try:
        connection.request("POST", path, body=body, headers={
            "Content-Type": "application/json", "User-Agent": "bastion-alerts/1", **headers})
        response = connection.getresponse()
        response.read(MAX_RESPONSE)
        status = response.status
    except ssl.SSLCertVerificationError as error:
        raise DeliveryError(f"TLS verification failed: {error.verify_message}",
                            retryable=True) from None
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        raise DeliveryError(f"{type(error).__name__}: {error}", retryable=True) from None
    finally:
        connection.close()
    if 200 <= status < 300:
        return status
    raise DeliveryError(f"the webhook answered HTTP {status}",
                        retryable=status >= 500 or status in _RETRYABLE_STATUS)


def send_email(settings: EmailSettings, password: str | None, subject: str, text: str,
               message_id_domain: str = "bastion") -> None:
    """Submit one message; the session is upgraded with STARTTLS before anything else.

    :raises DeliveryError: the server is unreachable, offers no STARTTLS (not retryable:
        Bastion never sends alerts in clear), refuses the login or the recipients.
    """
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=message_id_domain)
    message.set_content(text)
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise DeliveryError(f"{settings.host}:{settings.port} does not offer "
                                    "STARTTLS", retryable=False)
            smtp.starttls(context=tls_context(settings.ca_file))
            smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, password or "")
            smtp.send_message(message, from_addr=settings.sender,
                              to_addrs=list(settings.recipients))
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as error:
        raise DeliveryError(f"SMTP login refused ({error.smtp_code})", retryable=False
                            ) from None
    except smtplib.SMTPRecipientsRefused as error:
        raise DeliveryError(f"SMTP recipients refused: {sorted(error.recipients)}",
                            retryable=False) from None
    except smtplib.SMTPResponseException as error:
        raise DeliveryError(f"SMTP error {error.smtp_code}",
                            retryable=error.smtp_code >= 400 and error.smtp_code < 500
                            ) from None
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryError(f"{type(error).__name__}: {error}", retryable=True) from None
