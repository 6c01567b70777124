"""An access token of the sample user in the provisioned user pool (moto's Cognito), for the
sync API's sample events: made as an operator makes users (the pool takes no self sign-up),
then signed in with USER_PASSWORD_AUTH like the notes client.

    python scripts/sample_token.py --endpoint http://127.0.0.1:5000 --pool-id ID --client-id ID

Prints the access token. Never prints the password, which is made up here and not kept.
"""
import argparse
import secrets

import boto3

USERNAME = "sample-user"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--pool-id", required=True)
    p.add_argument("--client-id", required=True)
    args = p.parse_args()
    cognito = boto3.client("cognito-idp", endpoint_url=args.endpoint, region_name="us-east-1")
    password = "Sample-" + secrets.token_urlsafe(16) + "-1a"
    try:
        cognito.admin_create_user(UserPoolId=args.pool_id, Username=USERNAME)
    except cognito.exceptions.UsernameExistsException:
        pass
    cognito.admin_set_user_password(UserPoolId=args.pool_id, Username=USERNAME, Password=password, Permanent=True)
    auth = cognito.initiate_auth(ClientId=args.client_id, AuthFlow="USER_PASSWORD_AUTH",
                                 AuthParameters={"USERNAME": USERNAME, "PASSWORD": password})
    print(auth["AuthenticationResult"]["AccessToken"])


if __name__ == "__main__":
    main()
