"""Alembic environment of Bastion's store.

:meth:`bastion.store.Store.migrate` runs the migrations in-process and passes its open
connection as ``config.attributes["connection"]``. Run from the ``alembic`` command line
(e.g. ``alembic revision --autogenerate``), the URL comes from ``sqlalchemy.url`` or the
``BASTION_DATABASE_URL`` environment variable.
"""

from __future__ import annotations

import os

from alembic import context

from bastion.store._engine import create_store_engine
from bastion.store._schema import metadata

config = context.config


def _url() -> str:
    url = os.environ.get("BASTION_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set BASTION_DATABASE_URL or sqlalchemy.url")
    return url


def _run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_store_engine(_url())
    try:
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
