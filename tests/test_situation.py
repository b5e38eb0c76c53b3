"""One source of truth for where a certificate stands (Certificate.situation): the list, the certificate's
page, the dashboard's "Needs attention" and the alert e-mails say the same sentence, in every state; the
actions offered are the ones that can work; "Needs attention" lists what a person must act on, most
urgent first, each with the action the reader's role allows or what to do."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from certificates import alerts
from certificates.choices import LifecycleState, OrderState, SituationKey
from certificates.models import Certificate, Order, Organization
from certificates.services import import_certificate_file

from . import pki

pytestmark = pytest.mark.django_db
CA = pki.make_ca("Situation Test CA")
NOW = timezone.now()


def make(name: str, days_left: float, *, renewable: bool = True, **fields) -> Certificate:  # type: ignore[no-untyped-def]
    """A certificate in the inventory, 300 days into its life; `renewable`: one the portal renews (a
    held key, an OCES certificate that the MitID issuer handles)."""
    leaf = pki.make_leaf(
        CA,
        pki.name(name),
        not_before=NOW - dt.timedelta(days=300),
        not_after=NOW + dt.timedelta(days=days_left),
    )
    (outcome,) = import_certificate_file(leaf.pem, actor="test")
    certificate = outcome.certificate
    if renewable:
        fields = {"private_key_encrypted": "held", "oces_type": "system", "environment": "test", **fields}
    for key, value in fields.items():
        setattr(certificate, key, value)
    certificate.save()
    return certificate


def one_of_each() -> dict[SituationKey, Certificate]:
    """A certificate in each situation (and a second 'not renewable' one: auto-renew off)."""
    late = make("late", 20, renew_before=dt.timedelta(days=30))  # due 10 days ago, no renewal
    renewing = make("renewing", 200)
    Order.objects.create(certificate=renewing, requested_by_label="alice")
    failing = make("failing", 200)
    Order.objects.create(
        certificate=failing, requested_by_label="scheduler", attempts=3, last_error="CA down."
    )
    return {
        SituationKey.VALID: make("valid", 200),
        SituationKey.EXPIRING: make("expiring", 20, renew_before=dt.timedelta(days=10)),
        SituationKey.EXPIRED: make("expired", -2),
        SituationKey.BLOCKED: make("blocked", 100, state=LifecycleState.BLOCKED),
        SituationKey.SUPERSEDED: make("superseded", 100, state=LifecycleState.SUPERSEDED),
        SituationKey.RENEWING: renewing,
        SituationKey.RENEWAL_FAILING: failing,
        SituationKey.RENEWAL_LATE: late,
        SituationKey.NOT_RENEWABLE: make("monitor-only", 20, renewable=False),
    }


ATTENTION = {
    SituationKey.EXPIRED,
    SituationKey.BLOCKED,
    SituationKey.RENEWAL_FAILING,
    SituationKey.RENEWAL_LATE,
    SituationKey.NOT_RENEWABLE,
}
EMAIL_FOR = {
    SituationKey.EXPIRED: "lapse_alert",
    SituationKey.RENEWAL_LATE: "renewal_late",
}


def test_list_page_dashboard_and_email_say_the_same_sentence_in_every_state(alice_client):
    certificates = one_of_each()
    dashboard = html.unescape(alice_client.get(reverse("home")).content.decode())
    for key, certificate in certificates.items():
        situation = certificate.situation()
        assert situation.key == key, certificate.subject_cn
        sentence = situation.headline
        assert sentence

        page = html.unescape(alice_client.get(certificate.get_absolute_url()).content.decode())
        assert f'data-situation="{key}"' in page and sentence in page, key
        # No other situation's sentence on the page: it cannot contradict itself.
        for other_key, other in certificates.items():
            if other_key != key:
                assert other.situation().headline not in page, (key, other_key)

        listing = alice_client.get(reverse("certificates:list"), {"q": certificate.subject_cn})
        assert sentence in html.unescape(listing.content.decode()), key

        assert (sentence in dashboard) == (key in ATTENTION), key

        mail.outbox.clear()
        template = EMAIL_FOR.get(key, "expiry_alert")
        entry = {"certificate": certificate, "days_left": 20, "critical": False, "threshold": 30}
        alerts.send(template, {"entries": [entry], "total": 1}, ["pki@example.dk"])
        (message,) = mail.outbox
        assert sentence in message.body, key
        assert sentence in html.unescape(message.alternatives[0][0]), key


def test_the_export_gets_the_key_and_sentence_without_a_query_per_certificate(django_assert_num_queries):
    one_of_each()
    with django_assert_num_queries(1):
        exported = [c.situation().as_dict() for c in Certificate.objects.with_situation()]
    assert {row["key"] for row in exported} == {key.value for key in one_of_each_keys()}
    assert all(row["headline"] for row in exported)


def one_of_each_keys() -> set[SituationKey]:
    return {
        SituationKey.VALID,
        SituationKey.EXPIRING,
        SituationKey.EXPIRED,
        SituationKey.BLOCKED,
        SituationKey.SUPERSEDED,
        SituationKey.RENEWING,
        SituationKey.RENEWAL_FAILING,
        SituationKey.RENEWAL_LATE,
        SituationKey.NOT_RENEWABLE,
    }


def test_not_renewable_says_why():
    cases = {
        "automatic renewal is off": make("off", 20, auto_renew=False),
        "monitor only": make("keyless", 20, renewable=False),
        "it is a CA certificate": make("ca", 20, is_ca=True),
        "no CA connected to the portal issued it": make("foreign", 20, oces_type="", environment=""),
    }
    organization = Organization.objects.create(cvr="12121288", name="Venter", renewal_enabled=False)
    cases["Digst has not enabled renewal"] = make("waiting", 20, organization=organization)
    for reason, certificate in cases.items():
        situation = certificate.situation()
        assert situation.key == SituationKey.NOT_RENEWABLE, reason
        assert reason in situation.headline, reason
    # Far from expiry, the same certificates are simply valid: nothing to act on yet.
    later = make("off-later", 300, auto_renew=False).situation()
    assert later.key == SituationKey.VALID
    assert later.explanation == "It will not be renewed automatically: automatic renewal is off."


def test_actions_appear_only_where_they_can_work_and_say_why_otherwise(alice_client, vera_client):
    certificates = one_of_each()
    expired = certificates[SituationKey.EXPIRED].situation()
    assert expired.renew is not None and not expired.renew.possible
    assert "order a new certificate" in expired.renew.reason
    assert expired.block is None  # nothing left to block: not offered at all
    assert expired.primary is not None and expired.primary.key == "issue"

    late = certificates[SituationKey.RENEWAL_LATE].situation()
    assert late.renew is not None and late.renew.possible and late.primary == late.renew
    renewing = certificates[SituationKey.RENEWING].situation()
    assert renewing.renew is not None and not renewing.renew.possible
    assert renewing.renew.reason == "A renewal of this certificate is already in progress."

    # The detail page: a working Renew now for an administrator, none for a viewer, and for the
    # monitor-only certificate a disabled one with the reason before any confirmation.
    page = alice_client.get(certificates[SituationKey.RENEWAL_LATE].get_absolute_url()).content.decode()
    assert f'action="{reverse("certificates:renew", args=[late.certificate.pk])}"' in page
    page = vera_client.get(certificates[SituationKey.RENEWAL_LATE].get_absolute_url()).content.decode()
    assert "Renew now</button>" not in page and "Block…" not in page
    monitor = certificates[SituationKey.NOT_RENEWABLE]
    page = alice_client.get(monitor.get_absolute_url()).content.decode()
    assert '<button type="button" disabled' in page and "holds no private key" in page
    # Renewal settings are offered only where a renewal can happen.
    assert "Change renewal settings" not in page
    expired_page = alice_client.get(expired.certificate.get_absolute_url()).content.decode()
    assert "Change renewal settings" not in expired_page
    late_page = alice_client.get(late.certificate.get_absolute_url()).content.decode()
    assert "Change renewal settings" in late_page


def test_needs_attention_lists_every_state_to_act_on_most_urgent_first_with_the_action(
    alice_client, vera_client
):
    certificates = one_of_each()
    off = make("auto-renew-off", 10, auto_renew=False)
    failed = make("failed-not-enabled", 150, organization=Organization.objects.create(cvr="12121277"))
    Order.objects.create(
        certificate=failed,
        requested_by_label="scheduler",
        state=OrderState.FAILED,
        completed_at=NOW,
        last_error_code="renewal_not_enabled",
        last_error="Renewal is not enabled.",
    )
    Organization.objects.filter(pk=failed.organization_id).update(renewal_enabled=False)

    response = alice_client.get(reverse("home"))
    listed = [s.certificate for s in response.context["attention"]]
    expected = [certificates[key] for key in ATTENTION] + [off, failed]
    assert set(listed) == set(expected)
    assert set(Certificate.objects.needs_attention()) == set(expected)
    # The situation of each one agrees that it needs attention, and of the others that they do not.
    for certificate in Certificate.objects.all():
        assert certificate.situation().needs_attention == (certificate in expected), certificate.subject_cn
    # Most urgent first: the lapse, then the failing renewals, the late one, what will not be renewed
    # by itself (soonest expiry first), and the blocked one last.
    order = [c.situation().key for c in listed]
    assert order == [
        SituationKey.EXPIRED,
        SituationKey.RENEWAL_FAILING,
        SituationKey.RENEWAL_FAILING,
        SituationKey.RENEWAL_LATE,
        SituationKey.NOT_RENEWABLE,
        SituationKey.NOT_RENEWABLE,
        SituationKey.BLOCKED,
    ]

    page = response.content.decode()
    # Each with the action that works for an administrator...
    assert (
        f'action="{reverse("certificates:renew", args=[certificates[SituationKey.RENEWAL_LATE].pk])}"' in page
    )
    assert f'action="{reverse("certificates:renew", args=[off.pk])}"' in page
    assert f'action="{reverse("certificates:renew-enabled", args=[failed.pk])}"' in page
    assert f'href="{reverse("mitid:issue")}"' in page
    # ...and for a viewer, what to do instead of a button they cannot use.
    page = html.unescape(vera_client.get(reverse("home")).content.decode())
    assert "Renew now</button>" not in page and "try again</button>" not in page
    assert "No renewal has started: check that beat and a worker are running" in page
    assert "The renewal keeps failing (CA down.)" in page
