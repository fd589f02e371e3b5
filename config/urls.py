from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from operations.views import healthz

admin.site.site_header = "Rally"
admin.site.site_title = "Rally admin"
admin.site.index_title = "Campaigns, supporters and mailings"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="campaigns:petition_list", permanent=False)),
    path("admin/", admin.site.urls),
    # For load balancers and monitors; with or without the slash, never redirected.
    re_path(r"^healthz/?$", healthz, name="healthz"),
    # ESP webhooks, one per ESP: /anymail/<esp>/tracking/ and …/inbound/ (anymail's views,
    # each taken in by mailings/feedback/intake.py).
    path("anymail/", include("mailings.feedback.urls")),
    path("petitions/", include("campaigns.urls")),
    # The OSDI API, in Action Network's dialect: /api/osdi/v1/ (api/urls.py).
    path("api/osdi/", include("api.urls")),
    # Tracked links and the open pixel of bulk messages: /r/<token>/, /o/<token>.gif.
    path("", include("mailings.urls")),
    path("", include("supporters.urls")),
]
