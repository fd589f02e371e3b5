"""anymail's webhook URLs (/anymail/<esp>/tracking/ and …/inbound/), each view wrapped in the
intake (mailings/feedback/intake.py), with Rally's own SES tracking view in anymail's place.
"""

from anymail import urls as anymail_urls
from django.urls import URLPattern, path

from mailings.feedback.amazon_ses import AmazonSESTrackingWebhookView
from mailings.feedback.intake import webhook_post_receive

app_name = anymail_urls.app_name

urlpatterns = [
    # anymail's SES tracking view, made to work without boto3 (amazon_ses.py); first, so that
    # it answers in place of anymail's own at the same path and name.
    path(
        "amazon_ses/tracking/",
        webhook_post_receive(AmazonSESTrackingWebhookView.as_view()),
        name="amazon_ses_tracking_webhook",
    ),
    *(
        URLPattern(
            pattern.pattern,
            webhook_post_receive(pattern.callback),
            pattern.default_args,
            pattern.name,
        )
        for pattern in anymail_urls.urlpatterns
    ),
]
