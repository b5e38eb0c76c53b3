"""ExpiryTally: certificates per (scope, state, UTC day of not_after), kept by triggers on the certificate
table, so the dashboard's counts sum days instead of certificates (models.ExpiryTally), and an index on
not_before for the few certificates not valid yet.

PostgreSQL: one statement-level trigger per event, reading the statement's transition tables, appends
one row per (scope, state, day) the statement changed; a bulk insert of 20,000 rows appends a few
thousand. SQLite has row-level triggers only: one row per certificate and scope. The rows already in the
table are counted once, as settled rows.
"""

from django.db import migrations, models

CERTIFICATES = "certificates_certificate"
TALLY = "certificates_expirytally"

# Every certificate counts in scope 0, and in its organisation's scope when it has one.
POSTGRES_SIDES = """
    SELECT 0 AS scope, state, (not_after AT TIME ZONE 'UTC')::date AS day, n FROM sides
    UNION ALL
    SELECT organization_id, state, (not_after AT TIME ZONE 'UTC')::date, n FROM sides
    WHERE organization_id IS NOT NULL
"""

POSTGRES_FUNCTION = """
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH sides AS ({sides})
    INSERT INTO """ + TALLY + """ (scope, state, day, certificates, settled)
    SELECT scope, state, day, SUM(n), false FROM (""" + POSTGRES_SIDES + """) AS changes
    GROUP BY scope, state, day HAVING SUM(n) <> 0;
    RETURN NULL;
END $$
"""

POSTGRES_TRIGGERS = {
    "insert": ("NEW TABLE AS new_rows", "SELECT organization_id, state, not_after, 1 AS n FROM new_rows"),
    "delete": ("OLD TABLE AS old_rows", "SELECT organization_id, state, not_after, -1 AS n FROM old_rows"),
    "update": (
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "SELECT o.organization_id, o.state, o.not_after, -1 AS n FROM old_rows o JOIN new_rows w USING (id) "
        "WHERE (o.organization_id, o.state, o.not_after) IS DISTINCT FROM "
        "(w.organization_id, w.state, w.not_after) "
        "UNION ALL "
        "SELECT w.organization_id, w.state, w.not_after, 1 FROM old_rows o JOIN new_rows w USING (id) "
        "WHERE (o.organization_id, o.state, o.not_after) IS DISTINCT FROM "
        "(w.organization_id, w.state, w.not_after)",
    ),
}

SQLITE_ROW = (
    "INSERT INTO " + TALLY + " (scope, state, day, certificates, settled) "
    "SELECT 0, {row}.state, date({row}.not_after), {n}, 0 "
    "UNION ALL SELECT {row}.organization_id, {row}.state, date({row}.not_after), {n}, 0 "
    "WHERE {row}.organization_id IS NOT NULL;"
)

SQLITE_TRIGGERS = {
    "insert": ("AFTER INSERT", "", [("NEW", 1)]),
    "delete": ("AFTER DELETE", "", [("OLD", -1)]),
    "update": (
        "AFTER UPDATE OF organization_id, state, not_after",
        "WHEN OLD.organization_id IS NOT NEW.organization_id OR OLD.state IS NOT NEW.state "
        "OR OLD.not_after IS NOT NEW.not_after",
        [("OLD", -1), ("NEW", 1)],
    ),
}

BACKFILL = {
    "postgresql": "(not_after AT TIME ZONE 'UTC')::date",
    "sqlite": "date(not_after)",
}


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for event, (referencing, sides) in POSTGRES_TRIGGERS.items():
            name = f"certificate_tally_{event}"
            schema_editor.execute(POSTGRES_FUNCTION.format(name=name, sides=sides))
            schema_editor.execute(
                f"CREATE TRIGGER {name} AFTER {event.upper()} ON {CERTIFICATES} "
                f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
    elif vendor == "sqlite":
        for event, (when, condition, rows) in SQLITE_TRIGGERS.items():
            body = " ".join(SQLITE_ROW.format(row=row, n=n) for row, n in rows)
            schema_editor.execute(
                f"CREATE TRIGGER certificate_tally_{event} {when} ON {CERTIFICATES} "
                f"FOR EACH ROW {condition} BEGIN {body} END"
            )
    else:
        raise NotImplementedError(f"ExpiryTally has no triggers for {vendor}")
    day = BACKFILL[vendor]
    schema_editor.execute(
        f"INSERT INTO {TALLY} (scope, state, day, certificates, settled) "
        f"SELECT 0, state, {day}, COUNT(*), true FROM {CERTIFICATES} GROUP BY state, {day} "
        f"UNION ALL SELECT organization_id, state, {day}, COUNT(*), true FROM {CERTIFICATES} "
        f"WHERE organization_id IS NOT NULL GROUP BY organization_id, state, {day}"
    )


def drop_triggers(apps, schema_editor):
    for event in POSTGRES_TRIGGERS:
        name = f"certificate_tally_{event}"
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {CERTIFICATES}")
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")
        else:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ('certificates', '0014_revocation_checked_at'),
    ]

    operations = [
        migrations.CreateModel(
            name='ExpiryTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scope', models.IntegerField(help_text="0: every certificate; otherwise the organisation's id.")),
                ('state', models.CharField(choices=[('active', 'Active'), ('superseded', 'Superseded'), ('blocked', 'Blocked')], max_length=16)),
                ('day', models.DateField(help_text='The UTC day of not_after.')),
                ('certificates', models.IntegerField()),
                ('settled', models.BooleanField(default=False)),
            ],
        ),
        migrations.AddIndex(
            model_name='certificate',
            index=models.Index(fields=['not_before'], name='cert_not_before_idx'),
        ),
        migrations.AddIndex(
            model_name='expirytally',
            index=models.Index(fields=['scope', 'state', 'day'], name='tally_scope_day_idx'),
        ),
        migrations.AddConstraint(
            model_name='expirytally',
            constraint=models.UniqueConstraint(condition=models.Q(('settled', True)), fields=('scope', 'state', 'day'), name='one_settled_tally_per_day'),
        ),
        migrations.RunPython(create_triggers, drop_triggers, elidable=False),
    ]
