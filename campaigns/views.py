from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.views.decorators.http import require_http_methods

from .forms import SignatureForm
from .models import Petition
from .selectors import petition_list_open, petition_signature_count
from .services import PetitionClosed, SignatureInput, signature_create


def petition_list(request):
    return render(request, "campaigns/petition_list.html", {"petitions": petition_list_open()})


@require_http_methods(["GET", "POST"])
def petition_detail(request, slug: str):
    """Show a petition; on POST, sign it and redirect to the thank-you page."""
    petition = get_object_or_404(Petition, slug=slug)
    form = SignatureForm(request.POST or None, consent_wording=petition.consent_wording)
    status = 200
    if request.method == "POST":
        if not petition.is_open:
            # The template says the petition is closed; nothing is stored.
            status = 409
        elif not form.is_valid():
            status = 400
        elif form.is_bot:
            # A bot that filled the honeypot sees the usual thank-you page and stores nothing.
            return redirect("campaigns:petition_thanks", slug=petition.slug)
        else:
            try:
                signature_create(
                    petition=petition,
                    signer=signature_input_from_form(form),
                    source_url=request.build_absolute_uri(),
                    ip=request.META.get("REMOTE_ADDR"),
                )
            except PetitionClosed:
                # Closed between loading the page and signing it.
                petition.is_open = False
                status = 409
            else:
                # Same response for a new and a known email: nothing to enumerate.
                return redirect("campaigns:petition_thanks", slug=petition.slug)
    context = {
        "petition": petition,
        "form": form,
        "signature_count": petition_signature_count(petition),
    }
    return render(request, "campaigns/petition_detail.html", context, status=status)


def signature_input_from_form(form: SignatureForm) -> SignatureInput:
    data = form.cleaned_data
    return SignatureInput(
        email=data["email"],
        first_name=data["first_name"],
        last_name=data["last_name"],
        country=data["country"] or "",
        postcode=data["postcode"],
        consent=data["consent"],
        language=(get_language() or "en")[:2],
    )


def petition_thanks(request, slug: str):
    petition = get_object_or_404(Petition, slug=slug)
    return render(request, "campaigns/petition_thanks.html", {"petition": petition})
