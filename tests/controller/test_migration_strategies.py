"""Migration 0007: rows written before strategies get the strategy their refine flag meant."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import text

from controller.core.db import alembic_config, create_db_engine, migrate


def test_pins_from_before_strategies_read_as_the_strategy_their_flag_meant(
    tmp_path: Path,
) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate(engine, "0006")
    with engine.begin() as conn:
        for model, refine in (("m-on", True), ("m-off", False), ("m-any", None)):
            conn.execute(
                text(
                    "INSERT INTO pin (kind, model_id, refine, reason, created_at) "
                    "VALUES ('pin', :model, :refine, '', '2026-12-07 06:00:00')"
                ),
                {"model": model, "refine": refine},
            )
    migrate(engine)
    with engine.connect() as conn:
        found = dict(conn.execute(text("SELECT model_id, strategy FROM pin")).all())
    assert found == {"m-on": "refine:1", "m-off": "direct", "m-any": None}
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")
    with engine.connect() as conn:
        columns = {row[1] for row in conn.execute(text("PRAGMA table_info(pin)"))}
        device = {row[1] for row in conn.execute(text("PRAGMA table_info(device)"))}
    assert "strategy" not in columns and "refine" in columns
    assert "schema_version" not in device and "strategy" not in device
    engine.dispose()
