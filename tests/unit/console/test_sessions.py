"""Console sessions and the sign-in limit, driven by a clock moved by hand."""

from __future__ import annotations

from bastion.access import Role
from bastion.console import SessionBook, SignInLimiter
from support.clock import ManualClock


def _book(clock: ManualClock) -> SessionBook:
    return SessionBook(clock, idle_timeout=900, absolute_timeout=8 * 3600)


def test_a_session_is_found_by_its_token_only() -> None:
    book = _book(ManualClock(monotonic=100.0))
    session = book.open("AKIAAUDITOR00000001", Role.AUDITOR, "127.0.0.1")
    assert book.find(session.token) is session
    assert book.find(session.csrf_token) is None
    assert book.find(session.token + "x") is None
    assert book.find("") is None and book.find(None) is None
    other = book.open("AKIAAUDITOR00000001", Role.AUDITOR, "127.0.0.1")
    assert other.token != session.token and other.csrf_token != session.csrf_token
    assert len(session.token) >= 43  # 256 bits, base64url


def test_idle_timeout_ends_a_session_and_requests_move_it_on() -> None:
    clock = ManualClock(monotonic=100.0)
    book = _book(clock)
    session = book.open("AKIAOPERATOR0000001", Role.OPERATOR, "127.0.0.1")
    clock.advance(899)
    assert book.find(session.token) is session  # moves the idle deadline on
    clock.advance(899)
    assert book.find(session.token, touch=False) is session  # does not
    clock.advance(1)
    assert book.find(session.token) is None
    assert len(book) == 0


def test_absolute_timeout_ends_a_busy_session() -> None:
    clock = ManualClock(monotonic=100.0)
    book = _book(clock)
    session = book.open("AKIAOPERATOR0000001", Role.OPERATOR, "127.0.0.1")
    for _ in range(47):  # a request every 10 minutes for 7 h 50 min
        clock.advance(600)
        assert book.find(session.token) is session
    clock.advance(600)
    assert book.find(session.token) is None


def test_sign_out_closes_the_session() -> None:
    book = _book(ManualClock(monotonic=100.0))
    session = book.open("AKIAADMIN0000000001", Role.ADMIN, "127.0.0.1")
    assert book.close(session.token)
    assert book.find(session.token) is None
    assert not book.close(session.token)


def test_csrf_token_must_match_exactly() -> None:
    session = _book(ManualClock()).open("AKIAADMIN0000000001", Role.ADMIN, "127.0.0.1")
    assert session.csrf_matches(session.csrf_token)
    assert not session.csrf_matches(None)
    assert not session.csrf_matches("")
    assert not session.csrf_matches(session.csrf_token[:-1])
    assert not session.csrf_matches(session.token)


def test_sign_in_limit_per_address_with_a_sliding_window() -> None:
    clock = ManualClock(monotonic=100.0)
    limiter = SignInLimiter(clock, attempts=3, window=60)
    assert [limiter.take("10.0.0.1") for _ in range(3)] == [None, None, None]
    wait = limiter.take("10.0.0.1")
    assert wait is not None and 59 <= wait <= 60
    assert limiter.take("10.0.0.2") is None  # another address has its own window
    clock.advance(30)
    assert limiter.take("10.0.0.1") is not None  # refused attempts are not counted...
    clock.advance(30)
    assert limiter.take("10.0.0.1") is None  # ...so the window has moved on
