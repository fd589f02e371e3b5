from django.urls import path

from mailings.links import views

app_name = "mailings"

# Short paths: they stand in for every link of every bulk message.
urlpatterns = [
    path("r/<str:token>/", views.tracked_link_redirect, name="click"),
    path("o/<str:token>.gif", views.open_pixel, name="open"),
]
