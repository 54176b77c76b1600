"""Job configurations in AWS's JSON spelling: read (with AWS's limits) and written back.

The REST door hands over the request members as boto3 spells them
(``{"maximumPerMinute": 10, "exponentialRate": {...}}``); the store keeps the same JSON;
both doors answer with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from ._errors import InvalidRequestError
from ._model import (
    AbortConfig,
    AbortCriterion,
    ExponentialRate,
    FailureType,
    PresignedUrlConfig,
    RetryableFailureType,
    RetryConfig,
    RetryCriterion,
    RolloutConfig,
)

MAX_RATE_PER_MINUTE: Final = 1000
MAX_TIMEOUT_MINUTES: Final = 10080  # 7 days, for both timers
MAX_RETRIES: Final = 10  # numberOfRetries, per criterion (AWS's model)


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"{what} must be an object")
    return value


def _int(value: object, what: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{what} must be an integer")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidRequestError(f"{what} must be {bound}, not {value}")
    return value


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequestError(f"{what} must be a number")
    return float(value)


def _decimals(value: float, places: int) -> bool:
    return math.isclose(round(value, places), value, rel_tol=0, abs_tol=1e-9)


def rollout_from_json(value: object) -> RolloutConfig | None:
    """``jobExecutionsRolloutConfig``; ``None`` for an absent or empty one.

    :raises InvalidRequestError: a value outside AWS's limits.
    """
    if value is None:
        return None
    data = _mapping(value, "jobExecutionsRolloutConfig")
    maximum = data.get("maximumPerMinute")
    if maximum is not None:
        maximum = _int(maximum, "maximumPerMinute", 1, MAX_RATE_PER_MINUTE)
    exponential: ExponentialRate | None = None
    raw = data.get("exponentialRate")
    if raw is not None:
        rate = _mapping(raw, "exponentialRate")
        base = _int(rate.get("baseRatePerMinute"), "baseRatePerMinute", 1, MAX_RATE_PER_MINUTE)
        factor = _number(rate.get("incrementFactor"), "incrementFactor")
        if not 1.1 <= factor <= 5 or not _decimals(factor, 1):
            raise InvalidRequestError(
                "incrementFactor must be between 1.1 and 5 with at most one decimal place")
        criteria = _mapping(rate.get("rateIncreaseCriteria"), "rateIncreaseCriteria")
        notified = criteria.get("numberOfNotifiedThings")
        succeeded = criteria.get("numberOfSucceededThings")
        if (notified is None) == (succeeded is None):
            raise InvalidRequestError("rateIncreaseCriteria needs exactly one of "
                                      "numberOfNotifiedThings and numberOfSucceededThings")
        exponential = ExponentialRate(
            base, factor,
            None if notified is None else _int(notified, "numberOfNotifiedThings", 1),
            None if succeeded is None else _int(succeeded, "numberOfSucceededThings", 1))
    if maximum is None and exponential is None:
        return None
    return RolloutConfig(maximum, exponential)


def rollout_to_json(config: RolloutConfig | None) -> dict[str, Any] | None:
    if config is None:
        return None
    data: dict[str, Any] = {}
    if config.maximum_per_minute is not None:
        data["maximumPerMinute"] = config.maximum_per_minute
    rate = config.exponential_rate
    if rate is not None:
        criteria: dict[str, int] = {}
        if rate.notified_things is not None:
            criteria["numberOfNotifiedThings"] = rate.notified_things
        if rate.succeeded_things is not None:
            criteria["numberOfSucceededThings"] = rate.succeeded_things
        data["exponentialRate"] = {"baseRatePerMinute": rate.base_rate_per_minute,
                                   "incrementFactor": rate.increment_factor,
                                   "rateIncreaseCriteria": criteria}
    return data


def abort_from_json(value: object) -> AbortConfig | None:
    """``abortConfig``; ``None`` when absent.

    :raises InvalidRequestError: an empty list or a value outside AWS's limits.
    """
    if value is None:
        return None
    data = _mapping(value, "abortConfig")
    raw = data.get("criteriaList")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError("abortConfig.criteriaList must list at least one criterion")
    criteria: list[AbortCriterion] = []
    for item in raw:
        entry = _mapping(item, "abort criterion")
        try:
            failure = FailureType(entry.get("failureType"))
        except ValueError:
            raise InvalidRequestError("failureType must be one of FAILED, REJECTED, "
                                      "TIMED_OUT, ALL") from None
        if entry.get("action") != "CANCEL":
            raise InvalidRequestError("The abort action must be CANCEL")
        threshold = _number(entry.get("thresholdPercentage"), "thresholdPercentage")
        if not 0 <= threshold <= 100 or not _decimals(threshold, 2):
            raise InvalidRequestError("thresholdPercentage must be between 0 and 100 with "
                                      "at most two decimal places")
        minimum = _int(entry.get("minNumberOfExecutedThings"), "minNumberOfExecutedThings", 1)
        criteria.append(AbortCriterion(failure, threshold, minimum))
    return AbortConfig(tuple(criteria))


def abort_to_json(config: AbortConfig | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return {"criteriaList": [
        {"failureType": c.failure_type.value, "action": c.action,
         "thresholdPercentage": c.threshold_percentage,
         "minNumberOfExecutedThings": c.min_executed_things}
        for c in config.criteria]}


def timeout_from_json(value: object) -> int | None:
    """``timeoutConfig`` → ``inProgressTimeoutInMinutes`` (``None``: no timer).

    :raises InvalidRequestError: outside 1 minute to 7 days.
    """
    if value is None:
        return None
    data = _mapping(value, "timeoutConfig")
    minutes = data.get("inProgressTimeoutInMinutes")
    if minutes is None:
        return None
    return _int(minutes, "inProgressTimeoutInMinutes", 1, MAX_TIMEOUT_MINUTES)


def timeout_to_json(minutes: int | None) -> dict[str, Any] | None:
    return None if minutes is None else {"inProgressTimeoutInMinutes": minutes}


def presigned_from_json(value: object) -> PresignedUrlConfig | None:
    """``presignedUrlConfig``, kept as given (Bastion signs no S3 URLs).

    :raises InvalidRequestError: ``expiresInSec`` outside 60..3600.
    """
    if value is None:
        return None
    data = _mapping(value, "presignedUrlConfig")
    role = data.get("roleArn")
    if role is not None and not isinstance(role, str):
        raise InvalidRequestError("roleArn must be a string")
    expires = data.get("expiresInSec")
    if expires is not None:
        expires = _int(expires, "expiresInSec", 60, 3600)
    return PresignedUrlConfig(role, expires)


def presigned_to_json(config: PresignedUrlConfig | None) -> dict[str, Any] | None:
    if config is None:
        return None
    data: dict[str, Any] = {}
    if config.role_arn is not None:
        data["roleArn"] = config.role_arn
    if config.expires_in_sec is not None:
        data["expiresInSec"] = config.expires_in_sec
    return data


def retry_from_json(value: object) -> RetryConfig | None:
    """``jobExecutionsRetryConfig``; ``None`` when absent.

    AWS's model: ``criteriaList`` of 1 or 2 criteria, ``failureType`` one of ``FAILED``,
    ``TIMED_OUT``, ``ALL``, ``numberOfRetries`` 0..10. Bastion also refuses a failure type
    named twice, and ``ALL`` beside another criterion (it already covers both), so that
    exactly one criterion decides each failure.

    :raises InvalidRequestError: a value outside those limits.
    """
    if value is None:
        return None
    data = _mapping(value, "jobExecutionsRetryConfig")
    raw = data.get("criteriaList")
    if not isinstance(raw, list) or not 1 <= len(raw) <= 2:
        raise InvalidRequestError(
            "jobExecutionsRetryConfig.criteriaList must list one or two criteria")
    criteria: list[RetryCriterion] = []
    for item in raw:
        entry = _mapping(item, "retry criterion")
        try:
            failure = RetryableFailureType(entry.get("failureType"))
        except ValueError:
            raise InvalidRequestError(
                "failureType must be one of FAILED, TIMED_OUT, ALL") from None
        retries = _int(entry.get("numberOfRetries"), "numberOfRetries", 0, MAX_RETRIES)
        criteria.append(RetryCriterion(failure, retries))
    types = [c.failure_type for c in criteria]
    if len(set(types)) != len(types):
        raise InvalidRequestError("Each failureType may appear once in criteriaList")
    if RetryableFailureType.ALL in types and len(types) > 1:
        raise InvalidRequestError(
            "failureType ALL covers FAILED and TIMED_OUT: it cannot be combined with another "
            "criterion")
    return RetryConfig(tuple(criteria))


def retry_to_json(config: RetryConfig | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return {"criteriaList": [
        {"failureType": c.failure_type.value, "numberOfRetries": c.number_of_retries}
        for c in config.criteria]}
