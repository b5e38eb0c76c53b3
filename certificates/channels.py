"""Alert channels besides e-mail: Microsoft Teams, Slack and a signed JSON webhook.

Every alert that certificates.alerts e-mails is also written as one ChannelMessage per channel concerned:
the channels of the organisations whose certificates it is about (listing only their certificates) and
the portal-wide channels (listing all). The rows are written in the alert's transaction; once it commits,
`signals.channel_message_queued` tells certificates.tasks to deliver each one in a Celery task of its
own, so a slow or failing channel never holds up another, nor the e-mail.

A delivery POSTs once, with short timeouts, follows no redirect and reads at most MAX_ANSWER_BYTES of
the answer. Time-outs, refused connections, 5xx and 429 are passing failures (`Transient`): the task
retries them with exponential backoff (429's Retry-After honoured), up to TRUSTVIEW_CHANNEL_ATTEMPTS
attempts. Anything else fails the message at once. The row is the truth: each attempt is claimed
with a lease on `next_attempt_at`, and the sweep re-queues a message whose task was lost. Either way
the channel keeps its last error as a sentence and the time of its last success, which the
notifications page shows.

The address and signing secret are secrets: they are stored encrypted (certificates.vault), shown only as
a hint, and no log line or error sentence here contains them (requests' own exceptions name the address,
so they are turned into sentences that name the host only).

Webhook signature: `X-Trustview-Signature: sha256=<hex>`, the HMAC-SHA256 with the channel's secret of
`<X-Trustview-Timestamp>.<raw body>`. Signing the timestamp with the body means a captured request cannot
be replayed later with a fresh timestamp; a receiver refuses timestamps older than a few minutes
(docs/operations.md, "Alert channels").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext

from . import vault
from .choices import ChannelKind, DeliveryState
from .models import AlertChannel, Certificate, ChannelMessage, organisation_limit
from .networks import is_blocked
from .signals import alert_channel_changed, channel_message_queued

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024
MAX_ITEMS = 25  # certificates listed by name in one chat message; the rest are counted
USER_AGENT = "trustview-alerts/1"
SEVERITIES = ("critical", "warning", "info", "good")


class ChannelAddressError(ValueError):
    """An address a channel may not use; the message is a sentence for the administrator."""


class Transient(Exception):
    """A passing failure worth retrying; `retry_after` is the receiver's wish in seconds, if it said."""

    def __init__(self, sentence: str, retry_after: float | None = None) -> None:
        super().__init__(sentence)
        self.retry_after = retry_after


class Permanent(Exception):
    """A failure that retrying will not fix (a wrong address, a refused payload)."""


# --- addresses -------------------------------------------------------------------------------------------


def check_address(url: str) -> str:
    """The address, stripped, if a channel may post to it: https, or http to a loopback address when
    TRUSTVIEW_CHANNEL_ALLOW_HTTP_LOOPBACK is on (tests, development). Raises ChannelAddressError."""
    url = url.strip()
    if len(url) > 2000:
        raise ChannelAddressError(gettext("The address is too long."))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError on a bad port
    except ValueError:
        raise ChannelAddressError(gettext("This is not a valid web address.")) from None
    host = (parts.hostname or "").lower()
    if not host or parts.scheme.lower() not in ("http", "https"):
        raise ChannelAddressError(gettext("Enter the https:// address the service gave you."))
    if parts.username or parts.password:
        raise ChannelAddressError(gettext("The address must not contain a user name or password."))
    literal = host.strip("[]")
    if _is_address(literal) and is_blocked(literal):
        raise ChannelAddressError(_blocked_sentence(literal))
    if parts.scheme.lower() == "http" and not (
        settings.TRUSTVIEW_CHANNEL_ALLOW_HTTP_LOOPBACK and _is_loopback(host)
    ):
        raise ChannelAddressError(
            gettext("Alerts are only sent over https: enter an address that starts with https://.")
        )
    return url


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _blocked_sentence(address: str) -> str:
    return gettext(
        "Alerts may not be sent to %(address)s: it is in a network the portal may not reach "
        "(TRUSTVIEW_ENDPOINT_BLOCKED_NETWORKS)."
    ) % {"address": address}


def _refuse_blocked(host: str, port: int) -> None:
    """Raise Permanent when the host's name resolves into a blocked network (a name pointing at the
    metadata address, say). A name that does not resolve here is left to requests (which may go
    through a proxy). The connection itself resolves again; HTTPS certificate verification is what
    keeps a name that changes its answer in between (DNS rebinding) from reaching a service inside."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return
    for info in infos:
        address = str(info[4][0])
        if is_blocked(address):
            raise Permanent(_blocked_sentence(address))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def address_hint(url: str) -> str:
    """What the page shows of a saved address: scheme, host and the last four characters."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…{url[-4:]}"[:120]


def configure(channel: AlertChannel, url: str | None, secret: str | None) -> None:
    """Set a channel's address and secret (each only when given), encrypted, with the address's hint."""
    if url:
        channel.url_encrypted = vault.seal_text(check_address(url))
        channel.url_hint = address_hint(url.strip())
    if secret and channel.kind == ChannelKind.WEBHOOK:  # only a webhook signs
        channel.secret_encrypted = vault.seal_text(secret)


def manageable_by(user: AbstractUser | AnonymousUser) -> QuerySet[AlertChannel]:
    """The channels a user may see and change: all, or with an organisation limit only those of their
    organisations (portal-wide channels tell about every organisation, so only unlimited users)."""
    if not user.has_perm("certificates.change_notificationsettings"):
        return AlertChannel.objects.none()
    limit = organisation_limit(user)
    channels = AlertChannel.objects.select_related("organization")
    return channels if limit is None else channels.filter(organization__in=limit)


def save_channel(
    channel: AlertChannel, *, url: str | None, secret: str | None, actor: AbstractUser, change: str
) -> AlertChannel:
    """Store a channel set up (or changed) on the notifications page, with its secrets encrypted, and
    announce it (the audit log listens)."""
    configure(channel, url, secret)
    if not channel.created_by:
        channel.created_by = actor.get_username()
    channel.save()
    alert_channel_changed.send(sender=AlertChannel, channel=channel, actor=actor, change=change)
    return channel


def delete_channel(channel: AlertChannel, *, actor: AbstractUser) -> None:
    alert_channel_changed.send(sender=AlertChannel, channel=channel, actor=actor, change="removed")
    channel.delete()


# --- which channels, and what they are told --------------------------------------------------------------


@dataclass
class Item:
    """One certificate an alert is about, and what to say about it."""

    certificate: Certificate
    note: str = ""  # an English template, translated when the message is built
    note_values: dict[str, Any] = field(default_factory=dict)


class Describe(Protocol):
    """The title and text of a message about `items`; `count` says how many certificates the message is
    about when it names only some of them (default: all of them are `items`)."""

    def __call__(self, items: list[Item], count: int | None = None) -> tuple[str, str]: ...


def channels_for(organization_ids: Iterable[int | None] | None) -> list[AlertChannel]:
    """The enabled channels concerned: the portal-wide ones, and those of the given organisations (all
    organisations' channels when `organization_ids` is None)."""
    channels = AlertChannel.objects.filter(enabled=True).select_related("organization")
    if organization_ids is None:
        return list(channels)
    ids = {pk for pk in organization_ids if pk is not None}
    return list(channels.filter(Q(organization=None) | Q(organization__in=ids)))


def notify(kind: str, severity: str, items: list[Item], describe: Describe) -> int:
    """Queue an alert about certificates for every channel concerned, each listing only the
    certificates it may know of; `describe(items)` gives the title and text for those items, in
    TRUSTVIEW_EMAIL_LANGUAGE. Returns how many messages were queued. Never raises: a channel problem
    must not stop the e-mail (a savepoint: a database error here leaves the caller's transaction usable)."""
    try:
        queued = 0
        with transaction.atomic():
            for channel in channels_for({item.certificate.organization_id for item in items}):
                mine = [i for i in items if channel.organization_id in (None, i.certificate.organization_id)]
                if mine:
                    queue(channel, kind, _described(kind, severity, describe, mine))
                    queued += 1
        return queued
    except Exception:  # the e-mail goes on whatever happens here
        log.exception("Could not queue the %s alert for the chat and webhook channels", kind)
        return 0


def notify_counted(
    kind: str,
    severity: str,
    certificates: QuerySet[Certificate],
    item: Callable[[Certificate], Item],
    describe: Describe,
    limit: int,
) -> int:
    """As `notify`, for an alert about any number of certificates, given as a query in the order to list
    them: each channel's message names at most `limit` of the certificates it may know of and says how
    many there are (`certificates_total`, and `%(count)s` in its text), so that neither the message nor
    the memory grows with the certificates. Never raises (a savepoint, as in `notify`)."""
    try:
        queued = 0
        with transaction.atomic():
            organisations = certificates.order_by().values_list("organization_id", flat=True).distinct()
            for channel in channels_for(organisations):
                mine = certificates
                if channel.organization_id is not None:
                    mine = mine.filter(organization_id=channel.organization_id)
                total = mine.count()
                if not total:
                    continue
                items = [item(certificate) for certificate in mine[:limit]]
                content = _described(kind, severity, describe, items, total)
                content["certificates_total"] = total
                queue(channel, kind, content)
                queued += 1
        return queued
    except Exception:  # the e-mail goes on whatever happens here
        log.exception("Could not queue the %s alert for the chat and webhook channels", kind)
        return 0


def notify_portal(kind: str, severity: str, describe: Describe, items: list[Item] | None = None) -> int:
    """Queue an alert about the portal itself (the scheduler, a monthly status) for the portal-wide
    channels only. Never raises (a savepoint, as in `notify`)."""
    try:
        queued = 0
        with transaction.atomic():
            for channel in AlertChannel.objects.filter(enabled=True, organization=None):
                queue(channel, kind, _described(kind, severity, describe, items or []))
                queued += 1
        return queued
    except Exception:
        log.exception("Could not queue the %s alert for the chat and webhook channels", kind)
        return 0


def _described(
    kind: str, severity: str, describe: Describe, items: list[Item], count: int | None = None
) -> dict[str, Any]:
    """`build_content` with the title and text `describe` gives, in TRUSTVIEW_EMAIL_LANGUAGE."""
    with translation.override(settings.TRUSTVIEW_EMAIL_LANGUAGE):
        title, text = describe(items) if count is None else describe(items, count)
        return build_content(kind, severity, title, text, items)


def build_content(kind: str, severity: str, title: str, text: str, items: list[Item]) -> dict[str, Any]:
    """The message independent of the channel: what every format is made from."""
    base = settings.TRUSTVIEW_BASE_URL.rstrip("/")
    now = timezone.now()
    return {
        "event": kind,
        "severity": severity if severity in SEVERITIES else "info",
        "title": title,
        "text": text,
        "url": base + "/",
        "created_at": now.isoformat(),
        "certificates": [_certificate_fields(item, base, now) for item in items],
    }


def _certificate_fields(item: Item, base: str, now: dt.datetime) -> dict[str, Any]:
    c = item.certificate
    return {
        "id": c.pk,
        "common_name": c.subject_cn,
        "organisation": c.subject_organization,
        "cvr": c.cvr,
        "environment": c.environment,
        "serial_number": c.serial_number,
        "not_after": c.not_after.isoformat(),
        "days_left": (c.not_after - now).days,
        "url": base + c.get_absolute_url(),
        "note": _note(item),
    }


def _note(item: Item) -> str:
    if not item.note:
        return ""
    values = {k: gettext(v) if isinstance(v, str) and v else v for k, v in item.note_values.items()}
    try:
        return gettext(item.note) % values
    except (KeyError, ValueError, TypeError):
        return item.note


def queue(channel: AlertChannel, kind: str, content: dict[str, Any]) -> ChannelMessage:
    """Write the message and hand it to a worker once the surrounding transaction commits."""
    message = ChannelMessage.objects.create(channel=channel, kind=kind, content=content)
    transaction.on_commit(lambda: channel_message_queued.send(sender=ChannelMessage, message_id=message.pk))
    return message


# --- delivery ----------------------------------------------------------------------------------------------


def deliver(message_id: int) -> float | None:
    """Send one message (the task's one call). Returns None when it is done (sent, failed for good, gone,
    or taken by another worker), or the seconds after which to try again after a passing failure.

    The attempt is claimed in the database first (a lease on `next_attempt_at`, like an order step), so a
    message the sweep re-queues while its task is still around is still sent once.
    """
    now = timezone.now()
    lease = now + dt.timedelta(seconds=2 * settings.TRUSTVIEW_CHANNEL_TIMEOUT_SECONDS + 30)
    claimed = ChannelMessage.objects.filter(
        pk=message_id, state=DeliveryState.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=lease, attempts=F("attempts") + 1)
    if not claimed:
        return None
    message = ChannelMessage.objects.select_related("channel").get(pk=message_id)
    try:
        post(message.channel, message.content, message.delivery_id.hex)
    except Transient as failure:
        final = message.attempts >= settings.TRUSTVIEW_CHANNEL_ATTEMPTS
        _record_failure(message, str(failure), final=final)
        if final:
            return None
        delay = backoff(message.attempts - 1, failure.retry_after)
        ChannelMessage.objects.filter(pk=message.pk).update(
            next_attempt_at=timezone.now() + dt.timedelta(seconds=delay)
        )
        return delay
    except Permanent as failure:
        _record_failure(message, str(failure), final=True)
        return None
    now = timezone.now()
    ChannelMessage.objects.filter(pk=message.pk).update(state=DeliveryState.SENT, sent_at=now, last_error="")
    AlertChannel.objects.filter(pk=message.channel_id).update(last_success_at=now)
    return None


def overdue(now: dt.datetime | None = None) -> list[int]:
    """Messages still to send whose next attempt is well past (their task message was lost: the broker
    was down when the alert was written, or a worker died): the sweep queues them again."""
    now = now or timezone.now()
    late = ChannelMessage.objects.filter(
        state=DeliveryState.PENDING, next_attempt_at__lte=now - dt.timedelta(minutes=2)
    )
    return list(late.order_by("next_attempt_at").values_list("pk", flat=True)[:500])


def _record_failure(message: ChannelMessage, sentence: str, *, final: bool) -> None:
    sentence = sentence[:300]
    log.warning(
        "Alert channel %s (%s): delivery %s failed: %s",
        message.channel_id,
        message.kind,
        message.pk,
        sentence,
    )
    update: dict[str, Any] = {"last_error": sentence}
    if final:
        update["state"] = DeliveryState.FAILED
    ChannelMessage.objects.filter(pk=message.pk).update(**update)
    AlertChannel.objects.filter(pk=message.channel_id).update(
        last_failure_at=timezone.now(), last_error=sentence
    )


def backoff(retries: int, retry_after: float | None = None) -> float:
    """Seconds before the next attempt: the receiver's Retry-After, else exponential from
    TRUSTVIEW_RETRY_BASE_SECONDS with jitter; never beyond TRUSTVIEW_RETRY_CAP_SECONDS."""
    cap = settings.TRUSTVIEW_RETRY_CAP_SECONDS
    if retry_after is not None:
        return min(cap, max(0.0, retry_after))
    delay = min(cap, settings.TRUSTVIEW_RETRY_BASE_SECONDS * 2**retries)
    return delay * random.uniform(0.5, 1.0)  # noqa: S311  # jitter, not a secret


def post(channel: AlertChannel, content: dict[str, Any], delivery_id: str) -> None:
    """POST the content to the channel in its format. Raises Transient or Permanent with a sentence."""
    try:
        url = check_address(vault.unseal_text(channel.url_encrypted))
        secret = vault.unseal_text(channel.secret_encrypted) if channel.secret_encrypted else ""
    except (ChannelAddressError, vault.VaultError) as error:
        raise Permanent(str(error)) from None
    body = json.dumps(payload(channel.kind, content), ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
    if channel.kind == ChannelKind.WEBHOOK:
        headers.update(signature_headers(secret, body, delivery_id, content.get("event", "")))
    parts = urlsplit(url)
    host = parts.hostname or ""
    _refuse_blocked(host, parts.port or (443 if parts.scheme.lower() == "https" else 80))
    timeout = settings.TRUSTVIEW_CHANNEL_TIMEOUT_SECONDS
    try:
        with requests.post(
            url, data=body, headers=headers, timeout=(timeout, timeout), allow_redirects=False, stream=True
        ) as response:
            answer = _read_capped(response, time.monotonic() + timeout)
            status = response.status_code
            retry_after = _retry_after(response.headers.get("Retry-After", ""))
    except requests.Timeout:
        raise Transient(gettext("%(host)s did not answer in time.") % {"host": host}) from None
    except requests.ConnectionError:
        raise Transient(gettext("Could not connect to %(host)s.") % {"host": host}) from None
    except requests.RequestException:
        raise Transient(gettext("The request to %(host)s failed.") % {"host": host}) from None
    if 200 <= status < 300:
        return
    said = _said(answer)
    sentence = gettext("%(host)s answered HTTP %(status)s%(said)s.") % {
        "host": host,
        "status": status,
        "said": said,
    }
    if status == 429 or status >= 500:
        raise Transient(sentence, retry_after)
    if 300 <= status < 400:
        raise Permanent(
            gettext("%(host)s answered with a redirect, which alerts do not follow: enter the final address.")
            % {"host": host}
        )
    raise Permanent(sentence)


def _read_capped(response: requests.Response, deadline: float) -> bytes:
    """At most MAX_ANSWER_BYTES of the answer, read until the deadline. read1 returns after one read
    from the socket: iter_content waits until its whole chunk is filled, so a receiver sending a byte
    now and then (each within the read timeout) held the delivery, and a worker, for hours."""
    data = b""
    while len(data) < MAX_ANSWER_BYTES and time.monotonic() < deadline:
        chunk = response.raw.read1(8192, decode_content=True)
        if not chunk:
            break
        data += chunk
    return data[:MAX_ANSWER_BYTES]


def _retry_after(value: str) -> float | None:
    value = value.strip()
    return float(value) if value.isdigit() else None


def _said(answer: bytes) -> str:
    """A short, printable piece of the receiver's answer for the error sentence (Slack says why)."""
    text = "".join(ch if ch.isprintable() else " " for ch in answer[:200].decode("utf-8", errors="replace"))
    text = " ".join(text.split())[:120]
    return f": {text}" if text else ""


def signature_headers(secret: str, body: bytes, delivery_id: str, event: str) -> dict[str, str]:
    """The webhook's headers: the time, and the HMAC-SHA256 of `<time>.<body>` with the secret."""
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Trustview-Event": event,
        "X-Trustview-Delivery": delivery_id,
        "X-Trustview-Timestamp": timestamp,
        "X-Trustview-Signature": f"sha256={digest}",
    }


# --- formats -----------------------------------------------------------------------------------------------


def payload(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for a channel of `kind`."""
    if kind == ChannelKind.TEAMS:
        return teams_card(content)
    if kind == ChannelKind.SLACK:
        return slack_message(content)
    return content


def _lines(content: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Each listed certificate with its one-line summary (name, CVR, expiry, note)."""
    lines = []
    for c in content.get("certificates", [])[:MAX_ITEMS]:
        facts = [
            f"CVR {c['cvr']}" if c.get("cvr") else "",
            str(c.get("not_after", ""))[:10],
            c.get("note", ""),
        ]
        lines.append((c, " · ".join(f for f in facts if f)))
    return lines


def _more(content: dict[str, Any]) -> int:
    listed = len(content.get("certificates", []))
    return max(0, content.get("certificates_total", listed) - min(listed, MAX_ITEMS))


TEAMS_COLOURS = {"critical": "Attention", "warning": "Warning", "info": "Default", "good": "Good"}


def teams_card(content: dict[str, Any]) -> dict[str, Any]:
    """A Teams message with an Adaptive Card (what an incoming webhook and a Workflows "post to a
    channel when a webhook request is received" flow both take)."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": content["title"],
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": TEAMS_COLOURS.get(content.get("severity", ""), "Default"),
        },
        {"type": "TextBlock", "text": content["text"], "wrap": True},
    ]
    for c, line in _lines(content):
        body.append(
            {
                "type": "TextBlock",
                "text": f"[{_teams_escape(c['common_name'])}]({c['url']}): {_teams_escape(line)}",
                "wrap": True,
                "spacing": "Small",
            }
        )
    if more := _more(content):
        body.append(
            {"type": "TextBlock", "text": gettext("…and %(count)s more.") % {"count": more}, "wrap": True}
        )
    actions = [{"type": "Action.OpenUrl", "title": gettext("Open trustview"), "url": content["url"]}]
    if len(content.get("certificates", [])) == 1:
        actions.insert(
            0,
            {
                "type": "Action.OpenUrl",
                "title": gettext("Open the certificate"),
                "url": content["certificates"][0]["url"],
            },
        )
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                    "actions": actions,
                },
            }
        ],
    }


def _teams_escape(text: str) -> str:
    """Text inside an Adaptive Card's Markdown: brackets would start a link."""
    return text.replace("[", "(").replace("]", ")")


SLACK_EMOJI = {
    "critical": ":red_circle:",
    "warning": ":warning:",
    "info": ":information_source:",
    "good": ":white_check_mark:",
}


def slack_message(content: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` (notifications, and clients without blocks) and blocks."""
    title = f"{SLACK_EMOJI.get(content.get('severity', ''), '')} {_slack_escape(content['title'])}".strip()
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{title}*\n{_slack_escape(content['text'])}"},
        }
    ]
    lines = [
        f"• <{c['url']}|{_slack_escape(c['common_name'])}>: {_slack_escape(line)}"
        for c, line in _lines(content)
    ]
    if more := _more(content):
        lines.append(_slack_escape(gettext("…and %(count)s more.") % {"count": more}))
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"<{content['url']}|{_slack_escape(gettext('Open trustview'))}>"}
            ],
        }
    )
    return {"text": f"{content['title']}: {content['text']}", "blocks": blocks}


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn needs &, < and > escaped; everything else is shown as it is."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- test message ------------------------------------------------------------------------------------------


def send_test_message(channel: AlertChannel, sent_by: str) -> None:
    """Send a test message to one channel now, in this request (not queued): raises Transient or
    Permanent with the sentence to show. Success and failure are recorded on the channel as usual."""
    with translation.override(settings.TRUSTVIEW_EMAIL_LANGUAGE):
        content = build_content(
            "test",
            "info",
            gettext("Test message from trustview"),
            gettext("%(user)s sent this test message from the notifications page: alerts reach this channel.")
            % {"user": sent_by},
            [],
        )
    message = ChannelMessage.objects.create(channel=channel, kind="test", content=content)
    if deliver(message.pk) is not None:
        # A person is waiting: no retries (they can press the button again).
        ChannelMessage.objects.filter(pk=message.pk).update(state=DeliveryState.FAILED)
    message.refresh_from_db()
    if message.state != DeliveryState.SENT:
        raise Permanent(message.last_error)


def describe_with(title: str, text: str, **values: Any) -> Describe:
    """A `describe` for notify from English templates (translated when called), with `%(count)s` filled
    with the number of certificates the channel is told about."""

    def describe(items: list[Item], count: int | None = None) -> tuple[str, str]:
        filled = {"count": len(items) if count is None else count, **values}
        return gettext(title) % filled, gettext(text) % filled

    return describe
