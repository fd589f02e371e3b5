from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .forms import LanguageForm, PauseForm
from .models import Language
from .selectors import supporter_mail_preferences
from .services import supporter_pause, supporter_set_language, supporter_unsubscribe
from .tokens import read_unsubscribe_link, read_unsubscribe_token


# The signed token is the credential: mail clients send RFC 8058 one-click POSTs with no cookie
# and no CSRF token, so CSRF protection cannot apply here.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """Show a confirm button on GET (changes nothing: link scanners GET); unsubscribe on POST.

    The page offers a pause and a change of language too; those post to `preferences`.
    """
    link = read_unsubscribe_link(token)
    if link is None:
        return _invalid_token(request)
    if request.method == "POST":
        # The mailing whose message carried the link is told, for its report.
        supporter_unsubscribe(supporter_id=link.supporter_id, mailing_id=link.mailing_id)
        # The same page whether or not they were subscribed: nothing to learn from it.
        return render(request, "supporters/unsubscribe_done.html")
    return _preference_page(request, token, link.supporter_id)


# Unlike the one-click unsubscribe, these forms are only ever sent from our own page, so they
# carry a CSRF token: another site cannot pause or re-language a supporter who holds a link.
@require_http_methods(["GET", "POST"])
def preferences(request, token: str):
    """Pause mail or change its language on POST; a GET goes back to the page with the forms."""
    supporter_id = read_unsubscribe_token(token)
    if supporter_id is None:
        return _invalid_token(request)
    if request.method == "GET":
        return redirect("supporters:unsubscribe", token=token)
    action = request.POST.get("action")
    if action == "pause":
        pause_form = PauseForm(request.POST)
        if pause_form.is_valid():
            until = supporter_pause(supporter_id=supporter_id, days=pause_form.cleaned_data["days"])
            # The pause asked for, not one read back: the same page whoever the token names.
            return render(request, "supporters/paused.html", {"token": token, "until": until})
        return _preference_page(request, token, supporter_id, pause_form=pause_form, status=400)
    if action == "language":
        language_form = LanguageForm(request.POST)
        if language_form.is_valid():
            language = language_form.cleaned_data["language"]
            supporter_set_language(supporter_id=supporter_id, language=language)
            # Said in the language just chosen.
            with translation.override(language):
                response = render(
                    request,
                    "supporters/language_saved.html",
                    {"token": token, "language_name": Language(language).label},
                )
            response["Content-Language"] = language
            return response
        return _preference_page(
            request, token, supporter_id, language_form=language_form, status=400
        )
    return _preference_page(request, token, supporter_id, status=400)


def _preference_page(
    request,
    token: str,
    supporter_id: int,
    *,
    pause_form: PauseForm | None = None,
    language_form: LanguageForm | None = None,
    status: int = 200,
):
    """Render the unsubscribe page with the pause and language forms, and a running pause."""
    preferences = supporter_mail_preferences(supporter_id=supporter_id)
    if language_form is None:
        current = preferences.language if preferences else translation.get_language()
        language_form = LanguageForm(initial={"language": current})
    context = {
        "token": token,
        "pause_form": pause_form or PauseForm(),
        "language_form": language_form,
        "paused_until": preferences.paused_until if preferences else None,
    }
    return render(request, "supporters/unsubscribe_confirm.html", context, status=status)


def _invalid_token(request):
    return render(request, "supporters/unsubscribe_invalid.html", status=400)
