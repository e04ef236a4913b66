"""collections.content_revision: the index follows SQL

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("content_revision", sa.BigInteger(), server_default="0", nullable=False)
        )
    # Indexes saved before this revision record none: revision 1 makes the next command reconcile them.
    op.execute(
        "UPDATE collections SET content_revision = 1 "
        "WHERE EXISTS (SELECT 1 FROM documents WHERE documents.collection_id = collections.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.drop_column("content_revision")
