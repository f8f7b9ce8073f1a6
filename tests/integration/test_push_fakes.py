"""test_push_fakes.py - the fake push providers of push_fakes.py, alone (no
broker, no archiver): each accepts what the real service accepts and
refuses, with the reason, what it refuses.

The Web Push fake's decryption is checked against RFC 8291 section 5's
example; the requests here are made with Python's cryptography (an
encryptor written from RFC 8291 that reproduces that example byte for byte,
JWTs signed here), the APNs ones with curl --http2-prior-knowledge."""
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.parse

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import push_fakes
from push_fakes import (FcmFake, ApnsFake, WebPushFake, WebhookFake, Refused, b64u, p256_raw,
                        unb64u, webpush_decrypt)

CURL = shutil.which("curl")

# RFC 8291 section 5 (and appendix A): every input and the message body.
RFC = {
    "plaintext": b"When I grow up, I want to be a watermelon",
    "as_private": "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
    "as_public": "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
    "ua_private": "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
    "ua_public": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
    "auth": "BTBZMqHH6r4Tts7J_aSIgg",
    "salt": "DGv6ra1nlYgDCS1FRnbzlw",
    "body": "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"
            "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"
            "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
}


def private_p256(d_b64):
    return ec.derive_private_key(int.from_bytes(unb64u(d_b64), "big"), ec.SECP256R1())


def encrypt(plain, ua_public_raw, auth_secret, as_private=None, salt=None, rs=4096):
    """RFC 8291 encryption, written here from the RFC (not from the fake)."""
    as_private = as_private or ec.generate_private_key(ec.SECP256R1())
    salt = salt or os.urandom(16)
    as_public_raw = p256_raw(as_private.public_key())
    ua_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public_raw)
    shared = as_private.exchange(ec.ECDH(), ua_public)
    prk_key = hmac.new(auth_secret, shared, hashlib.sha256).digest()
    ikm = hmac.new(prk_key, b"WebPush: info\x00" + ua_public_raw + as_public_raw + b"\x01",
                   hashlib.sha256).digest()
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    cek = hmac.new(prk, b"Content-Encoding: aes128gcm\x00\x01", hashlib.sha256).digest()[:16]
    nonce = hmac.new(prk, b"Content-Encoding: nonce\x00\x01", hashlib.sha256).digest()[:12]
    ct = AESGCM(cek).encrypt(nonce, plain + b"\x02", None)
    return salt + struct.pack(">I", rs) + bytes([65]) + as_public_raw + ct


def es256_jwt(key, claims, header=None):
    h = header or {"typ": "JWT", "alg": "ES256"}
    signing = (b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    r, s = decode_dss_signature(key.sign(signing, ec.ECDSA(hashes.SHA256())))
    return signing.decode() + "." + b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def rs256_jwt(key, claims, header=None):
    h = header or {"typ": "JWT", "alg": "RS256"}
    signing = (b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    return signing.decode() + "." + b64u(key.sign(signing, padding.PKCS1v15(), hashes.SHA256()))


def post(port, path, body, headers):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


@pytest.fixture
def fakes():
    """Factory: fakes(Class, **kw) -> a started fake, stopped at the end."""
    made = []

    def make(cls, **kw):
        f = cls(**kw)
        made.append(f)
        return f
    yield make
    for f in made:
        f.stop()


# ---- Web Push ----------------------------------------------------------------

def test_rfc8291_example_decrypts():
    ua = private_p256(RFC["ua_private"])
    assert b64u(p256_raw(ua.public_key())) == RFC["ua_public"]
    body = unb64u(RFC["body"])
    assert body[:16] == unb64u(RFC["salt"])
    assert struct.unpack(">I", body[16:20])[0] == 4096 and body[20] == 65
    assert body[21:86] == unb64u(RFC["as_public"])
    assert webpush_decrypt(body, ua, unb64u(RFC["auth"])) == RFC["plaintext"]


def test_the_test_encryptor_reproduces_the_rfc_example():
    got = encrypt(RFC["plaintext"], unb64u(RFC["ua_public"]), unb64u(RFC["auth"]),
                  as_private=private_p256(RFC["as_private"]), salt=unb64u(RFC["salt"]))
    assert b64u(got) == RFC["body"]


def test_decryption_refuses_what_does_not_decrypt():
    ua = private_p256(RFC["ua_private"])
    body = bytearray(unb64u(RFC["body"]))
    auth = unb64u(RFC["auth"])
    for bad, why in ((bytes(body[:-1]) + bytes([body[-1] ^ 1]), "does not decrypt"),
                     (bytes(body[:20]) + b"\x41" + bytes(body[21:86]), "no room"),
                     (bytes(body[:16]) + struct.pack(">I", 20) + bytes(body[20:]), "more than one record")):
        with pytest.raises(Refused, match=why):
            webpush_decrypt(bad, ua, auth)
    with pytest.raises(Refused, match="does not decrypt"):
        webpush_decrypt(bytes(body), ua, os.urandom(16))
    # Padding delimiter 0x01 (a record that is not the last) is refused.
    sub_key = ec.generate_private_key(ec.SECP256R1())
    plain_ok = encrypt(b"{}", p256_raw(sub_key.public_key()), auth)
    assert webpush_decrypt(plain_ok, sub_key, auth) == b"{}"


def vapid(key, aud, exp=None, sub="mailto:ops@example.org", k=None):
    exp = int(time.time()) + 12 * 3600 if exp is None else exp
    t = es256_jwt(key, {"aud": aud, "exp": exp, "sub": sub})
    return "vapid t=%s, k=%s" % (t, k or b64u(p256_raw(key.public_key())))


def webpush_request(fake, sub, payload, key, **over):
    body = encrypt(json.dumps(payload).encode(), unb64u(sub.p256dh), unb64u(sub.auth))
    headers = {"Content-Encoding": "aes128gcm", "TTL": "86400", "Urgency": "high",
               "Topic": "ZC1ib2I", "Authorization": vapid(key, fake.origin)}
    headers.update(over)
    headers = {k: v for k, v in headers.items() if v is not None}
    return post(fake.port, urllib.parse.urlparse(sub.endpoint).path, body, headers)


def test_webpush_accepts_a_good_request_and_decrypts_it(fakes):
    wp = fakes(WebPushFake)
    key = ec.generate_private_key(ec.SECP256R1())
    sub = wp.subscribe(server_key=b64u(p256_raw(key.public_key())))
    status, h, _ = webpush_request(wp, sub, {"type": "message", "with": "bob"}, key)
    assert status == 201 and h["location"].startswith(wp.origin)
    got = wp.wait_delivered(1, key=sub.id)
    assert got[0]["notification"] == {"type": "message", "with": "bob"}
    assert got[0]["urgency"] == "high" and got[0]["ttl"] == 86400
    wp.assert_refused_nothing()


@pytest.mark.parametrize("over, why, code", [
    ({"TTL": None}, "TTL", 400),
    ({"Content-Encoding": "aesgcm"}, "aes128gcm", 415),
    ({"Urgency": "urgent"}, "Urgency", 400),
    ({"Topic": "x" * 33}, "Topic", 400),
    ({"Topic": "a+b"}, "Topic", 400),
    ({"Authorization": None}, "no Authorization", 401),
    ({"Authorization": "WebPush abc"}, "scheme", 401),
])
def test_webpush_refuses_bad_headers(fakes, over, why, code):
    wp = fakes(WebPushFake)
    key = ec.generate_private_key(ec.SECP256R1())
    sub = wp.subscribe()
    assert webpush_request(wp, sub, {}, key, **over)[0] == code
    assert len(wp.refused) == 1 and why in wp.refused[0]["reason"], wp.refused
    assert wp.deliveries() == []


def test_webpush_verifies_vapid(fakes):
    wp = fakes(WebPushFake)
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    sub = wp.subscribe(server_key=b64u(p256_raw(key.public_key())))
    now = int(time.time())
    cases = [
        (vapid(key, "http://127.0.0.1:1"), "aud"),
        (vapid(key, wp.origin + "/"), "aud"),
        (vapid(key, wp.origin, exp=now - 10), "expired"),
        (vapid(key, wp.origin, exp=now + 86400 + 120), "24 h"),
        (vapid(key, wp.origin, sub="ops@example.org"), "sub"),
        (vapid(key, wp.origin, k=b64u(p256_raw(other.public_key()))), "the subscription was made with"),
        (vapid(other, wp.origin), "the subscription was made with"),
        (vapid(other, wp.origin, k=b64u(p256_raw(key.public_key()))), "does not verify"),
        ("vapid t=a.b.c, k=" + b64u(p256_raw(key.public_key())), "not decodable"),
    ]
    for i, (auth, why) in enumerate(cases):
        status = webpush_request(wp, sub, {}, key, Authorization=auth)[0]
        assert status in (401, 403), (why, status)
        assert why in wp.refused[i]["reason"], (why, wp.refused[i])
    assert wp.deliveries() == []
    # A subscription made without a server key takes any good signature.
    free = wp.subscribe()
    assert webpush_request(wp, free, {"a": 1}, other)[0] == 201


def test_webpush_planned_answers(fakes):
    wp = fakes(WebPushFake)
    key = ec.generate_private_key(ec.SECP256R1())
    gone, busy = wp.subscribe(), wp.subscribe()
    wp.answer(gone.id, 410)
    wp.answer(busy.id, 429, times=1, retry_after=1)
    assert webpush_request(wp, gone, {}, key)[0] == 410
    assert webpush_request(wp, gone, {}, key)[0] == 410
    status, h, _ = webpush_request(wp, busy, {}, key)
    assert status == 429 and h["retry-after"] == "1"
    assert webpush_request(wp, busy, {"n": 2}, key)[0] == 201
    assert [r["status"] for r in wp.requests_of(busy.id)] == [429, 201]
    assert wp.notifications(busy.id) == [{"n": 2}]
    assert wp.deliveries(gone.id) == []
    wp.assert_refused_nothing()
    wp.answer(None, 500, times=1)
    assert webpush_request(wp, busy, {}, key)[0] == 500
    assert webpush_request(wp, busy, {}, key)[0] == 201


def test_webpush_down_refuses_connections_and_comes_back_on_its_port(fakes):
    wp = fakes(WebPushFake)
    key = ec.generate_private_key(ec.SECP256R1())
    sub = wp.subscribe()
    # A kept-alive connection is cut too.
    c = http.client.HTTPConnection("127.0.0.1", wp.port, timeout=5)
    c.connect()
    wp.down()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", wp.port), timeout=2).close()
    with pytest.raises((OSError, http.client.HTTPException)):
        c.request("POST", "/push/" + sub.id, body=b"", headers={"TTL": "0"})
        c.getresponse()
    c.close()
    wp.up()
    assert webpush_request(wp, sub, {"back": True}, key)[0] == 201
    assert wp.notifications(sub.id) == [{"back": True}]


# ---- FCM ---------------------------------------------------------------------

def fcm_assertion(fcm, **over):
    now = int(time.time())
    claims = {"iss": fcm.client_email, "scope": push_fakes.FCM_SCOPE, "aud": fcm.token_uri,
              "iat": now, "exp": now + 3600}
    claims.update(over)
    return rs256_jwt(fcm.key, claims, {"alg": "RS256", "typ": "JWT", "kid": fcm.key_id})


def fcm_token(fcm, assertion=None):
    form = urllib.parse.urlencode({"grant_type": push_fakes.JWT_BEARER,
                                   "assertion": assertion or fcm_assertion(fcm)})
    return post(fcm.port, "/token", form, {"Content-Type": "application/x-www-form-urlencoded"})


def fcm_send(fcm, token, message):
    return post(fcm.port, "/v1/projects/%s/messages:send" % fcm.project_id,
                json.dumps({"message": message}),
                {"Content-Type": "application/json", "Authorization": "Bearer " + token})


def test_fcm_service_account_file(fakes):
    fcm = fakes(FcmFake)
    with open(fcm.credentials) as f:
        acct = json.load(f)
    assert acct["type"] == "service_account" and acct["project_id"] == fcm.project_id
    assert acct["token_uri"] == "http://127.0.0.1:%d/token" % fcm.port
    assert acct["client_email"] == fcm.client_email and acct["private_key_id"] == fcm.key_id
    key = serialization.load_pem_private_key(acct["private_key"].encode(), None)
    assert key.public_key().public_numbers() == fcm.key.public_key().public_numbers()
    assert os.stat(fcm.credentials).st_mode & 0o077 == 0


def test_fcm_token_and_send(fakes):
    fcm = fakes(FcmFake)
    status, _, body = fcm_token(fcm)
    assert status == 200, body
    tok = json.loads(body)
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 3599
    msg = {"token": "dev-token-1", "data": {"type": "message", "with": "bob", "seq": "12"},
           "android": {"priority": "high", "collapse_key": "d:bob"}}
    status, _, body = fcm_send(fcm, tok["access_token"], msg)
    assert status == 200 and json.loads(body)["name"].startswith("projects/%s/messages/" % fcm.project_id)
    assert fcm.notifications("dev-token-1") == [msg["data"]]
    fcm.assert_refused_nothing()


@pytest.mark.parametrize("over, why", [
    ({"iss": "someone@else"}, "iss"),
    ({"aud": "https://oauth2.googleapis.com/token"}, "aud"),
    ({"scope": "https://www.googleapis.com/auth/cloud-platform"}, "scope"),
    ({"exp": int(time.time()) + 7200}, "over an hour"),
    ({"iat": int(time.time()) - 4000, "exp": int(time.time()) - 400}, "not issued now"),
])
def test_fcm_token_refuses_bad_assertions(fakes, over, why):
    fcm = fakes(FcmFake)
    status, _, body = fcm_token(fcm, fcm_assertion(fcm, **over))
    assert status == 400 and json.loads(body)["error"] == "invalid_grant"
    assert why in fcm.refused[0]["reason"], fcm.refused


def test_fcm_token_refuses_another_key(fakes):
    fcm, other = fakes(FcmFake), fakes(FcmFake)
    assertion = rs256_jwt(other.key, json.loads(unb64u(fcm_assertion(fcm).split(".")[1])))
    assert fcm_token(fcm, assertion)[0] == 400
    assert "does not verify" in fcm.refused[0]["reason"]


def test_fcm_send_refuses_bad_bearers_and_messages(fakes):
    fcm = fakes(FcmFake)
    tok = json.loads(fcm_token(fcm)[2])["access_token"]
    ok = {"token": "t1", "data": {"a": "b"}}
    assert fcm_send(fcm, "ya29.made-up", ok)[0] == 401
    for msg, why in (({"token": "t1", "data": {"seq": 12}}, "strings"),
                     ({"token": "t1", "data": {"from": "bob"}}, "reserved"),
                     ({"token": "t1", "data": {"google.x": "1"}}, "reserved"),
                     ({"topic": "news", "data": {}}, "one token"),
                     ({"token": "t1", "colapse": 1}, "unknown"),
                     ({"token": "t1", "android": {"priority": "urgent"}}, "priority")):
        n = len(fcm.refused)
        assert fcm_send(fcm, tok, msg)[0] == 400, msg
        assert why in fcm.refused[n]["reason"], fcm.refused[n]
    fcm.expire_tokens()
    assert fcm_send(fcm, tok, ok)[0] == 401
    assert "expired" in fcm.refused[-1]["reason"]
    assert fcm.deliveries() == []


def test_fcm_planned_errors_have_fcm_bodies(fakes):
    fcm = fakes(FcmFake)
    tok = json.loads(fcm_token(fcm)[2])["access_token"]
    fcm.answer("gone", 404)
    fcm.answer("busy", 429, times=1, retry_after=1)
    status, _, body = fcm_send(fcm, tok, {"token": "gone", "data": {}})
    err = json.loads(body)["error"]
    assert status == 404 and err["status"] == "NOT_FOUND" and err["details"][0]["errorCode"] == "UNREGISTERED"
    status, h, body = fcm_send(fcm, tok, {"token": "busy", "data": {}})
    assert status == 429 and h["retry-after"] == "1"
    assert fcm_send(fcm, tok, {"token": "busy", "data": {}})[0] == 200
    fcm.assert_refused_nothing()


# ---- APNs (HTTP/2) -------------------------------------------------------------

def apns_jwt(apns, key=None, kid=None, iss=None, iat=None):
    return es256_jwt(key or apns.key, {"iss": iss or apns.team_id, "iat": int(time.time()) if iat is None else iat},
                     {"alg": "ES256", "kid": kid or apns.key_id})


def curl_h2(url, headers, body):
    """POST over HTTP/2 with prior knowledge: (status, headers, body)."""
    args = [CURL, "-sS", "--http2-prior-knowledge", "-D", "-", "-X", "POST", "--max-time", "10",
            "--data-binary", "@-", url]
    for k, v in headers.items():
        args[1:1] = ["-H", "%s: %s" % (k, v)]
    r = subprocess.run(args, input=body, capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    head, _, rest = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/2 "), lines[0]
    hdrs = dict(l.split(": ", 1) for l in lines[1:] if ": " in l)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in hdrs.items()}, rest


def apns_post(apns, token, body=None, **over):
    headers = {"authorization": "bearer " + apns_jwt(apns), "apns-topic": apns.topic,
               "apns-push-type": "alert", "apns-priority": "10", "apns-collapse-id": "d:bob",
               "apns-expiration": str(int(time.time()) + 86400)}
    headers.update(over)
    headers = {k: v for k, v in headers.items() if v is not None}
    payload = json.dumps(body if body is not None else
                         {"aps": {"alert": {"title": "New message", "body": "from bob"}},
                          "mqchat": {"type": "message", "with": "bob"}}).encode()
    return curl_h2("%s/3/device/%s" % (apns.url, token), headers, payload)


needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


@needs_curl
def test_apns_p8_key_file(fakes):
    apns = fakes(ApnsFake)
    with open(apns.key_path, "rb") as f:
        pem = f.read()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key.curve, ec.SECP256R1)


@needs_curl
def test_apns_accepts_a_good_http2_request(fakes):
    apns = fakes(ApnsFake)
    tok = push_fakes.apns_token()
    status, h, body = apns_post(apns, tok)
    assert status == 200 and len(h["apns-id"]) == 36 and body == b""
    got = apns.wait_delivered(1, key=tok)
    assert got[0]["notification"] == {"type": "message", "with": "bob"}
    assert got[0]["headers"]["apns-collapse-id"] == "d:bob"
    assert len(apns.provider_tokens) == 1
    apns.assert_refused_nothing()


@needs_curl
def test_apns_refuses_what_apple_refuses(fakes):
    apns = fakes(ApnsFake)
    tok = push_fakes.apns_token()
    other = ec.generate_private_key(ec.SECP256R1())
    cases = [
        (dict(authorization="bearer " + apns_jwt(apns, key=other)), 403, "does not verify"),
        (dict(authorization="bearer " + apns_jwt(apns, kid="OTHERKEY00")), 403, "InvalidProviderToken"),
        (dict(authorization="bearer " + apns_jwt(apns, iss="OTHERTEAM0")), 403, "InvalidProviderToken"),
        (dict(authorization="bearer " + apns_jwt(apns, iat=int(time.time()) - 3700)), 403, "ExpiredProviderToken"),
        (dict(authorization=None), 403, "MissingProviderToken"),
        (dict(**{"apns-topic": "org.other.app"}), 400, "TopicDisallowed"),
        (dict(**{"apns-topic": None}), 400, "MissingTopic"),
        (dict(**{"apns-push-type": "background"}), 400, "InvalidPushType"),
        (dict(**{"apns-priority": "7"}), 400, "BadPriority"),
        (dict(**{"apns-collapse-id": "c" * 65}), 400, "BadCollapseId"),
        (dict(**{"apns-expiration": "soon"}), 400, "BadExpirationDate"),
    ]
    for i, (over, code, why) in enumerate(cases):
        status, _, body = apns_post(apns, tok, **over)
        assert status == code, (over, status, body)
        assert why in apns.refused[i]["reason"], (why, apns.refused[i])
    n = len(cases)
    assert apns_post(apns, "abc123")[0] == 400
    assert json.loads(apns_post(apns, "zz" * 32)[2]) == {"reason": "BadDeviceToken"}
    assert apns_post(apns, tok, body={"mqchat": {}})[0] == 400
    assert len(apns.refused) == n + 3
    assert apns.deliveries() == []


@needs_curl
def test_apns_planned_answers(fakes):
    apns = fakes(ApnsFake)
    gone, busy = push_fakes.apns_token(), push_fakes.apns_token()
    apns.answer(gone, 410)
    apns.answer(busy, 429, times=1)
    status, _, body = apns_post(apns, gone)
    assert status == 410 and json.loads(body)["reason"] == "Unregistered"
    status, _, body = apns_post(apns, busy)
    assert status == 429 and json.loads(body) == {"reason": "TooManyRequests"}
    assert apns_post(apns, busy)[0] == 200
    apns.assert_refused_nothing()


@needs_curl
def test_apns_one_connection_per_request(fakes):
    """Two requests of one curl run: each gets its connection (GOAWAY when
    idle; libcurl 7.88 cannot reuse a prior-knowledge one) and its 200."""
    apns = fakes(ApnsFake)
    tok = push_fakes.apns_token()
    h = ["-H", "authorization: bearer " + apns_jwt(apns), "-H", "apns-topic: " + apns.topic,
         "-H", "apns-push-type: alert"]
    url = "%s/3/device/%s" % (apns.url, tok)
    one = ["--http2-prior-knowledge"] + h + ["--data-binary", '{"aps":{"alert":"x"}}', url]
    r = subprocess.run([CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}\n"] + one + ["--next", "-o", "/dev/null",
                       "-w", "%{http_code}\n"] + one, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and r.stdout.split() == ["200", "200"], r
    assert len(apns.deliveries(tok)) == 2 and apns.connections == 2
    apns.assert_refused_nothing()


@needs_curl
def test_apns_down_and_up(fakes):
    apns = fakes(ApnsFake)
    tok = push_fakes.apns_token()
    apns.down()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", apns.port), timeout=2).close()
    apns.up()
    assert apns_post(apns, tok)[0] == 200


# ---- webhooks ------------------------------------------------------------------

def hook_post(fake, url, secret, body, ts=None, sig=None):
    ts = str(int(time.time()) if ts is None else ts)
    sig = sig or "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return post(fake.port, urllib.parse.urlparse(url).path, body,
                {"Content-Type": "application/json", "X-Mqchat-Timestamp": ts, "X-Mqchat-Signature": sig})


def test_webhook_checks_the_signature_and_the_time(fakes):
    wh = fakes(WebhookFake)
    hid, url = wh.hook()
    body = json.dumps({"type": "message", "with": "bob"}).encode()
    assert hook_post(wh, url, "s3cret", body)[0] == 401      # the secret is not known yet
    wh.set_secret(hid, "s3cret")
    assert hook_post(wh, url, "s3cret", body)[0] == 200
    assert wh.notifications(hid) == [{"type": "message", "with": "bob"}]
    n = len(wh.refused)
    assert hook_post(wh, url, "other", body)[0] == 401
    assert hook_post(wh, url, "s3cret", body, ts=int(time.time()) - 600)[0] == 401
    assert hook_post(wh, url, "s3cret", body, sig="sha256=" + "0" * 64)[0] == 401
    reasons = [r["reason"] for r in wh.refused[n:]]
    assert "does not match" in reasons[0] and "off" in reasons[1] and "does not match" in reasons[2]
    assert len(wh.deliveries()) == 1
