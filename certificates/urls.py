from __future__ import annotations

from django.urls import path

from . import trust_views, views

app_name = "certificates"
urlpatterns = [
    path("", views.certificate_list, name="list"),
    path("import/", views.certificate_import, name="import"),
    path("export.csv", views.certificate_export, name="export"),
    path("notifications/", views.notification_settings, name="notifications"),
    path("notifications/test/", views.send_test_email, name="notifications-test"),
    path("trust/", trust_views.trust_store, name="trust-store"),
    path("trust/<int:pk>/remove/", trust_views.trust_remove, name="trust-remove"),
    path("<int:pk>/", views.certificate_detail, name="detail"),
    path(
        "<int:pk>/certificate.pem", views.download_certificate, {"what": "certificate"}, name="download-pem"
    ),
    path("<int:pk>/chain.pem", views.download_certificate, {"what": "chain"}, name="download-chain"),
    path("<int:pk>/pkcs12/", views.download_pkcs12, name="download-pkcs12"),
    path("<int:pk>/renew/", views.renew, name="renew"),
    path("<int:pk>/renew/enabled/", views.renewal_enabled_retry, name="renew-enabled"),
    path("<int:pk>/renewal/", views.renewal_progress, name="renewal-progress"),
    path("<int:pk>/block/", views.block, name="block"),
    path("<int:pk>/renewal-settings/", views.renewal_settings, name="renewal-settings"),
    path("<int:pk>/contacts/", views.certificate_contacts, name="contacts"),
]
