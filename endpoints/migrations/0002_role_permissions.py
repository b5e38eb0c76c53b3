"""The roles get the endpoints app's permissions (accounts.roles ROLE_PERMISSIONS holds them too):
Viewer sees endpoints; Operator (and so Administrator) adds, scans and removes them and keeps the
registration checklist."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWER = ["view_endpoint"]
OPERATOR = ["add_endpoint", "change_endpoint", "delete_endpoint", "change_registrationitem"]
GRANTS = {"Viewer": VIEWER, "Operator": VIEWER + OPERATOR, "Administrator": VIEWER + OPERATOR}


def grant(apps, schema_editor):
    # Permissions are normally made after all migrations (post_migrate); make the app's now.
    app_config = apps.get_app_config("endpoints")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="endpoints", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="endpoints")
    for group in Group.objects.filter(name__in=GRANTS):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [("endpoints", "0001_endpoints_scans_checklist"), ("accounts", "0004_organisation_limits")]

    operations = [migrations.RunPython(grant, revoke)]
