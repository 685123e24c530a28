"""Production: secrets and hosts from the environment, HTTPS everywhere."""

from telehealth.env import env_bool, env_int, env_str
from telehealth.settings.base import *  # noqa: F403
from telehealth.settings.base import ALLOWED_HOSTS, content_security_policy

DEBUG = False
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set in production")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
# Load balancers probe over plain HTTP inside the network; the probe reveals nothing.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Pages are served over HTTPS only, so their sockets are wss:// only.
CONTENT_SECURITY_POLICY = content_security_policy(hosts=ALLOWED_HOSTS, websocket_schemes=("wss",))
CONTENT_SECURITY_POLICY["DIRECTIVES"]["upgrade-insecure-requests"] = True
# Physicians and administrators must pass a TOTP check after their password.
STAFF_TWO_FACTOR_REQUIRED = env_bool("STAFF_TWO_FACTOR_REQUIRED", True)
