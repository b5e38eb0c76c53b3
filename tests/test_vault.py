"""The key vault: keys encrypted at rest, rotation with several keys, and no secret in an error."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from certificates import vault
from certificates.models import Certificate
from certificates.services import import_certificate_file
from certificates.x509 import key_matches

from . import pki


def test_sealed_key_opens_to_the_same_key_and_holds_no_plain_key(settings):
    settings.TRUSTVIEW_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    leaf = pki.make_leaf(pki.make_ca())
    token = vault.seal(leaf.key)
    assert "PRIVATE KEY" not in token
    assert key_matches(leaf.certificate, vault.unseal(token))


@pytest.mark.django_db
def test_rotation_new_key_first_then_reencrypt_then_old_key_dropped(settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TRUSTVIEW_KEY_ENCRYPTION_KEYS = [old]
    leaf = pki.make_leaf(pki.make_ca())
    import_certificate_file(leaf.pem + leaf.key_pem(), actor="test")
    from certificates import channels
    from certificates.models import AlertChannel

    hook = AlertChannel(name="Hook", kind="webhook")
    channels.configure(hook, "https://hooks.example.dk/secret-path", "a-signing-secret-of-some-length")
    hook.save()

    settings.TRUSTVIEW_KEY_ENCRYPTION_KEYS = [new, old]  # the first encrypts, all decrypt
    call_command("reencrypt_keys")
    assert "Re-encrypted 1 private key" in capsys.readouterr().out

    settings.TRUSTVIEW_KEY_ENCRYPTION_KEYS = [new]
    token = Certificate.objects.get().private_key_encrypted
    assert key_matches(leaf.certificate, vault.unseal(token))
    hook.refresh_from_db()  # the alert channel's secrets are re-encrypted too
    assert vault.unseal_text(hook.url_encrypted) == "https://hooks.example.dk/secret-path"
    assert vault.unseal_text(hook.secret_encrypted) == "a-signing-secret-of-some-length"


def test_wrong_key_says_so_without_any_secret(settings):
    settings.TRUSTVIEW_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    token = vault.seal(pki.make_leaf(pki.make_ca()).key)
    other = Fernet.generate_key().decode()
    settings.TRUSTVIEW_KEY_ENCRYPTION_KEYS = [other]
    with pytest.raises(vault.VaultError, match="cannot be decrypted") as error:
        vault.unseal(token)
    assert other not in str(error.value) and token not in str(error.value)


def test_a_value_that_is_no_fernet_key_is_a_configuration_error(settings):
    settings.TRUSTVIEW_KEY_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="not a Fernet key"):
        vault.seal(pki.make_leaf(pki.make_ca()).key)
