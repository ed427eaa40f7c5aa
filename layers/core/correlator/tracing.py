"""What a function's Powertools ``Tracer`` patches: the libraries Correlator's functions call through.

``Tracer()`` alone patches every library the X-Ray SDK supports that is installed (``patch_all``), and
imports each one to patch it: sqlite3 in every artifact, and wherever more is installed (a development
environment: requests, httpx...) that too, ~150 ms of a cold start on the bench machine. AWS calls go
through botocore; other HTTP through http.client (urllib3: the relay, user scripts) or requests (the
Twilio and Apprise clients). The traces are the same: nothing calls through the libraries left out.
"""

from __future__ import annotations

PATCH_MODULES = ("botocore", "httplib")
PATCH_MODULES_WITH_REQUESTS = (*PATCH_MODULES, "requests")
