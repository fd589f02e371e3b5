"""anymail's Amazon SES tracking webhook, without boto3 unless SNS subscriptions need it.

anymail needs boto3 for one thing on this path, confirming an SNS subscription by calling
AWS; but its view reads boto3's settings when it is built, so without boto3 installed every
SES notification failed with a 500. This view is anymail's, built without them when boto3 is
missing: notifications are parsed by anymail as usual, and a SubscriptionConfirmation is
logged with what to confirm by hand in the SNS console (or install boto3, anymail's
"amazon-ses" extra, and anymail confirms it). Mounted at anymail's own URL in config/urls.py.
"""

import logging

from anymail.exceptions import AnymailImproperlyInstalled
from anymail.webhooks.amazon_ses import (
    AmazonSESBaseWebhookView,
)
from anymail.webhooks.amazon_ses import (
    AmazonSESTrackingWebhookView as AnymailAmazonSESTrackingWebhookView,
)

logger = logging.getLogger(__name__)


class AmazonSESTrackingWebhookView(AnymailAmazonSESTrackingWebhookView):
    boto3_installed = True

    def __init__(self, **kwargs):
        try:
            super().__init__(**kwargs)
        except AnymailImproperlyInstalled:
            # anymail's SES base set auto_confirm_enabled, then failed on boto3's settings:
            # go on with the rest of the chain (basic auth) without them.
            self.boto3_installed = False
            self.session_params, self.client_params = {}, {}
            super(AmazonSESBaseWebhookView, self).__init__(**kwargs)

    def auto_confirm_sns_subscription(self, sns_message):
        if self.boto3_installed or not self.auto_confirm_enabled:
            return super().auto_confirm_sns_subscription(sns_message)
        logger.error(
            "Amazon SNS asks to confirm a subscription of topic %s to the SES tracking "
            "webhook; without boto3 Rally cannot confirm it: confirm it in the SNS console.",
            sns_message.get("TopicArn"),
        )
        return None
