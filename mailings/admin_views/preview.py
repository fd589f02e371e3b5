"""Preview a mailing as a real supporter, and send test copies of it to campaigners.

Seeing a mailing as a real supporter gets it shows their name, address and personal links, so
it takes `mailings.preview_as_supporter` and the right to see supporters at all; anyone else
who may view mailings sees them rendered as a made-up sample supporter.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template import Context
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode

from mailings.content.rendering import (
    SAMPLE_SUPPORTER,
    build_message,
    compile_merge_template,
    compiled_mailing,
    sample_merge_fields,
    supporter_merge_fields,
)
from mailings.models import Mailing
from mailings.selectors import mailing_audience_sample
from mailings.sending.ab_assignment import ab_labels
from mailings.sending.test_send import (
    TEST_SEND_MAX_ADDRESSES,
    MailingTestSendRefused,
    mailing_test_send,
)
from supporters.models import Language, Supporter


def may_preview_as_supporter(user) -> bool:
    """Say whether `user` may see a mailing as a real supporter gets it, and test-send it so."""
    return user.has_perms(["mailings.preview_as_supporter", "supporters.view_supporter"])


def mailing_preview_view(request, mailing_id: int, *, model_admin):
    """Show the subject, preheader, HTML (sandboxed) and text exactly as a supporter gets them.

    The rendered HTML and text are marked safe by the template engine: the page escapes them
    (force_escape), so a campaigner's markup can never run in the admin's own origin.

    `?supporter=<id>` or `?email=<address>` chooses the supporter; otherwise a random member of
    the audience. The links carry that supporter's real personal tokens. Without the right to
    preview as a supporter, it is the sample supporter, and choosing one is refused.
    """
    mailing = get_object_or_404(Mailing.objects.select_related("petition"), pk=mailing_id)
    if not model_admin.has_view_or_change_permission(request, mailing):
        raise PermissionDenied
    as_supporter = may_preview_as_supporter(request.user)
    if not as_supporter and (request.GET.get("supporter") or request.GET.get("email")):
        raise PermissionDenied
    language = request.GET.get("language", "")
    problems = []
    if language and language not in Language.values:
        problems.append(f"There is no “{language}” version; choose one of the languages below.")
        language = ""
    variants = ab_labels(mailing) if mailing.ab_test_share else []
    variant = request.GET.get("variant", "")
    if variant and variant not in variants:
        problems.append(f"There is no variant “{variant[:8]}”; this is the mailing as written.")
        variant = ""
    supporter, problem = _chosen_supporter(mailing, request.GET) if as_supporter else (None, "")
    if problem:
        problems.append(problem)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "mailing": mailing,
        "title": f"Preview of “{mailing}”",
        "supporter": supporter,
        "may_preview_as_supporter": as_supporter,
        "sample": SAMPLE_SUPPORTER,
        "email_query": request.GET.get("email", ""),
        "language": language,
        "languages": Language.choices,
        "variants": variants,
        "variant": variant,
        "problems": problems,
        "can_test_send": request.user.has_perm("mailings.test_send_mailing"),
        "test_send_max": TEST_SEND_MAX_ADDRESSES,
    }
    if supporter is not None or not as_supporter:
        compiled = compiled_mailing(mailing)
        # The version asked for, else the one the send queue would give this supporter.
        version = compiled.version_for(language or (supporter.language if supporter else ""))
        if language and version != language:
            problems.append(f"There is no “{language}” version: this is the default content.")
        if supporter is not None:
            fields = supporter_merge_fields(compiled, supporter)
        else:
            fields = sample_merge_fields(compiled, language=version)
        message = build_message(
            compiled=compiled, fields=fields, delivery_id=0, version=version, variant=variant
        )
        content = mailing.versions.filter(language=version).first() if version else mailing
        changed = mailing.variants.filter(label=variant, language=version).first()
        # Inboxes show the preheader as text after the subject: rendered here on its own.
        preheader_source = changed.preheader if changed and changed.preheader else content.preheader
        preheader = compile_merge_template(preheader_source, html=False)
        context.update(
            shown=True,
            subject=message.subject,
            preheader=preheader.render(Context(fields, autoescape=False)).strip(),
            html=message.alternatives[0][0],
            text=message.body,
            from_header=message.from_email,
            version_name=dict(Language.choices)[version] if version else "default",
        )
    status = 400 if problems and supporter is None else 200
    return TemplateResponse(request, "admin/mailings/mailing/preview.html", context, status=status)


def mailing_test_send_view(request, mailing_id: int, *, model_admin):
    """Queue [TEST] copies to the addresses given, rendered as the chosen supporter."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    mailing = get_object_or_404(Mailing, pk=mailing_id)
    if not request.user.has_perm("mailings.test_send_mailing"):
        raise PermissionDenied
    back = reverse("admin:mailings_mailing_preview", args=[mailing.pk])
    supporter = None  # the sample supporter
    if may_preview_as_supporter(request.user):
        supporter, problem = _chosen_supporter(mailing, request.POST)
        if supporter is None:
            model_admin.message_user(request, problem, messages.ERROR)
            return HttpResponseRedirect(back)
        back += "?" + urlencode({"supporter": supporter.pk})
    elif request.POST.get("supporter") or request.POST.get("email"):
        raise PermissionDenied
    try:
        sent_to = mailing_test_send(
            mailing=mailing,
            addresses=request.POST.get("addresses", ""),
            supporter=supporter,
            actor=request.user,
        )
    except MailingTestSendRefused as refused:
        model_admin.message_user(request, f"No test copy was sent. {refused}", messages.ERROR)
    else:
        as_whom = supporter.email if supporter else "the made-up sample supporter"
        model_admin.message_user(
            request,
            f"A [TEST] copy, rendered as {as_whom}, is on its way to {', '.join(sent_to)}.",
            messages.SUCCESS,
        )
    return HttpResponseRedirect(back)


def _chosen_supporter(mailing: Mailing, params) -> tuple[Supporter | None, str]:
    """Return the supporter the parameters name, or a random audience member; or why not."""
    if params.get("supporter"):
        supporter_id = params["supporter"]
        supporter = (
            Supporter.objects.filter(pk=supporter_id).first() if supporter_id.isdigit() else None
        )
        return (supporter, "") if supporter else (None, f"No supporter #{supporter_id}.")
    if params.get("email"):
        email = params["email"].strip()
        supporter = Supporter.objects.filter(email=email).first()
        return (supporter, "") if supporter else (None, f"No supporter has the address {email}.")
    supporter = mailing_audience_sample(mailing)
    if supporter is None:
        return None, "Nobody is in this mailing's audience yet: choose a supporter by email."
    return supporter, ""
