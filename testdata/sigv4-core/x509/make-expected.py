"""Writes the expected stages of an IAM Roles Anywhere CreateSession signature, built by
hand from AWS's SigV4 documentation (independently of keyhold's code), for the RSA
known-answer test in crates/sigv4-core/tests/x509.rs. The signature itself is made with
`openssl dgst -sha256 -sign rsa-key.pem` (RSASSA-PKCS1-v1_5 is deterministic).
Run from this directory: python3 make-expected.py"""
import base64, hashlib, subprocess, urllib.parse

host = "rolesanywhere.us-east-1.amazonaws.com"
query = {
    "profileArn": "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0f0e0d0c-0b0a-0908-0706-050403020100",
    "roleArn": "arn:aws:iam::123456789012:role/keyhold-test",
    "trustAnchorArn": "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/00010203-0405-0607-0809-0a0b0c0d0e0f",
}
body = b'{"durationSeconds":3600}'
amz_date = "20261204T120000Z"
cert = base64.b64encode(open("rsa-cert.der", "rb").read()).decode()
serial = str(int(subprocess.check_output(
    ["openssl", "x509", "-in", "rsa-cert.pem", "-noout", "-serial"]).decode().strip().split("=")[1], 16))

def enc(s):  # RFC 3986: only unreserved characters stay
    return urllib.parse.quote(s, safe="-_.~")

canonical_query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(query.items()))
headers = {"content-type": "application/json", "host": host, "x-amz-date": amz_date, "x-amz-x509": cert}
canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
signed_headers = ";".join(sorted(headers))
canonical = "\n".join(["POST", "/sessions", canonical_query, canonical_headers, signed_headers,
                       hashlib.sha256(body).hexdigest()])
scope = f"20261204/us-east-1/rolesanywhere/aws4_request"
string_to_sign = "\n".join(["AWS4-X509-RSA-SHA256", amz_date, scope,
                            hashlib.sha256(canonical.encode()).hexdigest()])
signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", "rsa-key.pem"],
                           input=string_to_sign.encode(), capture_output=True, check=True).stdout.hex()
authorization = (f"AWS4-X509-RSA-SHA256 Credential={serial}/{scope}, "
                 f"SignedHeaders={signed_headers}, Signature={signature}")
open("rsa-canonical-request.txt", "w").write(canonical)
open("rsa-string-to-sign.txt", "w").write(string_to_sign)
open("rsa-authorization.txt", "w").write(authorization)
open("request-target.txt", "w").write("/sessions?" + "&".join(f"{k}={enc(v)}" for k, v in query.items()))
