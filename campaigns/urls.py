from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("", views.petition_list, name="petition_list"),
    path("<slug:slug>/", views.petition_detail, name="petition_detail"),
    path("<slug:slug>/thanks/", views.petition_thanks, name="petition_thanks"),
    path("<slug:slug>/confirm/<str:token>/", views.petition_confirm, name="petition_confirm"),
    path(
        "<slug:slug>/confirm-again/",
        views.petition_resend_confirmation,
        name="petition_resend_confirmation",
    ),
    path("<slug:slug>/count.json", views.petition_count_json, name="petition_count"),
    # The embed form and the pages it leads to: the only pages other sites may frame.
    path("<slug:slug>/embed/", views.petition_embed, name="petition_embed"),
    path("<slug:slug>/embed/thanks/", views.petition_embed_thanks, name="petition_embed_thanks"),
    path(
        "<slug:slug>/embed/confirm-again/",
        views.petition_embed_resend_confirmation,
        name="petition_embed_resend_confirmation",
    ),
]
