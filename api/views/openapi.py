"""The OpenAPI description, served beside the API: public, as documentation is."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from api.hal import error_response, request_base_url
from api.openapi import openapi_document


@csrf_exempt
def openapi_view(request):
    if request.method not in ("GET", "HEAD"):
        return error_response(
            405, f"{request.method} is not allowed here", headers={"Allow": "GET, HEAD"}
        )
    return JsonResponse(openapi_document(base_url=request_base_url(request)))
