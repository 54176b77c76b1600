"""Durable MQTT sessions and retained messages.

Revision ID: 0011
Revises: 0010

* ``mqtt_sessions``: one row per persistent session (expiry interval > 0): its owner,
  expiry, will and when its connection ended.
* ``mqtt_subscriptions``: their subscriptions.
* ``mqtt_deliveries``: each QoS 1/2 delivery to a persistent session until acknowledged,
  as an MQTT 5 PUBLISH packet, with its packet id once sent.
* ``mqtt_inbound_qos2``: inbound QoS 2 packet ids waiting for PUBREL.
* ``mqtt_retained``: the retained message of each topic.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "mqtt_sessions",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("certificate_id", sa.String(64), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=False),
        sa.Column("source_port", sa.Integer(), nullable=False),
        sa.Column("expiry_interval", sa.BigInteger(), nullable=False),
        sa.Column("detached_at", sa.Float(precision=53), nullable=True),
        sa.Column("will", sa.LargeBinary(), nullable=True),
        sa.Column("will_delay", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_mqtt_sessions"),
    )
    op.create_table(
        "mqtt_subscriptions",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("topic_filter", sa.Text(), nullable=False),
        sa.Column("qos", sa.SmallInteger(), nullable=False),
        sa.Column("no_local", sa.Boolean(), nullable=False),
        sa.Column("retain_as_published", sa.Boolean(), nullable=False),
        sa.Column("retain_handling", sa.SmallInteger(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("client_id", "topic_filter", name="pk_mqtt_subscriptions"),
    )
    op.create_table(
        "mqtt_deliveries",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("qos", sa.SmallInteger(), nullable=False),
        sa.Column("retain", sa.Boolean(), nullable=False),
        sa.Column("subscription_ids", sa.Text(), nullable=False),
        sa.Column("packet_id", sa.Integer(), nullable=True),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "seq", name="pk_mqtt_deliveries"),
    )
    op.create_table(
        "mqtt_inbound_qos2",
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("packet_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "packet_id", name="pk_mqtt_inbound_qos2"),
    )
    op.create_table(
        "mqtt_retained",
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("topic", name="pk_mqtt_retained"),
    )


def downgrade() -> None:
    for table in ("mqtt_retained", "mqtt_inbound_qos2", "mqtt_deliveries",
                  "mqtt_subscriptions", "mqtt_sessions"):
        op.drop_table(table)
