"""Writes for accounts: patient sign-up and activation, clearing a lockout after a reset."""

from datetime import date

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth.hashers import make_password
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from telehealth.models import Role, User
from telehealth.selectors import activation_tokens, is_pending_activation


def patient_sign_up(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    date_of_birth: date | None,
    time_zone: str,
    base_url: str,
) -> None:
    """Start a patient sign-up; only the e-mail says what happened, never the page.

    A new address gets an inactive account and an activation link; an address waiting for
    activation gets its link again (the new details are dropped, so nobody can replace the
    password of an account they cannot activate); an address with an account gets a note
    saying so, with links to sign in and to reset the password.
    """
    email = User.objects.normalize_email(email).lower()
    existing = User.objects.filter(email__iexact=email).first()
    if existing is None:
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    email,
                    password,
                    first_name=first_name,
                    last_name=last_name,
                    date_of_birth=date_of_birth,
                    time_zone=time_zone,
                    role=Role.PATIENT,
                    is_active=False,
                )
        except IntegrityError:
            return  # a simultaneous sign-up for the same address already sent the e-mail
        _send_activation(user=user, base_url=base_url)
        return
    # Hash anyway, so both answers take the same time and the timing says nothing either.
    make_password(password)
    if is_pending_activation(existing):
        _send_activation(user=existing, base_url=base_url)
    else:
        _send(
            template="registration/signup_existing",
            to=existing.email,
            context={
                "user": existing,
                "login_url": base_url + reverse("login"),
                "reset_url": base_url + reverse("password_reset"),
            },
        )


def patient_activate(*, user: User) -> User:
    """Activate an account from its (already checked) activation link."""
    if not is_pending_activation(user):
        raise ValueError("This account is not waiting for activation")
    user.is_active = True
    user.save(update_fields=["is_active"])
    return user


def login_lockouts_clear(*, user: User) -> int:
    """Forget the account's failed sign-ins (every address) once its password was reset by e-mail.

    Per-address lockouts stay: a reset proves who owns the mailbox, not who owns the network.
    """
    return AxesProxyHandler.reset_attempts(username=user.email.lower())


def _send_activation(*, user: User, base_url: str) -> None:
    path = reverse(
        "signup_activate",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": activation_tokens.make_token(user),
        },
    )
    _send(
        template="registration/signup_activate",
        to=user.email,
        context={"user": user, "activate_url": base_url + path},
    )


def _send(*, template: str, to: str, context: dict) -> None:
    subject = "".join(render_to_string(f"{template}_subject.txt", context).splitlines())
    body = render_to_string(f"{template}_email.txt", context)
    send_mail(subject, body, None, [to])
