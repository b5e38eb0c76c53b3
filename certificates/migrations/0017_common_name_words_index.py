"""On PostgreSQL only, a full-text index of the words of the common name, for the search's words
(CertificateQuerySet.search, _cn_has_words): a common word's entry lists only the certificates that have
it, where each of its trigrams (cert_cn_trgm_idx, kept for parts of words) lists many more. Separators of
host and hyphenated names split words, as in the query. Without PostgreSQL, the search reads parts of
words as before.
"""

from django.db import migrations

INDEX = "cert_cn_words_idx"
# certificates.models.CN_WORD_SEPARATORS when this was written: the query must use the same expression.
CN_WORD_SEPARATORS = "[-.,_/:;@()]+"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON certificates_certificate USING gin "
        f"(to_tsvector('simple'::regconfig, regexp_replace(subject_cn, '{CN_WORD_SEPARATORS}', ' ', 'g')))"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("certificates", "0016_needs_attention_index"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
