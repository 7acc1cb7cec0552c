"""room_statuses keep the report the latest one replaced

A check-in on PostgreSQL is one statement: the room's row, upserted under its lock, remembers the
report it replaced, and the run's tally moves by the difference.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

COUNTS = ("present", "absent", "missing", "injured", "extra")


def upgrade() -> None:
    with op.batch_alter_table('room_statuses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_checkin_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('previous_status', sa.String(length=24), nullable=True))
        for name in COUNTS:
            batch_op.add_column(sa.Column(f'previous_{name}', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('room_statuses', schema=None) as batch_op:
        for name in reversed(COUNTS):
            batch_op.drop_column(f'previous_{name}')
        batch_op.drop_column('previous_status')
        batch_op.drop_column('previous_checkin_id')
