"""API tokens remember the role and organisations they were made for (ApiToken.access); tokens made
before this migration get their user's access as it is now."""

from django.db import migrations, models

ROLES = ("Administrator", "Operator", "Viewer")  # accounts.roles.Role, highest first


def access(user) -> str:  # type: ignore[no-untyped-def]
    """accounts.models.access_of, on the historical models."""
    if user.is_superuser:
        return "Administrator; all"
    names = set(user.groups.values_list("name", flat=True))
    role = next((r for r in ROLES if r in names), "")
    limit = getattr(user, "organisation_limit", None)  # no row: not limited
    if limit is None:
        return f"{role}; all"
    return f"{role}; {','.join(sorted(limit.organizations.values_list('cvr', flat=True)))}"


def fill(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    ApiToken = apps.get_model("accounts", "ApiToken")
    for token in ApiToken.objects.select_related("user"):
        token.access = access(token.user)
        token.save(update_fields=["access"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_audit_action_alert_channel")]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="access",
            field=models.TextField(
                default="", editable=False, verbose_name="role and organisations it was made for"
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
