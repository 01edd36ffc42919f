"""How long a request's URL may be, said once for gunicorn (devstack, README) and for Django (the middleware).

gunicorn refuses a request line longer than ``--limit-request-line`` with its own HTML 414 page, outside the API's
error shape; its default (4094) let the fuzzer's long query strings meet that page. gunicorn is therefore run at
its maximum, and Django refuses a URL longer than :data:`MAX_URL_LENGTH` first, in the error shape
(``URL_TOO_LONG``): the room left between the two holds the method and the protocol of the request line. Only a
line past gunicorn's maximum still gets gunicorn's page. No Django import here: devstack reads it before Django
is set up.
"""

GUNICORN_LIMIT_REQUEST_LINE = 8190  # gunicorn's maximum
MAX_URL_LENGTH = 8000  # path and query string; "OPTIONS " + URL + " HTTP/1.1" stays within gunicorn's limit
