"""A WebSocket API's function, as AWS's WebSocket examples write one: it answers `$connect`
(403 when the query says `deny`; with the query's `subprotocol` as its
`Sec-WebSocket-Protocol` header when it names one the client offered, as AWS's subprotocol
example does), echoes each message's event back as the body (a two-way
route sends it to the client), and keeps each CONNECT and DISCONNECT event in
$EVENTS_DIR/<eventType>-<connectionId>.json for the tests to read."""

import json
import os


def handler(event, context):
    ctx = event["requestContext"]
    kind = ctx["eventType"]
    if kind in ("CONNECT", "DISCONNECT"):
        path = os.path.join(os.environ["EVENTS_DIR"], f"{kind}-{ctx['connectionId']}.json")
        # Written aside and renamed: a test waiting for the file never reads half of it.
        with open(path + ".tmp", "w") as f:
            json.dump(event, f)
        os.replace(path + ".tmp", path)
    query = event.get("queryStringParameters") or {}
    if kind == "CONNECT" and query.get("deny"):
        return {"statusCode": 403, "body": "denied"}
    if kind == "CONNECT" and query.get("subprotocol"):
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        if query["subprotocol"] not in offered:
            return {"statusCode": 400}
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": query["subprotocol"]}}
    if kind == "MESSAGE":
        return {"statusCode": 200, "body": json.dumps({"event": event})}
    return {"statusCode": 200}
