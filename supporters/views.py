from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .services import supporter_unsubscribe
from .tokens import read_unsubscribe_token


# The signed token is the credential: mail clients send RFC 8058 one-click POSTs with no cookie
# and no CSRF token, so CSRF protection cannot apply here.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """Show a confirm button on GET (changes nothing: link scanners GET); unsubscribe on POST."""
    supporter_id = read_unsubscribe_token(token)
    if supporter_id is None:
        return render(request, "supporters/unsubscribe_invalid.html", status=400)
    if request.method == "POST":
        supporter_unsubscribe(supporter_id=supporter_id)
        # The same page whether or not they were subscribed: nothing to learn from it.
        return render(request, "supporters/unsubscribe_done.html")
    return render(request, "supporters/unsubscribe_confirm.html", {"token": token})
