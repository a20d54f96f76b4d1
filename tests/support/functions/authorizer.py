# The user's tutorial authorizer (indentation restored), with a validate_token of our own.
def validate_token(token):
    return token == "Bearer secret-token"


def handler(event, context):
    token = event['headers'].get('authorization', '')
    if validate_token(token):
        return {
            'isAuthorized': True,
            'context': {'userId': 'user_123', 'role': 'admin'}
        }
    return {'isAuthorized': False}
