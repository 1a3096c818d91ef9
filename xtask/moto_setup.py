"""Makes the IAM identity keyhold's end-to-end tests use, in a freshly started moto_server.

Run by xtask inside the window of unauthenticated calls (INITIAL_NO_AUTH_ACTION_COUNT): it
makes exactly CALLS requests, after which moto verifies every signature and IAM policy.
Usage: moto_setup.py ENDPOINT OUT.json WINDOW. Writes the identity as JSON (mode 0600).
"""

import json
import os
import sys

import boto3

CALLS = 5
ACCOUNT = "123456789012"  # moto's default account
USER = "keyhold-test"
ROLE = "keyhold-test-role"

ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)
# moto matches a trust policy's principal against the caller's ARN exactly (the account root
# does not stand for its users as it does on AWS), so the user is named too.
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {
                    "AWS": [f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:user/{USER}"]
                },
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            }
        ],
    }
)


def main(endpoint: str, out: str, window: int) -> None:
    if window != CALLS:
        sys.exit(f"moto_setup.py makes {CALLS} calls but the no-auth window is {window}")
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="setup",
        aws_secret_access_key="setup-window-is-unauthenticated",
    )
    user = iam.create_user(UserName=USER)["User"]  # 1
    iam.put_user_policy(UserName=USER, PolicyName="all", PolicyDocument=ALLOW_ALL)  # 2
    key = iam.create_access_key(UserName=USER)["AccessKey"]  # 3
    role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=TRUST)["Role"]  # 4
    iam.put_role_policy(RoleName=ROLE, PolicyName="all", PolicyDocument=ALLOW_ALL)  # 5
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(
            {
                "account": ACCOUNT,
                "user_arn": user["Arn"],
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
                "role_arn": role["Arn"],
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
