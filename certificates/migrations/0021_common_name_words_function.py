"""On PostgreSQL only, the words of a common name (migration 0017's expression) as a function of their
own, declared as dear as it is to the planner, and the full-text index rebuilt on it.

Why: PostgreSQL counts the built-in expression at about a hundred simple operations per name. With that
price, a word search's page (51 rows in expiry order) looked cheaper by walking the expiry index and
working out the words of every name it passed than by reading the matches from this index and sorting
them. At 1,000,000 certificates, a pair of words matching 3,855 names walked 26,000 rows for 200 ms,
where reading the 3,855 matches took 40 ms. Priced far above a row read, the words are worked out as few
times as possible: from this index when the matches are fewer than the rows a walk passes, and still by
walking when the words are common enough that a page comes soon (certificates.models._cn_has_words).

Without a lock on the certificates: the new index is built CONCURRENTLY beside the old one (12 s at
1,000,000), which is then dropped the same way, and the table analysed, so the planner has the new
expression's statistics at once (autovacuum might take days to). A build that was interrupted leaves an
invalid index under the new name; running the migration again drops it first.
"""

from django.db import migrations

INDEX = "cert_cn_words_idx"
BUILDING = "cert_cn_words_new_idx"
FUNCTION = "certificate_cn_words"
# certificates.models.CN_WORD_SEPARATORS when 0017 was written: the words split at these.
CN_WORD_SEPARATORS = "[-.,_/:;@()]+"
WORDS = (
    "pg_catalog.to_tsvector('pg_catalog.simple'::pg_catalog.regconfig, "
    f"pg_catalog.regexp_replace(subject_cn, '{CN_WORD_SEPARATORS}', ' ', 'g'))"
)


def _rebuild(schema_editor, expression: str) -> None:
    """cert_cn_words_idx on `expression`, built beside the old index and swapped in for it."""
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {BUILDING}")
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY {BUILDING} ON certificates_certificate USING gin ({expression})"
    )
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
    schema_editor.execute(f"ALTER INDEX {BUILDING} RENAME TO {INDEX}")
    schema_editor.execute("ANALYZE certificates_certificate")


def use_function(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # PL/pgSQL: a function in SQL would be inlined into its expression, and its price with it.
    schema_editor.execute(
        f"CREATE OR REPLACE FUNCTION {FUNCTION}(subject_cn text) RETURNS tsvector LANGUAGE plpgsql "
        f"IMMUTABLE STRICT PARALLEL SAFE COST 10000 AS $$ BEGIN RETURN {WORDS}; END $$"
    )
    _rebuild(schema_editor, f"{FUNCTION}(subject_cn)")


def use_expression(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    _rebuild(schema_editor, WORDS)
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}(text)")


class Migration(migrations.Migration):
    atomic = False  # CREATE and DROP INDEX CONCURRENTLY run outside a transaction

    dependencies = [
        ("certificates", "0020_expiry_alert_claimed_by_run"),
    ]

    operations = [
        migrations.RunPython(use_function, use_expression, elidable=False),
    ]
