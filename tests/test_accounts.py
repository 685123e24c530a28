"""Sign-up by e-mail (no account enumeration, activation link, rate limit) and password reset."""

import re

import pytest
from django.urls import reverse

from telehealth.models import User
from tests.factories import PASSWORD

NEW_PASSWORD = "a-brand-new-passphrase-7"


def _signup(client, email, *, remote_addr="127.0.0.1", **extra):
    data = {
        "email": email,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "time_zone": "Europe/London",
        "password1": "a-long-passphrase-42",
        "password2": "a-long-passphrase-42",
        **extra,
    }
    return client.post(reverse("signup"), data, REMOTE_ADDR=remote_addr)


def _link(message) -> str:
    (url,) = re.findall(r"https?://\S+", message.body)
    return url.removeprefix("http://testserver")


def _sign_in(client, email, password, *, remote_addr="127.0.0.1"):
    return client.post(
        reverse("login"), {"username": email, "password": password}, REMOTE_ADDR=remote_addr
    )


# Sign-up


def test_new_address_gets_an_activation_link_that_signs_in_after_a_click(client, mailoutbox):
    response = _signup(client, "ada@example.org")
    assert response.status_code == 302 and response["Location"] == reverse("signup_sent")
    assert b"Check your e-mail" in client.get(response["Location"]).content
    (mail,) = mailoutbox
    assert mail.to == ["ada@example.org"] and "Activate" in mail.subject
    user = User.objects.get(email="ada@example.org")
    assert not user.is_active and user.role == "patient"
    # Not before activation, even with the right password.
    assert _sign_in(client, "ada@example.org", "a-long-passphrase-42").status_code == 200

    # Opening the link (as a mail scanner would) changes nothing; the button does.
    link = _link(mail)
    page = client.get(link)
    assert page.status_code == 200 and b"Activate my account" in page.content
    user.refresh_from_db()
    assert not user.is_active
    response = client.post(link)
    assert response.status_code == 302 and response["Location"] == reverse("consults:visit_list")
    user.refresh_from_db()
    assert user.is_active
    assert client.session["_auth_user_id"] == str(user.pk)

    # Spent: the link works once.
    client.logout()
    assert b"does not work any more" in client.get(link).content
    client.post(link)
    assert "_auth_user_id" not in client.session


def test_existing_and_new_addresses_get_the_same_answer(client, physician, mailoutbox):
    new = _signup(client, "brand.new@example.org", remote_addr="198.51.100.1")
    taken = _signup(client, physician.email.upper(), remote_addr="198.51.100.2")
    assert (new.status_code, new["Location"], new.content) == (
        taken.status_code,
        taken["Location"],
        taken.content,
    )
    assert client.get(new["Location"]).content == client.get(taken["Location"]).content
    # Only the mailbox learns the difference.
    activation, existing = mailoutbox
    assert "Activate" in activation.subject
    assert existing.to == [physician.email] and "already have" in existing.subject
    assert reverse("password_reset") in existing.body and reverse("login") in existing.body
    # The existing account is untouched.
    physician.refresh_from_db()
    assert physician.first_name != "Ada" and physician.check_password(PASSWORD)
    assert physician.role == "physician"


def test_signing_up_again_before_activating_resends_the_link_without_changing_the_account(
    client, mailoutbox
):
    _signup(client, "ada@example.org")
    _signup(
        client,
        "ada@example.org",
        first_name="Mallory",
        password1="another-pass-99x",
        password2="another-pass-99x",
    )
    assert User.objects.filter(email="ada@example.org").count() == 1
    user = User.objects.get(email="ada@example.org")
    assert user.first_name == "Ada" and user.check_password("a-long-passphrase-42")
    first, second = mailoutbox
    assert "Activate" in second.subject
    assert client.post(_link(second)).status_code == 302


def test_a_tampered_activation_link_does_nothing(client, mailoutbox):
    _signup(client, "ada@example.org")
    link = _link(mailoutbox[0])
    response = client.post(link[:-3] + "abc/")
    assert response.status_code == 200 and b"does not work any more" in response.content
    assert not User.objects.get(email="ada@example.org").is_active
    assert client.get("/accounts/activate/!!/x/").status_code == 200


def test_signups_are_limited_per_address_per_hour(client, settings, mailoutbox):
    settings.SIGNUP_RATE_PER_HOUR = 3
    for n in range(3):
        assert _signup(client, f"p{n}@example.org", remote_addr="192.0.2.50").status_code == 302
    refused = _signup(client, "p3@example.org", remote_addr="192.0.2.50")
    assert refused.status_code == 429
    assert b"too many sign-ups from your network address" in refused.content
    assert re.search(rb"try again in\s+\d+ minute", refused.content)
    assert not User.objects.filter(email="p3@example.org").exists() and len(mailoutbox) == 3
    # Another address is not affected.
    assert _signup(client, "p3@example.org", remote_addr="192.0.2.51").status_code == 302


def test_a_form_with_errors_does_not_count_towards_the_limit(client, settings):
    settings.SIGNUP_RATE_PER_HOUR = 1
    for _ in range(3):
        assert _signup(client, "ada@example.org", password2="mismatch").status_code == 200
    assert _signup(client, "ada@example.org").status_code == 302


def test_signup_page_defaults_to_the_browsers_time_zone(client):
    page = client.get(reverse("signup")).content.decode()
    assert re.search(r"<select [^>]*data-browser-default", page)
    assert "js/signup.js" in page
    # A form sent back with errors keeps the patient's own choice.
    again = _signup(client, "ada@example.org", password2="mismatch").content.decode()
    assert "data-browser-default" not in again


# Password reset


def test_password_reset_by_email_end_to_end(client, patient, mailoutbox):
    login_page = client.get(reverse("login")).content.decode()
    assert f'href="{reverse("password_reset")}"' in login_page
    assert "Forgot your password?" in login_page

    response = client.post(reverse("password_reset"), {"email": patient.email.upper()})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    (mail,) = mailoutbox
    assert mail.to == [patient.email] and "Reset" in mail.subject

    # Django swaps the token for a session key, then asks for the new password.
    response = client.get(_link(mail))
    assert response.status_code == 302
    form_url = response["Location"]
    page = client.get(form_url)
    assert page.status_code == 200 and b"Choose a new password" in page.content
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_complete")

    assert _sign_in(client, patient.email, PASSWORD).status_code == 200  # the old one fails
    response = _sign_in(client, patient.email, NEW_PASSWORD)
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(patient.pk)
    # The link works once.
    client.logout()
    assert b"does not work any more" in client.get(_link(mail), follow=True).content


def test_password_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(client, mailoutbox):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.org"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert mailoutbox == []


def test_a_new_password_lifts_the_accounts_sign_in_lockout(client, patient, mailoutbox):
    for _ in range(5):
        _sign_in(client, patient.email, "wrong-password-123")
    assert _sign_in(client, patient.email, PASSWORD).status_code == 429
    client.post(reverse("password_reset"), {"email": patient.email})
    form_url = client.get(_link(mailoutbox[0]))["Location"]
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert _sign_in(client, patient.email, NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize("known", [True, False])
def test_password_reset_requests_are_limited_per_address(client, settings, patient, known):
    settings.PASSWORD_RESET_RATE_PER_HOUR = 2
    email = patient.email if known else "nobody@example.org"
    for _ in range(2):
        assert client.post(reverse("password_reset"), {"email": email}).status_code == 302
    refused = client.post(reverse("password_reset"), {"email": email})
    assert refused.status_code == 429 and b"password reset requests" in refused.content
