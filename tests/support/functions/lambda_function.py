# The user's tutorial handler, unchanged (indentation restored).
import json
def handler(event, context):
    method = event['requestContext']['http']['method']
    path = event['requestContext']['http']['path']
    if method == 'GET' and path == '/users':
        return {
            'statusCode': 200,
            'body': json.dumps([
                {'id': 1, 'name': 'Alice'},
                {'id': 2, 'name': 'Bob'}
            ])
        }
    return {'statusCode': 404, 'body': json.dumps({'error': 'Not found'})}
