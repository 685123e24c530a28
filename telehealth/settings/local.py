"""Local development: the embedded default, debug on, a throwaway secret key."""

from telehealth.env import env_str
from telehealth.settings.base import *  # noqa: F403

DEBUG = True
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "local-dev-only-not-a-secret")
WHITENOISE_USE_FINDERS = True
