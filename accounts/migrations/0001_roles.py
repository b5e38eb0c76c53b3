"""Create the Viewer, Operator and Administrator groups from model permissions (accounts.roles)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "Viewer": [
        "certificates.view_certificate",
        "certificates.view_event",
        "certificates.view_organization",
        "mitid.view_certificateprofile",
    ],
}
ROLE_PERMISSIONS["Operator"] = [
    *ROLE_PERMISSIONS["Viewer"],
    "certificates.add_certificate",
    "certificates.renew_certificate",
    "mitid.issue_certificate",
    "mitid.add_certificateprofile",
    "mitid.change_certificateprofile",
]
ROLE_PERMISSIONS["Administrator"] = [
    *ROLE_PERMISSIONS["Operator"],
    "certificates.block_certificate",
    "certificates.download_private_key",
    "certificates.view_notificationsettings",
    "certificates.change_notificationsettings",
    "certificates.change_organization",
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "axes.view_accessattempt",
    "axes.delete_accessattempt",
    "certificates.view_trustedca",
    "certificates.add_trustedca",
    "certificates.change_trustedca",
    "certificates.delete_trustedca",
]


def create_roles(apps, schema_editor):
    # Permissions are normally made after all migrations (post_migrate); make them now so the groups
    # can hold them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for dotted in permissions:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("certificates", "0007_permissions"),
        ("mitid", "0002_permissions"),
        ("axes", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
