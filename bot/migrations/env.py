"""Alembic environment: the metadata is bot.db's; the connection is handed in by bot.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from bot.db import Base, make_engine

config = context.config
connection = config.attributes.get("connection")


def run(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run(conn)
