"""A WebSocket API's function, as AWS's WebSocket examples write one: it answers `$connect`
(403 when the query says `deny`), echoes each message's event back as the body (a two-way
route sends it to the client), and keeps each CONNECT and DISCONNECT event in
$EVENTS_DIR/<eventType>-<connectionId>.json for the tests to read."""

import json
import os


def handler(event, context):
    ctx = event["requestContext"]
    kind = ctx["eventType"]
    if kind in ("CONNECT", "DISCONNECT"):
        path = os.path.join(os.environ["EVENTS_DIR"], f"{kind}-{ctx['connectionId']}.json")
        with open(path, "w") as f:
            json.dump(event, f)
    if kind == "CONNECT" and (event.get("queryStringParameters") or {}).get("deny"):
        return {"statusCode": 403, "body": "denied"}
    if kind == "MESSAGE":
        return {"statusCode": 200, "body": json.dumps({"event": event})}
    return {"statusCode": 200}
