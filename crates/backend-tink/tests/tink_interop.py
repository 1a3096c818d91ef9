"""Python Tink's side of keyhold's keyset compatibility tests (driven by e2e_python_tink.rs).

Uses PyPI `tink` with its own AWS KMS integration (`tink.integration.awskms.AwsKmsClient`,
which makes a boto3 client from the standard environment: the test passes the moto endpoint
as AWS_ENDPOINT_URL_KMS and the credentials as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).

  create KEY_URI AD_HEX   stdin: a secret access key. stdout: an encrypted JSON keyset whose
                          one key is HMAC-SHA256 (32-byte tag, RAW) over "AWS4" + secret.
  mac KEY_URI AD_HEX MSG  stdin: an encrypted JSON keyset. stdout: hex of its MAC over MSG.
"""

import sys

import tink
from tink import mac
from tink import secret_key_access
from tink.integration import awskms
from tink.proto import common_pb2, hmac_pb2, tink_pb2

HMAC_TYPE_URL = "type.googleapis.com/google.crypto.tink.HmacKey"
KEY_ID = 1234567890


def kms_aead(key_uri):
    return awskms.AwsKmsClient(key_uri, None).get_aead(key_uri)


def create(key_uri, associated_data):
    secret = sys.stdin.buffer.read().strip()
    hmac_key = hmac_pb2.HmacKey(
        version=0,
        params=hmac_pb2.HmacParams(hash=common_pb2.SHA256, tag_size=32),
        key_value=b"AWS4" + secret,
    )
    keyset = tink_pb2.Keyset(primary_key_id=KEY_ID)
    key = keyset.key.add()
    key.key_data.type_url = HMAC_TYPE_URL
    key.key_data.value = hmac_key.SerializeToString()
    key.key_data.key_material_type = tink_pb2.KeyData.SYMMETRIC
    key.status = tink_pb2.ENABLED
    key.key_id = KEY_ID
    key.output_prefix_type = tink_pb2.RAW
    handle = tink.proto_keyset_format.parse(
        keyset.SerializeToString(), secret_key_access.TOKEN
    )
    sys.stdout.write(
        tink.json_proto_keyset_format.serialize_encrypted(
            handle, kms_aead(key_uri), associated_data
        )
    )


def compute_mac(key_uri, associated_data, message):
    handle = tink.json_proto_keyset_format.parse_encrypted(
        sys.stdin.read(), kms_aead(key_uri), associated_data
    )
    primitive = handle.primitive(mac.Mac)
    sys.stdout.write(primitive.compute_mac(message.encode()).hex())


def main(argv):
    mac.register()
    command, key_uri, associated_data = argv[1], argv[2], bytes.fromhex(argv[3])
    if command == "create":
        create(key_uri, associated_data)
    elif command == "mac":
        compute_mac(key_uri, associated_data, argv[4])
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv)
