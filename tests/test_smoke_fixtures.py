import sqlalchemy as sa
from sqlalchemy.engine import Engine


def test_migrated_database_has_the_queue_tables(engine: Engine) -> None:
    names = set(sa.inspect(engine).get_table_names())
    assert {"work_items", "accounts", "vault_records", "submissions", "audit_events"} <= names
