"""Production hardening, login lockout, idle sign-out and the browser security headers."""

import ast
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import PASSWORD
from tests.test_permissions import login

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_DIR = ROOT / "telehealth" / "settings"


def _production_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["DJANGO_SETTINGS_MODULE"] = "telehealth.settings.production"
    return {**env, **extra}


def test_check_deploy_is_clean_with_the_secret_key_from_a_file(tmp_path):
    # The key comes from DJANGO_SECRET_KEY_FILE (a container secret); check --deploy would
    # report security.W009 if it were missing or weak, and every other HTTPS/cookie/HSTS gap.
    (tmp_path / "secret").write_text(secrets.token_urlsafe(50) + "\n")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(DJANGO_SECRET_KEY_FILE=str(tmp_path / "secret")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$|CREDENTIAL", re.IGNORECASE)


@pytest.mark.parametrize("module", ["base.py", "production.py"])
def test_no_secret_literal_in_shared_or_production_settings(module):
    tree = ast.parse((SETTINGS_DIR / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if any(SECRET_NAME.search(name) for name in names):
                value = node.value
                is_literal = isinstance(value, ast.Constant) and isinstance(value.value, str)
                assert not (is_literal and value.value), f"{names} is a literal in {module}"
        # A secret read from the environment must not fall back to a literal default either.
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "env_str":
            name = node.args[0].value if node.args else ""
            if SECRET_NAME.search(name) and len(node.args) > 1:
                default = node.args[1]
                assert isinstance(default, ast.Constant) and default.value == "", name
    assert "django-insecure" not in (SETTINGS_DIR / module).read_text()


def _fail_login(client, email, *, remote_addr="127.0.0.1"):
    return client.post(
        reverse("login"),
        {"username": email, "password": "wrong-password-123"},
        REMOTE_ADDR=remote_addr,
    )


def _sign_in(client, email, *, remote_addr="127.0.0.1"):
    return client.post(
        reverse("login"), {"username": email, "password": PASSWORD}, REMOTE_ADDR=remote_addr
    )


def test_login_locks_out_after_five_failures_even_with_the_right_password(client, patient):
    assert settings.AXES_FAILURE_LIMIT == 5
    for attempt in range(4):
        response = _fail_login(client, patient.email)
        assert response.status_code == 200, attempt  # the form again, with an error
    response = _fail_login(client, patient.email)
    assert response.status_code == 429
    response = _sign_in(client, patient.email)
    assert response.status_code == 429
    assert b"Sign-in paused" in response.content and b"15 more minutes" in response.content
    assert b"to this account from your" in response.content
    assert b"Other accounts on the same network are not affected" in response.content
    assert "_auth_user_id" not in client.session


def test_lockout_counts_case_variants_of_one_email_together(client, patient):
    for attempt in range(5):
        _fail_login(client, patient.email.upper() if attempt % 2 else patient.email)
    assert _sign_in(client, patient.email).status_code == 429


def test_one_persons_typos_lock_only_their_account_from_their_address(client, patient, physician):
    # Patient A and physician B share the clinic's address X; A mistypes five times.
    clinic, home = "192.0.2.10", "198.51.100.20"
    for _ in range(5):
        _fail_login(client, patient.email, remote_addr=clinic)
    assert _sign_in(client, patient.email, remote_addr=clinic).status_code == 429
    assert _sign_in(client, physician.email, remote_addr=clinic).status_code == 302
    client.logout()
    # The lockout is of the (account, address) pair: A can still sign in from home.
    assert _sign_in(client, patient.email, remote_addr=home).status_code == 302


def test_refused_attempts_during_a_lockout_do_not_count_towards_the_address(client, patient):
    for _ in range(5 + 60):
        _fail_login(client, patient.email, remote_addr="192.0.2.10")
    assert _sign_in(client, "someone.else@example.org", remote_addr="192.0.2.10").status_code == 200


def test_fifty_failures_from_one_address_across_accounts_lock_the_address(
    client, patient, physician
):
    assert settings.LOGIN_ADDRESS_FAILURE_LIMIT == 50
    sprayer, elsewhere = "192.0.2.7", "203.0.113.9"
    for attempt in range(49):
        response = _fail_login(client, f"guess{attempt}@example.org", remote_addr=sprayer)
        assert response.status_code == 200, attempt
    response = _fail_login(client, "guess49@example.org", remote_addr=sprayer)
    assert response.status_code == 429
    response = _sign_in(client, physician.email, remote_addr=sprayer)
    assert response.status_code == 429
    assert b"from this network address is" in response.content
    assert b"paused for every account, for 15 more minutes" in response.content
    assert "_auth_user_id" not in client.session
    # Only that address: the same accounts sign in from anywhere else.
    assert _sign_in(client, patient.email, remote_addr=elsewhere).status_code == 302


def test_address_lockout_page_counts_down_to_when_enough_failures_age_out(
    client, patient, settings
):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 10
    now = timezone.now()
    # Six failures 12 minutes ago and four 2 minutes ago: once the older six age out (in three
    # minutes) four remain, below the limit.
    for index, (failures, minutes_ago) in enumerate([(3, 12), (3, 12), (4, 2)]):
        attempt = AccessAttempt.objects.create(
            username=f"guess{index}@example.org",
            ip_address="192.0.2.8",
            user_agent="",
            failures_since_start=failures,
        )
        # attempt_time is auto_now_add: set it afterwards.
        AccessAttempt.objects.filter(pk=attempt.pk).update(
            attempt_time=now - timedelta(minutes=minutes_ago)
        )
    response = _sign_in(client, patient.email, remote_addr="192.0.2.8")
    assert response.status_code == 429 and b"for 3 more minutes" in response.content


def test_a_successful_login_resets_the_failure_count(client, patient):
    for _ in range(4):
        _fail_login(client, patient.email)
    response = client.post(reverse("login"), {"username": patient.email, "password": PASSWORD})
    assert response.status_code == 302
    client.logout()
    for _ in range(4):
        assert _fail_login(client, patient.email).status_code == 200


def test_idle_session_is_signed_out(client, patient):
    login(client, patient)
    url = reverse("consults:visit_list")
    assert client.get(url).status_code == 200
    session = client.session
    session["_telehealth_last_seen"] = int(time.time()) - settings.SESSION_IDLE_TIMEOUT - 5
    session.save()
    response = client.get(url)
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_session_older_than_the_absolute_limit_is_signed_out(client, patient):
    login(client, patient)
    url = reverse("consults:visit_list")
    client.get(url)
    session = client.session
    session["_telehealth_signed_in"] = int(time.time()) - settings.SESSION_COOKIE_AGE - 5
    session.save()
    assert client.get(url).status_code == 302


def test_pages_carry_csp_and_the_other_security_headers(client):
    response = client.get(reverse("login"))
    csp = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if part.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "blob:" in directives["media-src"] and "mediastream:" in directives["media-src"]
    assert "ws://127.0.0.1:*" in directives["connect-src"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "camera=(self)" in response["Permissions-Policy"]
    assert "microphone=(self)" in response["Permissions-Policy"]


def test_templates_have_no_inline_script_style_or_handler():
    # The CSP allows no inline code; this names the template that would break under it.
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>|"
        r"\sstyle=|<style|\son[a-z]+=|javascript:",
        re.IGNORECASE,
    )
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "templates").rglob("*.html")
        if inline.search(path.read_text())
    ]
    assert offenders == []


def _totp(device) -> str:
    from django_otp.oath import TOTP

    return f"{TOTP(device.bin_key, device.step, device.t0, device.digits).token():06d}"


def test_staff_without_a_device_must_enrol_before_reaching_any_page(client, settings, physician):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.STAFF_TWO_FACTOR_REQUIRED = True
    login(client, physician)
    queue = reverse("triage:queue")
    response = client.get(queue)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor_setup"))
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"data:image/svg+xml;base64," in page.content
    device = TOTPDevice.objects.get(user=physician, confirmed=False)
    assert client.post(reverse("two_factor_setup"), {"token": "000000"}).status_code == 200
    device.refresh_from_db()
    device.throttle_reset()  # the wrong code started django-otp's back-off
    done = client.post(reverse("two_factor_setup"), {"token": _totp(device), "next": queue})
    assert done.status_code == 302 and done["Location"] == queue
    assert client.get(queue).status_code == 200
    device.refresh_from_db()
    assert device.confirmed


def test_staff_with_a_device_must_enter_a_code_after_the_password(client, settings, admin_user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.STAFF_TWO_FACTOR_REQUIRED = True
    device = TOTPDevice.objects.create(user=admin_user, name="phone", confirmed=True)
    login(client, admin_user)
    board = reverse("triage:board")
    response = client.get(board)
    assert response["Location"].startswith(reverse("two_factor_verify"))
    # The admin site and /metrics are behind the same check.
    assert client.get("/admin/").status_code == 302
    wrong = client.post(reverse("two_factor_verify"), {"token": "123456", "next": board})
    assert wrong.status_code == 200 and b"did not match" in wrong.content
    device.refresh_from_db()
    device.throttle_reset()  # the wrong code started django-otp's back-off
    right = client.post(
        reverse("two_factor_verify"), {"token": _totp(device), "next": "https://evil.example/"}
    )
    assert right.status_code == 302 and right["Location"] == reverse("home")
    assert client.get(board).status_code == 200


def test_patients_are_never_asked_for_a_second_factor(client, settings, patient):
    settings.STAFF_TWO_FACTOR_REQUIRED = True
    login(client, patient)
    assert client.get(reverse("consults:visit_list")).status_code == 200
