"""The scrape token: created owner-only, refused when exposed or malformed, and admitting
only ``Bearer <the token>``."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bastion.metrics import (
    ScrapeToken,
    ScrapeTokenError,
    ensure_scrape_token,
    load_scrape_token,
    new_token,
)

TOKEN = new_token()


def test_a_missing_file_is_created_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "metrics.token"
    token, created = ensure_scrape_token(path)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert token.admits(f"Bearer {text.strip()}")
    again, created_again = ensure_scrape_token(path)
    assert not created_again and path.read_text() == text  # not replaced
    assert again.admits(f"Bearer {text.strip()}")


def test_fresh_tokens_differ_and_are_long_enough() -> None:
    tokens = {new_token() for _ in range(20)}
    assert len(tokens) == 20 and all(len(token) == 43 for token in tokens)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o644])
def test_a_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "metrics.token"
    path.write_text(TOKEN)
    path.chmod(mode)
    with pytest.raises(ScrapeTokenError, match="chmod 600"):
        load_scrape_token(path)
    with pytest.raises(ScrapeTokenError):
        ensure_scrape_token(path)


@pytest.mark.parametrize("content", [
    pytest.param("", id="empty"),
    pytest.param("short", id="too-short"),
    pytest.param("x" * 31, id="31-characters"),
    pytest.param("with space " * 4, id="a-space-inside"),
    pytest.param("é" * 40, id="not-ascii"),
])
def test_a_file_without_a_token_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "metrics.token"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ScrapeTokenError, match="no valid scrape token"):
        load_scrape_token(path)


def test_a_directory_is_no_token_file(tmp_path: Path) -> None:
    folder = tmp_path / "metrics.token"
    folder.mkdir(mode=0o700)
    with pytest.raises(ScrapeTokenError, match="not a regular file"):
        load_scrape_token(folder)


@pytest.mark.parametrize("header", [
    f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN}", f"  Bearer   {TOKEN}  ",
])
def test_the_token_as_a_bearer_token_is_admitted(header: str) -> None:
    assert ScrapeToken(TOKEN).admits(header)


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x",
    f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN.upper()}", f"Bearer {TOKEN} {TOKEN}",
    f"Bearer\t{TOKEN}",
])
def test_anything_else_is_refused(header: str | None) -> None:
    assert not ScrapeToken(TOKEN).admits(header)


@given(st.text(max_size=80))
def test_a_header_without_the_token_is_never_admitted(header: str) -> None:
    assume(TOKEN not in header)
    assert not ScrapeToken(TOKEN).admits(header)
    assert not ScrapeToken(TOKEN).admits(f"Bearer {header}")


def test_the_token_never_shows_in_its_repr() -> None:
    assert TOKEN not in repr(ScrapeToken(TOKEN))


def test_wrong_types_and_values_are_refused() -> None:
    with pytest.raises(TypeError):
        ScrapeToken(b"x" * 40)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ScrapeToken("x" * 31)
