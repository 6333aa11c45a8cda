"""The application database: engine, migrations, and per capability its models and store.

Importing a capability's models declares its tables and those its foreign keys name (a
contact's score reason, an outbox row's contact), nothing more: a command that reads the
outbox does not pay for declaring contracts and complaints. ``models`` declares every
table, for what must see the whole schema: Alembic, create-time metadata, schema checks.
"""
