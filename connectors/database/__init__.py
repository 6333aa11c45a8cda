"""The application database: engine, migrations, and per capability its models and store.

Importing any part of it registers every table on ``Base.metadata``: tables of one
capability name tables of another in foreign keys (a contact's score reason), and a bulk
load that drops and re-adds keys must be able to resolve them all.
"""

from connectors.database import models as models
