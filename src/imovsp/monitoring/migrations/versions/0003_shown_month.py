"""Each valuation logs the month it was shown in and the factor from the logged price to it.

The log keeps prices in the model's month (drift is measured there); feedback, given in the
money of the answer the client saw, is compared with ``price * index_factor``. Rows logged
before were answered in the model's month, hence factor 1 for them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("valuations") as batch:
        batch.add_column(
            sa.Column(
                "as_of",
                sa.String(7),
                nullable=True,
                comment="the month (YYYY-MM) whose money the answer was shown in",
            )
        )
        batch.add_column(
            sa.Column(
                "index_factor",
                sa.Float(),
                nullable=False,
                server_default="1.0",
                comment="the shown price over the logged one (1: the model's month)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("valuations") as batch:
        batch.drop_column("index_factor")
        batch.drop_column("as_of")
