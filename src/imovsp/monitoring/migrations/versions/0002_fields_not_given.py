"""Fields not given are logged as null: counts and flags are no longer filled with typical values.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

COUNTS = ("rooms", "toilets", "suites", "parking")
FLAGS = ("elevator", "furnished", "swimming_pool", "new")


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a column in place (Alembic copies the table there).
    with op.batch_alter_table("valuations") as batch:
        for name in COUNTS:
            batch.alter_column(name, existing_type=sa.Integer(), nullable=True)
        for name in FLAGS:
            batch.alter_column(name, existing_type=sa.Boolean(), nullable=True)
        batch.alter_column(
            "defaulted",
            existing_type=sa.JSON(),
            existing_nullable=False,
            comment="fields not given, priced as unknown",
        )


def downgrade() -> None:
    with op.batch_alter_table("valuations") as batch:
        for name in COUNTS:
            batch.alter_column(name, existing_type=sa.Integer(), nullable=False)
        for name in FLAGS:
            batch.alter_column(name, existing_type=sa.Boolean(), nullable=False)
