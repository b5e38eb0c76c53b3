"""Indexes for a large inventory (docs/performance.md).

- cert_renewable_due_idx: a partial index holding only renewable certificates, for "what is due".
- cert_ca_idx: the few CA certificates, among which the import looks for a leaf's issuers.
- On PostgreSQL only, a trigram index (pg_trgm) for the search's common-name part, which is
  `UPPER(subject_cn) LIKE UPPER('%text%')` (Django's icontains) and otherwise reads the whole table. It is not
  part of the models' state (SQLite has no such index), so it is made here, by hand, and only where the
  database allows the extension: a database user that may not create pg_trgm migrates without it, and the
  search still works, only slower.
"""

import logging

from django.db import DatabaseError, migrations, models, transaction

log = logging.getLogger(__name__)

TRIGRAM_INDEX = "cert_cn_trgm_idx"


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        log.warning("pg_trgm is not available (%s); the certificate search works without its index.", error)
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX} ON certificates_certificate "
        "USING gin ((UPPER(subject_cn::text)) gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {TRIGRAM_INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ('certificates', '0008_alerting'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='certificate',
            index=models.Index(condition=models.Q(('auto_renew', True), ('state', 'active'), models.Q(('private_key_encrypted', ''), _negated=True)), fields=['renew_at', 'not_after'], name='cert_renewable_due_idx'),
        ),
        migrations.AddIndex(
            model_name='certificate',
            index=models.Index(condition=models.Q(('is_ca', True)), fields=['is_ca'], name='cert_ca_idx'),
        ),
        migrations.RunPython(create_trigram_index, drop_trigram_index, elidable=False),
    ]
