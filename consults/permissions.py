"""The visit gate for views: the visit if the user may see it, else an audited 404."""

from django.http import HttpRequest

from consults.selectors import visit_get_for_user
from telehealth.permissions import not_found_and_audit


def visit_or_404(request: HttpRequest, visit_id: int):
    """The visit if the user may see it; otherwise an audited 404 (no hint it exists)."""
    visit = visit_get_for_user(user=request.user, visit_id=visit_id)
    if visit is None:
        raise not_found_and_audit(request=request, object_type="visit", object_id=visit_id)
    return visit
