"""Administrators may read the audit log: add accounts.view_auditentry to the Administrator group
(accounts.roles ROLE_PERMISSIONS holds it too)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

PERMISSION = ("accounts", "view_auditentry")


def grant(apps, schema_editor):
    # Permissions are normally made after all migrations (post_migrate); make accounts' now.
    app_config = apps.get_app_config("accounts")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label=PERMISSION[0], codename=PERMISSION[1])
    group, _ = Group.objects.get_or_create(name="Administrator")
    group.permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(
        content_type__app_label=PERMISSION[0], codename=PERMISSION[1]
    ).first()
    if permission is not None:
        for group in Group.objects.filter(name="Administrator"):
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_audit_two_factor")]

    operations = [migrations.RunPython(grant, revoke)]
