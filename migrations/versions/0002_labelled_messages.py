"""labelled user messages

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 13:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('labelled_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('document_id', 'text')
    )
    with op.batch_alter_table('labelled_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_labelled_messages_document_id'), ['document_id'], unique=False)


def downgrade():
    with op.batch_alter_table('labelled_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_labelled_messages_document_id'))

    op.drop_table('labelled_messages')
