"""The prediction log: valuations served, and feedback on their real prices.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "valuations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=True, comment="position in a batch request"),
        sa.Column("source", sa.String(16), nullable=False, comment="api, batch, web or legacy"),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("negotiation", sa.String(8), nullable=False),
        sa.Column("district", sa.String(80), nullable=False),
        sa.Column("size_m2", sa.Float(), nullable=False),
        sa.Column("rooms", sa.Integer(), nullable=False),
        sa.Column("toilets", sa.Integer(), nullable=False),
        sa.Column("suites", sa.Integer(), nullable=False),
        sa.Column("parking", sa.Integer(), nullable=False),
        sa.Column("condo_fee", sa.Float(), nullable=True),
        sa.Column("elevator", sa.Boolean(), nullable=False),
        sa.Column("furnished", sa.Boolean(), nullable=False),
        sa.Column("swimming_pool", sa.Boolean(), nullable=False),
        sa.Column("new", sa.Boolean(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("given", sa.JSON(), nullable=False, comment="the fields as the client sent them"),
        sa.Column("defaulted", sa.JSON(), nullable=False, comment="fields given typical values"),
        sa.Column("location_estimated", sa.Boolean(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("price_low", sa.Float(), nullable=True),
        sa.Column("price_high", sa.Float(), nullable=True),
        sa.Column("level", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_valuations_created_at", "valuations", ["created_at"])
    op.create_index("ix_valuations_request_id", "valuations", ["request_id"])
    op.create_index("ix_valuations_model_version", "valuations", ["model_version"])
    op.create_table(
        "feedback",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "valuation_id",
            Id,
            sa.ForeignKey("valuations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("actual_price", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('sold', 'rented', 'listed')", name="feedback_kind"),
        sa.CheckConstraint("actual_price > 0", name="feedback_actual_price_positive"),
    )
    op.create_index("ix_feedback_valuation_id", "feedback", ["valuation_id"])
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("valuations")
