from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from mailings.tracking.amazon_ses import AmazonSESTrackingWebhookView

admin.site.site_header = "Rally"
admin.site.site_title = "Rally admin"
admin.site.index_title = "Campaigns, supporters and mailings"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="campaigns:petition_list", permanent=False)),
    path("admin/", admin.site.urls),
    # anymail's SES tracking view, made to work without boto3 (mailings/tracking/amazon_ses.py).
    path(
        "anymail/amazon_ses/tracking/",
        AmazonSESTrackingWebhookView.as_view(),
        name="amazon_ses_tracking_webhook",
    ),
    # anymail's own webhook views, one per ESP: /anymail/<esp>/tracking/ and …/inbound/.
    path("anymail/", include("anymail.urls")),
    path("petitions/", include("campaigns.urls")),
    path("", include("supporters.urls")),
]
