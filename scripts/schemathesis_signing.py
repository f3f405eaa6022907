"""schemathesis hook for scripts/schemathesis: signs requests to the push API (/api/v1/...) the
Standard Webhooks way with INVITE_BOT_PUSH_SECRET, so generated batches reach the row checks.

A case whose signature headers schemathesis left out or made malformed is sent as generated: that
is what the case tests (the answer must then be 401).
"""

import base64
import hashlib
import hmac
import json
import os
import time
import uuid

import schemathesis
from schemathesis.core import NotSet

KEY = base64.b64decode(os.environ["INVITE_BOT_PUSH_SECRET"].removeprefix("whsec_"))
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@schemathesis.hook
def before_call(context, case, kwargs):
    if not case.path.startswith("/api/v1/") or isinstance(case.body, NotSet):
        return
    headers = case.headers or {}
    if any(name not in headers for name in HEADERS):
        return
    try:
        int(headers["webhook-timestamp"])
    except (TypeError, ValueError):
        return
    try:
        body = json.dumps(case.body).encode()
    except (TypeError, ValueError):
        return  # not JSON (raw bytes): sent as generated
    message_id = f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(time.time()))
    mac = hmac.new(KEY, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    headers["webhook-id"] = message_id
    headers["webhook-timestamp"] = timestamp
    headers["webhook-signature"] = "v1," + base64.b64encode(mac.digest()).decode()
    case.headers = headers
    # The exact bytes that were signed go on the wire.
    kwargs["data"] = body
