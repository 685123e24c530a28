from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from telehealth import health, observability, two_factor, views, views_privacy

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", observability.metrics, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/signup/sent/", views.signup_sent, name="signup_sent"),
    path(
        "accounts/activate/<str:uidb64>/<str:token>/",
        views.signup_activate,
        name="signup_activate",
    ),
    path("accounts/password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<str:uidb64>/<str:token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("accounts/2fa/setup/", two_factor.setup, name="two_factor_setup"),
    path("accounts/2fa/verify/", two_factor.verify, name="two_factor_verify"),
    path("accounts/record-access/", views.my_record_access, name="record_access"),
    path("accounts/privacy/", views_privacy.privacy, name="privacy"),
    path(
        "accounts/privacy/erasure/<int:request_id>/",
        views_privacy.erasure_request,
        name="erasure_request",
    ),
    path("audit/", views.audit_log, name="audit_log"),
    path("privacy/erasure-requests/", views_privacy.erasure_requests, name="erasure_requests"),
    path(
        "privacy/erasure-requests/<int:request_id>/process/",
        views_privacy.erasure_process,
        name="erasure_process",
    ),
    path("admin/", admin.site.urls),
    path("", include("consults.urls")),
    path("", include("triage.urls")),
]
