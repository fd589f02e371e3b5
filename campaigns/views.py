"""Public petition pages. Thin: forms validate, services write, selectors read."""

import copy
import hashlib
from dataclasses import dataclass
from functools import lru_cache, wraps
from urllib.parse import urlencode

from csp.decorators import csp_replace
from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language, gettext
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from supporters.models import Supporter

from .abuse import captcha_passed, captcha_widget, client_ip, email_limit, ip_limit, rate_limit_hit
from .confirmation import signature_confirmation_resend
from .counters import petition_count
from .forms import ResendConfirmationForm, SignatureForm, clean_source_ref
from .links import (
    PETITION_TOKEN_PARAMETER,
    petition_link_fits,
    read_confirmation_token,
    read_petition_token,
)
from .models import Petition
from .selectors import (
    petition_content,
    petition_goal,
    petition_list_open,
    petition_published,
    petition_suggestion,
)
from .signing import (
    PetitionClosed,
    SignatureInput,
    SigningUnavailable,
    signature_confirm,
    signature_create,
)


def embeddable(view):
    """Let other sites frame the page: the embed form, and the pages it leads to.

    Every other page may be framed by no one (CONTENT_SECURITY_POLICY's frame-ancestors and
    X-Frame-Options, config/settings/base.py). Here frame-ancestors is RALLY_EMBED_FRAME_ANCESTORS,
    read on each request, and X-Frame-Options is left out: it cannot name a list of sites.
    """

    @wraps(view)
    def framed_view(request, *args, **kwargs):
        frame_ancestors = {"frame-ancestors": settings.RALLY_EMBED_FRAME_ANCESTORS}
        return csp_replace(frame_ancestors)(xframe_options_exempt(view))(request, *args, **kwargs)

    return framed_view


def petition_list(request):
    return render(request, "campaigns/petition_list.html", {"petitions": petition_list_open()})


@require_http_methods(["GET", "POST"])
def petition_detail(request, slug: str):
    """Show a petition; on POST, sign it and go to the thank-you page."""
    return _petition_page(request, slug, template="campaigns/petition_detail.html", embed=False)


@embeddable  # made to live in an iframe on other sites
@require_http_methods(["GET", "POST"])
def petition_embed(request, slug: str):
    """The petition's form alone, for an iframe; it posts to itself, on our own origin."""
    return _petition_page(request, slug, template="campaigns/petition_embed.html", embed=True)


def _published_or_404(slug: str) -> Petition:
    petition = petition_published(slug)
    if petition is None:
        raise Http404("No such petition.")
    return petition


def _petition_page(request, slug: str, *, template: str, embed: bool):
    petition = _published_or_404(slug)
    if request.method == "GET" and PETITION_TOKEN_PARAMETER not in request.GET:
        return _blank_petition_page(request, petition, template=template, embed=embed)
    invited = _invitation(request, petition)
    content = petition_content(petition, get_language())
    form = SignatureForm(
        request.POST if request.method == "POST" and not invited else None,
        consent_wording=content.consent_wording,
        initial={"source": clean_source_ref(request.GET.get("source", ""))},
    )
    status = 200
    if request.method == "POST":
        if not petition.is_open:
            status = 409  # the page says it is closed; nothing is stored
        elif rate_limit_hit(ip_limit(), client_ip(request)):
            return _too_many_attempts(request, petition)
        elif invited:
            try:
                return _sign_as_invited(request, petition, invited, embed=embed)
            except SigningUnavailable:
                status = 503
        elif not form.is_valid():
            status = 400
        elif form.is_bot:
            # A bot that filled the honeypot sees the usual thank-you page and stores nothing.
            return _thanks_redirect(
                petition, embed=embed, confirm_by_email=petition.requires_confirmation
            )
        elif rate_limit_hit(email_limit(), form.cleaned_data["email"]):
            return _too_many_attempts(request, petition)
        elif not captcha_passed(request):
            form.add_error(
                None,
                gettext("Please complete the check that you are not a robot, then sign again."),
            )
            status = 400
        else:
            try:
                signature_create(
                    petition=petition,
                    signer=signature_input_from_form(form, content.consent_wording),
                    source_url=request.build_absolute_uri(),
                    ip=client_ip(request),
                    source=form.cleaned_data["source"],
                )
            except PetitionClosed:
                # Closed since this process read it: say so (a copy: the read is shared).
                petition = copy.copy(petition)
                petition.is_open = False
                status = 409
            except SigningUnavailable:
                status = 503  # the page says nothing was stored; the form keeps what was typed
            else:
                # The same answer for a new and a known email: nothing to enumerate.
                return _thanks_redirect(
                    petition, embed=embed, confirm_by_email=petition.requires_confirmation
                )
    context = _page_context(petition, content, form, invited=invited, embed=embed)
    context["unavailable"] = status == 503
    response = render(request, template, context, status=status)
    if status == 503:
        response["Retry-After"] = "10"
    return response


def _page_context(petition, content, form, *, invited, embed: bool) -> dict:
    count = petition_count(petition.pk)
    return {
        "petition": petition,
        "content": content,
        "form": form,
        "invited": invited,
        "signature_count": count,
        "goal": petition_goal(petition, count),
        "captcha": captcha_widget(),
        "embed": embed,
    }


# Stands in a cached page for the CSRF token, which is each reader's own.
CSRF_TOKEN_PLACEHOLDER = "rallycsrftokenplaceholder"  # noqa: S105 -- not a secret


def _blank_petition_page(request, petition: Petition, *, template: str, embed: bool):
    """Render the page with a blank form, the same for every reader of this address and language.

    In a surge most requests are readers arriving from one link. Each process renders the page
    once per RALLY_PETITION_CACHE_SECONDS (the count on it is as old at most; the page's script
    refreshes it) and fills in each reader's CSRF token, which also sets their cookie.
    """
    max_age = settings.RALLY_PETITION_CACHE_SECONDS
    # The full path holds the slug, the embed or not, and the query (?lang, ?source) that the
    # language links and the share ref are made of.
    address = f"{get_language()}|{request.get_full_path()}"
    key = "rally:petition-page:" + hashlib.sha256(address.encode()).hexdigest()
    page = cache.get(key) if max_age > 0 else None
    if page is None:
        content = petition_content(petition, get_language())
        form = SignatureForm(
            consent_wording=content.consent_wording,
            initial={"source": clean_source_ref(request.GET.get("source", ""))},
        )
        context = _page_context(petition, content, form, invited=None, embed=embed)
        context["csrf_token"] = CSRF_TOKEN_PLACEHOLDER  # wins over the context processor's
        page = render_to_string(template, context, request)
        if max_age > 0:
            cache.set(key, page, max_age)
    return HttpResponse(page.replace(CSRF_TOKEN_PLACEHOLDER, get_token(request)))


@dataclass(frozen=True)
class Invitation:
    """A personal link's supporter, the mailing that sent it, and the token to sign with."""

    supporter: Supporter
    mailing_id: int | None
    token: str

    # The sign form's hidden field that carries the token.
    parameter = PETITION_TOKEN_PARAMETER

    @property
    def masked_email(self) -> str:
        """The email as a hint, never in full: "a•••@example.org"."""
        local, _, domain = self.supporter.email.partition("@")
        return f"{local[:1]}•••@{domain}"


def _invitation(request, petition: Petition) -> Invitation | None:
    """Return who a personal link names, or None (no token, a tampered one, or one made for
    another petition: the form)."""
    data = request.POST if request.method == "POST" else request.GET
    token = data.get(PETITION_TOKEN_PARAMETER)
    link = read_petition_token(token) if token else None
    if link is None or not petition_link_fits(link, petition):
        return None
    # An erased supporter's old links name a row with no address left: they get the form.
    supporter = (
        Supporter.objects.filter(pk=link.supporter_id)
        .exclude(status=Supporter.Status.ERASED)
        .first()
    )
    return Invitation(supporter, link.mailing_id, token) if supporter else None


def _sign_as_invited(request, petition: Petition, invitation: Invitation, *, embed: bool):
    """One button, no typing: the personal link is proof enough of who is signing."""
    supporter = invitation.supporter
    try:
        signature_create(
            petition=petition,
            signer=SignatureInput(
                email=supporter.email,
                first_name=supporter.first_name,
                last_name=supporter.last_name,
                country=str(supporter.country or ""),
                postcode=supporter.postcode,
                language=(get_language() or "en")[:2],
            ),
            source_url=request.build_absolute_uri(),
            ip=client_ip(request),
            source="mailing" if invitation.mailing_id else "link",
            mailing_id=invitation.mailing_id,
            confirmed=True,  # they opened our email to get here
        )
    except PetitionClosed:
        return redirect(petition.get_absolute_url())
    return _thanks_redirect(petition, embed=embed, confirm_by_email=False)


@lru_cache(maxsize=1024)
def _thanks_url(slug: str, *, embed: bool) -> str:
    # reverse() is costly on the signing path (docs/performance.md); a slug's URL never changes.
    name = "campaigns:petition_embed_thanks" if embed else "campaigns:petition_thanks"
    return reverse(name, kwargs={"slug": slug})


def _thanks_redirect(petition: Petition, *, embed: bool, confirm_by_email: bool):
    # The embed form's thank-you page has an address of its own: that page may be framed,
    # the site's own thank-you page may not.
    url = _thanks_url(petition.slug, embed=embed)
    query = {"confirm": "1"} if confirm_by_email else {}
    # HttpResponseRedirect, not redirect(): that tries the URL as a view name first, and the
    # NoReverseMatch it raises and catches is most of the redirect's cost.
    return HttpResponseRedirect(f"{url}?{urlencode(query)}" if query else url)


def _too_many_attempts(request, petition: Petition):
    return render(request, "campaigns/too_many.html", {"petition": petition}, status=429)


def signature_input_from_form(form: SignatureForm, consent_wording: str) -> SignatureInput:
    data = form.cleaned_data
    return SignatureInput(
        email=data["email"],
        first_name=data["first_name"],
        last_name=data["last_name"],
        country=data["country"] or "",
        postcode=data["postcode"],
        consent=data["consent"],
        consent_wording=consent_wording,
        language=(get_language() or "en")[:2],
    )


@require_GET
def petition_thanks(request, slug: str):
    return _thanks_page(request, slug, embed=False)


@embeddable  # where the embed form lands, still in the campaigner's iframe
@require_GET
def petition_embed_thanks(request, slug: str):
    return _thanks_page(request, slug, embed=True)


def _thanks_page(request, slug: str, *, embed: bool):
    petition = _published_or_404(slug)
    # The canonical public address, whatever Host this request came in on.
    page_url = settings.SITE_URL + petition.get_absolute_url()
    content = petition_content(petition, get_language())
    context = {
        "petition": petition,
        "content": content,
        "share": _share_links(page_url, content.title),
        "share_url": f"{page_url}?source=link",
        "suggestion": petition_suggestion(petition, get_language()),
        "confirm_by_email": request.GET.get("confirm") == "1",
        "embed": embed,
        "resend_form": ResendConfirmationForm(),
    }
    return render(request, "campaigns/petition_thanks.html", context)


def _share_links(page_url: str, title: str) -> dict[str, str]:
    """Return share URLs, each carrying its channel as `source` to credit the signatures."""

    def ref(channel: str) -> str:
        return f"{page_url}?source={channel}"

    text = f"{title} — "
    return {
        "email": "mailto:?" + urlencode({"subject": title, "body": text + ref("email")}),
        "whatsapp": "https://wa.me/?" + urlencode({"text": text + ref("whatsapp")}),
        "telegram": "https://t.me/share/url?" + urlencode({"url": ref("telegram"), "text": title}),
        "x": "https://x.com/intent/post?" + urlencode({"url": ref("x"), "text": title}),
        "facebook": "https://www.facebook.com/sharer/sharer.php?"
        + urlencode({"u": ref("facebook")}),
    }


@require_POST
def petition_resend_confirmation(request, slug: str):
    """Send the confirmation email again; the same answer whether or not the email signed."""
    return _resend_confirmation(request, slug, embed=False)


@embeddable  # the embed form's thank-you page posts here, in the campaigner's iframe
@require_POST
def petition_embed_resend_confirmation(request, slug: str):
    return _resend_confirmation(request, slug, embed=True)


def _resend_confirmation(request, slug: str, *, embed: bool):
    petition = get_object_or_404(Petition, slug=slug)
    form = ResendConfirmationForm(request.POST)
    if rate_limit_hit(ip_limit(), client_ip(request)):
        return _too_many_attempts(request, petition)
    if form.is_valid():
        email = form.cleaned_data["email"]
        if rate_limit_hit(email_limit(), email):
            return _too_many_attempts(request, petition)
        signature_confirmation_resend(petition=petition, email=email)
        return render(request, "campaigns/resend_done.html", {"petition": petition, "embed": embed})
    context = {
        "petition": petition,
        "content": petition_content(petition, get_language()),
        "resend_form": form,
        "confirm_by_email": True,
        "embed": embed,
    }
    return render(request, "campaigns/petition_thanks.html", context, status=400)


@require_http_methods(["GET", "POST"])
def petition_confirm(request, slug: str, token: str):
    """Confirm a signature from the emailed link: GET shows a button (link scanners GET), POST
    confirms. Clicking twice is harmless."""
    petition = get_object_or_404(Petition, slug=slug)
    signature_id = read_confirmation_token(token)
    if signature_id is None:
        return render(request, "campaigns/confirm_invalid.html", {"petition": petition}, status=400)
    if request.method == "POST":
        signature = signature_confirm(signature_id=signature_id, petition_id=petition.pk)
        if signature is None:
            return render(
                request, "campaigns/confirm_invalid.html", {"petition": petition}, status=400
            )
        return redirect("campaigns:petition_thanks", slug=petition.slug)
    return render(request, "campaigns/confirm.html", {"petition": petition, "token": token})


@require_GET
def petition_count_json(request, slug: str):
    """The live count and goal, for the page's thermometer and other sites' widgets."""
    petition = _published_or_404(slug)
    count = petition_count(petition.pk)
    response = JsonResponse(
        {"count": count, "goal": petition_goal(petition, count), "open": petition.is_open}
    )
    # A few seconds of caching lets a CDN or browser absorb a surge of readers.
    patch_cache_control(response, public=True, max_age=10, stale_while_revalidate=30)
    response["Access-Control-Allow-Origin"] = "*"
    return response
