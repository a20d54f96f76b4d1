"""The benchmark's function: the least a Lambda handler behind an HTTP API can do."""


def handler(event, context):
    return {"statusCode": 200, "body": "ok"}
