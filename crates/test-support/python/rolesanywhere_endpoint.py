"""A local IAM Roles Anywhere endpoint that verifies everything it receives, for keyhold's tests.

No Roles Anywhere service runs on the test machine, so this one follows the documented protocol
(AWS, "IAM Roles Anywhere: signing process" and the CreateSession API) and checks each request
the way the service must, with code written apart from keyhold's (Python's `cryptography`):

- the three ARNs (query parameters) are the configured ones;
- `X-Amz-X509` parses, and with `X-Amz-X509-Chain` chains to the trust anchor: each signature,
  each validity period, CA basic constraints, the leaf's key usage (digitalSignature);
- `Authorization` names the algorithm of the leaf's key, the leaf's serial in decimal, the
  date of `X-Amz-Date`, the configured region and `rolesanywhere`; `X-Amz-Date` is within five
  minutes of now; the signed headers include content-type, host, x-amz-date, x-amz-x509;
- the canonical request and string to sign are rebuilt from the bytes received and the
  signature verified with the leaf's public key (RSA PKCS#1 v1.5 or ECDSA, SHA-256);
- the body's `durationSeconds` is 900 to 43200, `roleSessionName` (if any) well-formed.

Only then does it answer 201, with credentials for the role minted by a real STS (moto's
AssumeRole, signed with the test IAM user's key). A refusal is 403 `AccessDeniedException`
(400 `ValidationException` for a bad body) whose `message` is the reason.

Usage:
  rolesanywhere_endpoint.py serve --anchor CA.pem --trust-anchor-arn A --profile-arn P
      --role-arn R --region REGION --sts URL|static [--fail-first N] [--throttle-first N]
      [--redirect-to URL] [--tls-cert C --tls-key K]
      (the STS key in KEYHOLD_TEST_AWS_ACCESS_KEY_ID / KEYHOLD_TEST_AWS_SECRET_ACCESS_KEY;
      prints the port (and the https port with --tls-cert), then serves on 127.0.0.1 until
      killed; --sts static answers fixed credentials, for benchmarks of the clients only;
      --fail-first N answers the first N verified requests 503, --throttle-first N answers them
      429 ThrottlingException; --redirect-to URL answers every request 307 to URL + its path)
  rolesanywhere_endpoint.py pki --dir D --key rsa2048|rsa3072|rsa4096|p256|p384 [--intermediate]
      [--expired | --not-yet-valid] [--high-bit-serial] [--key-format pkcs8|sec1|pkcs1|encrypted]
      [--public-key PUB.pem | --ec-point HEX | --csr REQ.pem] [--ca-dir OTHER]
      (writes ca.pem/ca.key, intermediate.pem, leaf.pem, leaf.der, leaf.key, full-chain.pem;
      with --public-key (PEM or DER), certifies that key instead of making one; with --ca-dir, reuses its CA)
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

MAX_SKEW = datetime.timedelta(minutes=5)
REQUIRED_SIGNED = {"content-type", "host", "x-amz-date", "x-amz-x509"}
AUTH = re.compile(
    r"^(AWS4-X509-(?:RSA|ECDSA)-SHA256) Credential=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]+)$"
)


class Refused(Exception):
    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def deny(message):
    raise Refused(403, "AccessDeniedException", message)


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def uri_encode(text, keep_slash=False):
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(text, safe=safe)


def canonical_request(method, raw_path, headers, signed, body):
    path, _, query = raw_path.partition("?")
    pairs = []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        pairs.append((uri_encode(urllib.parse.unquote_plus(key)), uri_encode(urllib.parse.unquote_plus(value))))
    canonical_query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    lines = []
    for name in signed:
        values = headers.get_all(name) or []
        if not values:
            deny(f"signed header {name} was not sent")
        joined = ",".join(" ".join(v.strip().split()) for v in values)
        lines.append(f"{name}:{joined}\n")
    canonical_uri = uri_encode(urllib.parse.unquote(path), keep_slash=True)
    return "\n".join(
        [method, canonical_uri, canonical_query, "".join(lines), ";".join(signed), hashlib.sha256(body).hexdigest()]
    )


def check_chain(leaf, intermediates, anchor, at):
    chain = [leaf] + intermediates
    for cert in chain + [anchor]:
        if at < cert.not_valid_before_utc:
            deny(f"certificate {cert.subject.rfc4514_string()} is not yet valid")
        if at > cert.not_valid_after_utc:
            deny(f"certificate {cert.subject.rfc4514_string()} has expired")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            deny("the signing certificate's key usage lacks digitalSignature")
    except x509.ExtensionNotFound:
        pass
    issuers = intermediates + [anchor]
    for child, issuer in zip(chain, issuers):
        try:
            constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            deny(f"{issuer.subject.rfc4514_string()} is not a CA")
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            deny("Untrusted signing certificate")


def verify(handler, config):
    method, raw_path, headers = handler.command, handler.path, handler.headers
    length = int(headers.get("content-length") or 0)
    body = handler.rfile.read(length)
    path, _, query = raw_path.partition("?")
    if method != "POST" or path != "/sessions":
        raise Refused(404, "ResourceNotFoundException", f"no such operation {method} {path}")
    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    # The ARNs come as query parameters (the AWS helper, keyhold) or in the JSON body
    # (iam-rolesanywhere-session); the service takes both.
    try:
        in_body = json.loads(body) if body else {}
    except ValueError:
        in_body = {}
    for name in ("profileArn", "roleArn", "trustAnchorArn"):
        if name not in params and isinstance(in_body, dict) and name in in_body:
            params[name] = in_body[name]
        if params.get(name) != config[name]:
            raise Refused(403, "AccessDeniedException", f"{name} {params.get(name)!r} is not the configured one")

    auth = AUTH.match(headers.get("authorization") or "")
    if not auth:
        deny("missing or malformed Authorization header")
    algorithm, credential, signed_names, signature_hex = auth.groups()
    signed = signed_names.split(";")
    if signed != sorted(signed) or not REQUIRED_SIGNED.issubset(signed):
        deny(f"SignedHeaders {signed_names} must be sorted and include {sorted(REQUIRED_SIGNED)}")

    try:
        leaf = x509.load_der_x509_certificate(base64.b64decode(headers.get("x-amz-x509") or "", validate=True))
        chain_header = headers.get("x-amz-x509-chain")
        intermediates = [
            x509.load_der_x509_certificate(base64.b64decode(part, validate=True))
            for part in (chain_header.split(",") if chain_header else [])
        ]
    except ValueError:
        deny("X-Amz-X509 or X-Amz-X509-Chain is not base64 DER certificates")
    check_chain(leaf, intermediates, config["anchor"], now())

    key = leaf.public_key()
    expected_algorithm = "AWS4-X509-RSA-SHA256" if isinstance(key, rsa.RSAPublicKey) else "AWS4-X509-ECDSA-SHA256"
    if algorithm != expected_algorithm:
        deny(f"algorithm {algorithm} does not fit the certificate's key ({expected_algorithm})")
    amz_date = headers.get("x-amz-date") or ""
    try:
        signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        deny(f"X-Amz-Date {amz_date!r} is not yyyymmddThhmmssZ")
    if abs(now() - signed_at) > MAX_SKEW:
        deny(f"X-Amz-Date {amz_date} is more than 5 minutes from the server's time (signature expired)")
    serial, _, scope = credential.partition("/")
    if serial != str(leaf.serial_number):
        deny(f"Credential serial {serial} is not the certificate's serial {leaf.serial_number} in decimal")
    expected_scope = f"{amz_date[:8]}/{config['region']}/rolesanywhere/aws4_request"
    if scope != expected_scope:
        deny(f"Credential scope {scope} is not {expected_scope}")

    creq = canonical_request(method, raw_path, headers, signed, body)
    string_to_sign = "\n".join([algorithm, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    try:
        signature = bytes.fromhex(signature_hex)
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, string_to_sign.encode(), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        deny("Signature does not match: the request was not signed by the certificate's key, or was changed")

    try:
        document = json.loads(body)
        duration = document["durationSeconds"]
    except (ValueError, KeyError, TypeError):
        raise Refused(400, "ValidationException", "the body is not {\"durationSeconds\": N, ...}")
    if not isinstance(duration, int) or not 900 <= duration <= 43200:
        raise Refused(400, "ValidationException", f"durationSeconds {duration!r} is outside 900 to 43200")
    name = document.get("roleSessionName")
    if name is not None and not re.fullmatch(r"[\w+=,.@-]{2,64}", name):
        raise Refused(400, "ValidationException", f"roleSessionName {name!r} is malformed")
    return duration, name or str(leaf.serial_number)


def mint(config, duration, session_name):
    if config["sts"] == "static":
        # For benchmarks of the clients only: fixed credentials, no STS call to time.
        expiration = now() + datetime.timedelta(seconds=duration)
        credentials = {
            "accessKeyId": "ASIASTATICBENCHMARK0",
            "secretAccessKey": "c3RhdGljLWJlbmNobWFyay1zZWNyZXQ",
            "sessionToken": "c3RhdGljLWJlbmNobWFyay10b2tlbg",
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return {"credentialSet": [{"credentials": credentials, "roleArn": config["roleArn"]}]}
    import boto3

    sts = boto3.client(
        "sts",
        endpoint_url=config["sts"],
        region_name="us-east-1",
        aws_access_key_id=os.environ["KEYHOLD_TEST_AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["KEYHOLD_TEST_AWS_SECRET_ACCESS_KEY"],
    )
    reply = sts.assume_role(RoleArn=config["roleArn"], RoleSessionName=session_name, DurationSeconds=duration)
    c = reply["Credentials"]
    return {
        "credentialSet": [
            {
                "assumedRoleUser": reply["AssumedRoleUser"],
                "credentials": {
                    "accessKeyId": c["AccessKeyId"],
                    "secretAccessKey": c["SecretAccessKey"],
                    "sessionToken": c["SessionToken"],
                    "expiration": c["Expiration"].astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                "packedPolicySize": 0,
                "roleArn": config["roleArn"],
                "sourceIdentity": "CN=keyhold-test",
            }
        ],
        "subjectArn": config["trustAnchorArn"].replace("trust-anchor", "subject"),
    }


def serve(args):
    config = {
        "anchor": x509.load_pem_x509_certificate(open(args.anchor, "rb").read()),
        "trustAnchorArn": args.trust_anchor_arn,
        "profileArn": args.profile_arn,
        "roleArn": args.role_arn,
        "region": args.region,
        "sts": args.sts,
    }
    failures = {"left": args.fail_first, "throttle": args.throttle_first}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, document, error_type=None, location=None):
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-amzn-requestid", "local-1")
            if error_type:
                self.send_header("x-amzn-errortype", error_type)
            if location:
                self.send_header("location", location)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            if args.redirect_to:
                # Elsewhere, as a misconfigured proxy or a hijacked name might answer: a client
                # that follows re-sends the signed request (and trusts the answer) there.
                self.rfile.read(int(self.headers.get("content-length") or 0))
                sys.stderr.write(f"redirected: {self.command} {self.path}\n")
                return self.reply(307, {"message": "moved"}, location=args.redirect_to + self.path)
            with lock:
                fail = failures["left"] > 0
                failures["left"] -= fail
                throttle = not fail and failures["throttle"] > 0
                failures["throttle"] -= throttle
            try:
                duration, name = verify(self, config)
                if fail:
                    return self.reply(503, {"message": "try again"}, "InternalServerException")
                if throttle:
                    sys.stderr.write("throttled: a verified request answered 429\n")
                    return self.reply(429, {"message": "Rate exceeded"}, "ThrottlingException")
                self.reply(201, mint(config, duration, name))
            except Refused as refused:
                sys.stderr.write(f"refused: {refused.message}\n")
                self.reply(refused.status, {"message": refused.message}, refused.kind)

        do_GET = do_POST

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    servers = [server]
    ports = [str(server.server_address[1])]
    if args.tls_cert:
        # The same endpoint over TLS too, for clients that only speak https.
        import ssl

        tls = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        tls.socket = context.wrap_socket(tls.socket, server_side=True)
        servers.append(tls)
        ports.append(str(tls.server_address[1]))
    print(" ".join(ports), flush=True)
    for extra in servers[1:]:
        threading.Thread(target=extra.serve_forever, daemon=True).start()
    server.serve_forever()


def new_key(kind):
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    return ec.generate_private_key({"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}[kind])


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keyhold tests"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate(subject, public_key, issuer, issuer_key, ca, serial=None, start=None, end=None):
    start = start or now() - datetime.timedelta(hours=1)
    end = end or now() + datetime.timedelta(days=2)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def pki(args):
    os.makedirs(args.dir, exist_ok=True)
    ca_dir = args.ca_dir or args.dir
    if args.ca_dir:
        ca_key = serialization.load_pem_private_key(open(os.path.join(ca_dir, "ca.key"), "rb").read(), None)
        ca = x509.load_pem_x509_certificate(open(os.path.join(ca_dir, "ca.pem"), "rb").read())
    else:
        ca_key = new_key("p256")
        ca = certificate(name("keyhold test CA"), ca_key.public_key(), name("keyhold test CA"), ca_key, True)
        write(os.path.join(args.dir, "ca.key"), ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
        write(os.path.join(args.dir, "ca.pem"), pem(ca))
    issuer, issuer_key, chain = ca, ca_key, []
    if args.intermediate:
        inter_key = new_key("p384")
        inter = certificate(name("keyhold test intermediate"), inter_key.public_key(), ca.subject, ca_key, True)
        write(os.path.join(args.dir, "intermediate.pem"), pem(inter))
        issuer, issuer_key, chain = inter, inter_key, [inter]
    subject = name("keyhold test client")
    if args.csr:
        # A certificate request made by keyhold cert csr: its signature must verify with the
        # key it carries, and the certificate is for that key and subject.
        request = x509.load_pem_x509_csr(open(args.csr, "rb").read())
        if not request.is_signature_valid:
            sys.exit("the certificate request's signature does not verify")
        public_key, subject = request.public_key(), request.subject
    elif args.ec_point:
        # CKA_EC_POINT as pkcs11-tool prints it: a DER OCTET STRING around the point.
        point = bytes.fromhex(args.ec_point)
        if len(point) > 2 and point[1] == len(point) - 2:
            point = point[2:]
        curve = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}[args.key]
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    elif args.public_key:
        data = open(args.public_key, "rb").read()
        if data.startswith(b"-----BEGIN"):
            public_key = serialization.load_pem_public_key(data)
        else:
            public_key = serialization.load_der_public_key(data)
    else:
        key = new_key(args.key)
        public_key = key.public_key()
        password = os.environ.get("KEYHOLD_TEST_KEY_PASSWORD", "").encode()
        formats = {
            "pkcs8": (serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            "encrypted": (serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(password or b"x")),
            "sec1": (serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()),
            "pkcs1": (serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()),
        }
        private_format, encryption = formats[args.key_format]
        write(os.path.join(args.dir, "leaf.key"), key.private_bytes(serialization.Encoding.PEM, private_format, encryption), 0o600)
    start = end = None
    if args.expired:
        start, end = now() - datetime.timedelta(days=3), now() - datetime.timedelta(days=1)
    if args.not_yet_valid:
        start, end = now() + datetime.timedelta(days=1), now() + datetime.timedelta(days=3)
    # A serial whose first byte has its high bit set: DER writes a 0x00 before it, and the
    # decimal must stay positive.
    serial = (0x80 << 120) | x509.random_serial_number() >> 40 if args.high_bit_serial else None
    leaf = certificate(subject, public_key, issuer.subject, issuer_key, False, serial, start, end)
    write(os.path.join(args.dir, "leaf.pem"), pem(leaf))
    write(os.path.join(args.dir, "leaf.der"), leaf.public_bytes(serialization.Encoding.DER))
    write(os.path.join(args.dir, "full-chain.pem"), pem(leaf) + b"".join(pem(c) for c in chain))
    if args.server:
        import ipaddress

        server_key = new_key("p256")
        server = (
            x509.CertificateBuilder()
            .subject_name(name("127.0.0.1"))
            .issuer_name(ca.subject)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now() - datetime.timedelta(hours=1))
            .not_valid_after(now() + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write(os.path.join(args.dir, "server.pem"), pem(server))
        write(os.path.join(args.dir, "server.key"), server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
    print(leaf.serial_number)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--anchor", required=True)
    s.add_argument("--trust-anchor-arn", required=True)
    s.add_argument("--profile-arn", required=True)
    s.add_argument("--role-arn", required=True)
    s.add_argument("--region", required=True)
    s.add_argument("--sts", required=True)
    s.add_argument("--fail-first", type=int, default=0)
    s.add_argument("--throttle-first", type=int, default=0)
    s.add_argument("--redirect-to")
    s.add_argument("--tls-cert", help="also serve https with this certificate (PEM)")
    s.add_argument("--tls-key", help="the --tls-cert's key (PEM)")
    p = sub.add_parser("pki")
    p.add_argument("--dir", required=True)
    p.add_argument("--key", default="p256", choices=["rsa2048", "rsa3072", "rsa4096", "p256", "p384"])
    p.add_argument("--key-format", default="pkcs8", choices=["pkcs8", "encrypted", "sec1", "pkcs1"])
    p.add_argument("--intermediate", action="store_true")
    p.add_argument("--expired", action="store_true")
    p.add_argument("--not-yet-valid", action="store_true")
    p.add_argument("--high-bit-serial", action="store_true")
    p.add_argument("--public-key")
    p.add_argument("--csr", help="certify the key and subject of this PEM certificate request")
    p.add_argument("--ec-point", help="certify this EC point (hex CKA_EC_POINT) on the --key curve")
    p.add_argument("--ca-dir")
    p.add_argument("--server", action="store_true", help="also a TLS server certificate for 127.0.0.1 (server.pem, server.key)")
    args = parser.parse_args()
    serve(args) if args.command == "serve" else pki(args)


if __name__ == "__main__":
    main()
