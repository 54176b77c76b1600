"""Tags on resources: TagResource, UntagResource, ListTagsForResource, and the ``tags``
that create operations accept.

Theory of operation: a tag is a ``(key, value)`` pair on one resource, which callers name
by ARN. The ARN is split with this service's :class:`~bastion.account.Account` into the
resource type as ARNs spell it and the resource's name or id; only the types in
:data:`bastion.store.TAGGABLE` carry tags (AWS IoT does not tag things, certificates or
topic rule destinations: their ARNs are refused with InvalidRequestException). Each call
checks that the resource exists in the transaction that reads or writes its tags. Tags
live in one table and leave with their resource (the store deletes them with it).

AWS's rules (IoT API reference, the ``Tag`` shape, and AWS's tagging conventions):

* a key has 1–128 characters: Unicode letters, numbers and space separators, and
  ``_ . : / = + - @``; a value 0–256 characters;
* keys beginning with ``aws:`` (any case) are reserved for AWS: refused;
* at most 50 tags per resource: more at creation is InvalidRequestException, more
  through TagResource (counting the tags already there, a key given again replaces its
  value and does not count twice) is LimitExceededException;
* a key given twice in one request keeps the last value.

Tags given at creation are written just after the resource by :meth:`tag_new_resource`
(the create operation's handler calls it); they are checked with :meth:`check_tags` before
the resource is created, so a bad tag creates nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from typing import Final

from bastion.account import Account
from bastion.clock import Clock
from bastion.events import EventSink
from bastion.store import TAGGABLE, Store, UnitOfWork

from ._arns import split_arn
from ._errors import InvalidRequestError, LimitExceededError, ResourceNotFoundError
from ._model import Page
from ._service import ServiceBase

MAX_TAGS: Final = 50
MAX_KEY_LENGTH: Final = 128
MAX_VALUE_LENGTH: Final = 256
RESERVED_PREFIX: Final = "aws:"
_KEY_PUNCTUATION: Final = frozenset("_.:/=+-@")
_TAGGABLE_TYPES: Final = frozenset(TAGGABLE)


def _key_character(char: str) -> bool:
    return char in _KEY_PUNCTUATION or unicodedata.category(char)[0] in "LZN"


def check_tag_key(key: object) -> str:
    """Check one tag key.

    :raises InvalidRequestError: not a string of 1–128 allowed characters, or reserved.
    """
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidRequestError(
            f"Tag keys must be strings of 1 to {MAX_KEY_LENGTH} characters")
    if not all(_key_character(char) for char in key):
        raise InvalidRequestError(
            f"Tag key '{key}' must contain only Unicode letters, numbers, spaces and "
            "_ . : / = + - @")
    if key[:len(RESERVED_PREFIX)].lower() == RESERVED_PREFIX:
        raise InvalidRequestError(
            f"Tag key '{key}' uses the reserved prefix 'aws:', which is for AWS use only")
    return key


def check_tags(tags: object, *, limit: int | None = MAX_TAGS) -> dict[str, str]:
    """Check a list of ``{"Key": …, "Value": …}`` tags (``None``: no tags); returns them
    as a mapping.

    :param limit: at most this many distinct keys (``None``: no limit here).
    :raises InvalidRequestError: a malformed or reserved key, a value of more than 256
        characters, or more than ``limit`` tags.
    """
    if tags is None:
        return {}
    if not isinstance(tags, list | tuple):
        raise InvalidRequestError("tags must be a list of objects with a Key and a Value")
    result: dict[str, str] = {}
    for tag in tags:
        if not isinstance(tag, Mapping):
            raise InvalidRequestError("tags must be a list of objects with a Key and a Value")
        key = check_tag_key(tag.get("Key"))
        value = tag.get("Value")
        value = "" if value is None else value
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            raise InvalidRequestError(
                f"The value of tag '{key}' must be a string of at most {MAX_VALUE_LENGTH} "
                "characters")
        result[key] = value
    if limit is not None and len(result) > limit:
        raise InvalidRequestError(f"A resource can have at most {limit} tags")
    return result


class TaggingService(ServiceBase):
    """Tags of the resources of one account and region.

    Built like the other registry services (see :class:`._service.ServiceBase`).

    :param page_size: the most tags one ListTagsForResource page holds (AWS's call has
        no ``maxResults``); the default holds every tag a resource can have.
    :raises ValueError: ``page_size`` is not a positive int.
    """

    __slots__ = ("_page_size",)

    def __init__(self, store: Store, *, account: Account | None = None,
                 publish: EventSink | None = None, clock: Clock | None = None,
                 page_size: int = MAX_TAGS) -> None:
        super().__init__(store, account=account, publish=publish, clock=clock)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError("page_size must be a positive int")
        self._page_size = page_size

    # -- the operations -------------------------------------------------------------

    def tag_resource(self, resource_arn: str, tags: object) -> None:
        """TagResource: add ``tags``, replacing the values of keys the resource has.

        :raises InvalidRequestError: a bad ARN or a resource type that takes no tags; a
            bad tag.
        :raises ResourceNotFoundError: no such resource here.
        :raises LimitExceededError: the resource would have more than 50 tags.
        """
        kind, ident = self._resource(resource_arn)
        wanted = check_tags(tags, limit=None)
        if not wanted:
            raise InvalidRequestError("At least one tag is required")
        with self._change() as (uow, _events):
            self._require(uow, kind, ident, resource_arn)
            present = uow.tags.tags_of(kind, ident)
            if len(present.keys() | wanted.keys()) > MAX_TAGS:
                raise LimitExceededError(
                    f"A resource can have at most {MAX_TAGS} tags; {resource_arn} has "
                    f"{len(present)}")
            uow.tags.put(kind, ident, wanted)

    def untag_resource(self, resource_arn: str, tag_keys: Iterable[object]) -> None:
        """UntagResource: remove the tags with ``tag_keys`` (absent keys are ignored).

        :raises InvalidRequestError: a bad ARN, type or key.
        :raises ResourceNotFoundError: no such resource here.
        """
        kind, ident = self._resource(resource_arn)
        if isinstance(tag_keys, str):
            raise TypeError("tag_keys must be a sequence of keys, not a str")
        keys = [check_tag_key(key) for key in tag_keys]
        with self._change() as (uow, _events):
            self._require(uow, kind, ident, resource_arn)
            uow.tags.remove(kind, ident, keys)

    def list_tags_for_resource(self, resource_arn: str, *, next_token: str | None = None
                               ) -> Page[tuple[str, str]]:
        """ListTagsForResource: ``(key, value)`` pairs ordered by key, a page at a time.

        :raises InvalidRequestError: a bad ARN, type or ``next_token``.
        :raises ResourceNotFoundError: no such resource here.
        """
        kind, ident = self._resource(resource_arn)
        with self._read() as uow, self._page_token():
            self._require(uow, kind, ident, resource_arn)
            return uow.tags.page(kind, ident, limit=self._page_size, token=next_token)

    def tag_new_resource(self, resource_type: str, resource_id: str,
                         tags: Mapping[str, str]) -> None:
        """Write the tags a create operation was given (checked with :func:`check_tags`).

        :raises ValueError: ``resource_type`` takes no tags.
        :raises ResourceNotFoundError: the resource is gone already.
        """
        if resource_type not in _TAGGABLE_TYPES:
            raise ValueError(f"{resource_type!r} resources take no tags")
        if not tags:
            return
        with self._change() as (uow, _events):
            self._require(uow, resource_type, resource_id, resource_id)
            uow.tags.put(resource_type, resource_id, tags)

    def tags_of(self, resource_type: str, resource_id: str) -> dict[str, str]:
        """Every tag of one resource (none for a resource that does not exist)."""
        with self._read() as uow:
            return uow.tags.tags_of(resource_type, resource_id)

    # -- internals ------------------------------------------------------------------

    def _resource(self, resource_arn: object) -> tuple[str, str]:
        return split_arn(self._account, resource_arn, _TAGGABLE_TYPES)

    @staticmethod
    def _require(uow: UnitOfWork, kind: str, ident: str, what: str) -> None:
        if not uow.tags.resource_exists(kind, ident):
            raise ResourceNotFoundError(f"{what} does not exist")
