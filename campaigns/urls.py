from django.urls import path

from . import views

app_name = "campaigns"

urlpatterns = [
    path("", views.petition_list, name="petition_list"),
    path("<slug:slug>/", views.petition_detail, name="petition_detail"),
    path("<slug:slug>/thanks/", views.petition_thanks, name="petition_thanks"),
]
