"""Role gates for views: a wrong role gets 403 and an audit entry, never data."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from telehealth.audit import audit_denied


def role_required(*roles: str) -> Callable:
    """Allow only signed-in users whose role is one of ``roles`` (superusers count as admin)."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            user = request.user
            role = "admin" if user.is_clinic_admin else user.role
            if role not in roles:
                audit_denied(
                    request=request,
                    object_type="page",
                    object_id=request.resolver_match.url_name if request.resolver_match else "",
                    detail=f"role {user.role} not in {','.join(roles)}",
                )
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def not_found_and_audit(*, request: HttpRequest, object_type: str, object_id: object) -> Http404:
    """Record the refused attempt and return the 404 to raise (no hint whether it exists)."""
    audit_denied(request=request, object_type=object_type, object_id=object_id)
    return Http404("Not found")
