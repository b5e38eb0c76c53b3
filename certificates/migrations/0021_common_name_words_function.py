"""On PostgreSQL only, the words of a common name (migration 0017's expression) as a function of their
own, declared as dear as it is to the planner, and the full-text index rebuilt on it.

Why: PostgreSQL counts the built-in expression at about a hundred simple operations per name. With that
price, a word search's page (51 rows in expiry order) looked cheaper by walking the expiry index and
working out the words of every name it passed than by reading the matches from this index and sorting
them. At 1,000,000 certificates, a pair of words matching 3,855 names walked 26,000 rows for 200 ms,
where reading the 3,855 matches took 40 ms. Priced far above a row read, the words are worked out as few
times as possible: from this index when the matches are fewer than the rows a walk passes, and still by
walking when the words are common enough that a page comes soon (certificates.models._cn_has_words).
"""

from django.db import migrations

INDEX = "cert_cn_words_idx"
FUNCTION = "certificate_cn_words"
# certificates.models.CN_WORD_SEPARATORS when this was written: the query must use the same expression.
CN_WORD_SEPARATORS = "[-.,_/:;@()]+"
WORDS = f"to_tsvector('simple'::regconfig, regexp_replace(subject_cn, '{CN_WORD_SEPARATORS}', ' ', 'g'))"


def use_function(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # PL/pgSQL: a function in SQL would be inlined into its expression, and its price with it.
    schema_editor.execute(
        f"CREATE OR REPLACE FUNCTION {FUNCTION}(subject_cn text) RETURNS tsvector LANGUAGE plpgsql "
        f"IMMUTABLE STRICT PARALLEL SAFE COST 10000 AS $$ BEGIN RETURN {WORDS}; END $$"
    )
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(
        f"CREATE INDEX {INDEX} ON certificates_certificate USING gin ({FUNCTION}(subject_cn))"
    )


def use_expression(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(f"CREATE INDEX {INDEX} ON certificates_certificate USING gin ({WORDS})")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}(text)")


class Migration(migrations.Migration):
    dependencies = [
        ("certificates", "0020_expiry_alert_claimed_by_run"),
    ]

    operations = [
        migrations.RunPython(use_function, use_expression, elidable=False),
    ]
