"""push_fakes.py - fake push providers on 127.0.0.1 that check what the real ones check.

    from push_fakes import WebPushFake, FcmFake, ApnsFake, WebhookFake

    wp = WebPushFake()                  # listening now
    sub = wp.subscribe(server_key=vapid_public_key)
    ... register sub.endpoint, sub.p256dh, sub.auth, make the archiver send ...
    got = wp.wait_delivered(1, key=sub.id)        # decrypted notifications
    wp.assert_refused_nothing()
    wp.stop()

- WebPushFake (RFC 8030, 8291, 8292): subscriptions with their own P-256 key
  pair and auth secret; each POST is checked (Content-Encoding aes128gcm,
  TTL, Urgency, Topic), its VAPID Authorization verified (ES256 with the key
  in k, aud the endpoint's origin, exp within 24 h, sub mailto:/https:) and
  its body decrypted with the subscription's private key.
- FcmFake (FCM HTTP v1): a service account file; POST /token checks the
  RS256 jwt-bearer assertion and issues access tokens; messages:send checks
  the bearer token and the message (one target, data values strings only,
  no reserved data keys, no unknown fields).
- ApnsFake: HTTP/2 with prior knowledge (h2, server side, a thread per
  connection); checks the ES256 provider token made with its .p8 key, the
  apns-* headers and the JSON body.
- WebhookFake: checks X-Mqchat-Signature (HMAC-SHA256 of
  "<X-Mqchat-Timestamp>.<body>" with the secret the archiver gave at
  registration) and the timestamp's age.

Every fake keeps three lists (under its lock): requests (passed every check,
with the status answered), delivered (those answered 2xx) and refused (a
check failed: the reason and the status answered), so a test can say
"delivered once, refused nothing". What a fake answers to requests that pass
is 2xx unless a test planned otherwise with answer(key, status, ...): 410,
404, 429 with Retry-After, 5xx. down() closes the listener and every open
connection (connections are refused, as when a service is unreachable);
up() listens on the same port again.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import socketserver
import struct
import tempfile
import threading
import time
import urllib.parse
import uuid

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import harness

WEBPUSH_MAX_BODY = 4096          # RFC 8030 7.2: what every push service must accept
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
APNS_MAX_PAYLOAD = 4096
WEBHOOK_MAX_AGE = 300            # seconds a webhook's timestamp may be off
B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


# ---- encodings and signatures ------------------------------------------------

def b64u(data):
    """base64url without padding (str)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    """Decode base64url without padding; padding or other characters are
    refused (ValueError), as JOSE and RFC 8291 want."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    if not B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding: %r" % text[:40])
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Refused(Exception):
    """A request a real provider would refuse: reason, and what to answer."""

    def __init__(self, reason, status=400, body=b"", headers=None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body
        self.headers = headers or {}


def jwt_parse(token, verify, status=401):
    """Split and check a compact JWS; verify(header, signing_input, signature)
    raises Refused. Returns (header, claims)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Refused("JWT is not three base64url parts", status)
    try:
        header = json.loads(unb64u(parts[0]))
        claims = json.loads(unb64u(parts[1]))
        sig = unb64u(parts[2])
    except (ValueError, UnicodeDecodeError) as e:
        raise Refused("JWT not decodable: %s" % e, status)
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Refused("JWT header or claims not a JSON object", status)
    verify(header, (parts[0] + "." + parts[1]).encode(), sig)
    return header, claims


def es256_verifier(public_key, status=401):
    """A JWT verify function for ES256 (JOSE: the signature is r||s, 64 bytes)."""
    def verify(header, data, sig):
        if header.get("alg") != "ES256":
            raise Refused("JWT alg %r, not ES256" % header.get("alg"), status)
        if len(sig) != 64:
            raise Refused("ES256 signature of %d bytes, not 64 (r||s)" % len(sig), status)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise Refused("ES256 signature does not verify", status)
    return verify


def rs256_verifier(public_key, status=400):
    def verify(header, data, sig):
        if header.get("alg") != "RS256":
            raise Refused("JWT alg %r, not RS256" % header.get("alg"), status)
        try:
            public_key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise Refused("RS256 signature does not verify", status)
    return verify


def int_claim(claims, name, status=401):
    v = claims.get(name)
    if not isinstance(v, int) or isinstance(v, bool):
        raise Refused("JWT claim %s is %r, not an integer" % (name, v), status)
    return v


def p256_public(raw):
    """A P-256 public key from its 65-byte uncompressed encoding."""
    if len(raw) != 65 or raw[0] != 4:
        raise ValueError("not an uncompressed P-256 point (%d bytes)" % len(raw))
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def p256_raw(public_key):
    return public_key.public_bytes(serialization.Encoding.X962,
                                   serialization.PublicFormat.UncompressedPoint)


def webpush_decrypt(body, ua_private, auth_secret):
    """RFC 8291 section 3 and RFC 8188: the plaintext of an aes128gcm body
    for the user agent whose private key is ua_private. Raises Refused
    (with what is wrong) for anything a push service's user agent would
    fail to decrypt."""
    if len(body) < 21:
        raise Refused("aes128gcm body of %d bytes: shorter than its header" % len(body))
    salt = body[:16]
    rs = struct.unpack(">I", body[16:20])[0]
    idlen = body[20]
    keyid = body[21:21 + idlen]
    ciphertext = body[21 + idlen:]
    if idlen != 65:
        raise Refused("aes128gcm keyid of %d bytes: RFC 8291 wants the sender's 65-byte key" % idlen)
    if rs < 18:
        raise Refused("aes128gcm record size %d below 18" % rs)
    if len(ciphertext) < 17:
        raise Refused("aes128gcm record of %d bytes: no room for tag and delimiter" % len(ciphertext))
    if len(ciphertext) > rs:
        # RFC 8291 section 4: one record only.
        raise Refused("aes128gcm body of %d bytes is more than one record (rs %d)" % (len(ciphertext), rs))
    try:
        as_public = p256_public(keyid)
    except ValueError as e:
        raise Refused("aes128gcm keyid: %s" % e)
    ua_public = p256_raw(ua_private.public_key())
    ecdh_secret = ua_private.exchange(ec.ECDH(), as_public)
    # RFC 8291 3.3: IKM from the ECDH secret and the auth secret ...
    ikm = HKDF(hashes.SHA256(), 32, salt=auth_secret,
               info=b"WebPush: info\x00" + ua_public + keyid).derive(ecdh_secret)
    # ... 3.4 / RFC 8188 2.2-2.3: content encryption key and nonce (one record: SEQ 0).
    cek = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(ikm)
    nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(ikm)
    try:
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    except InvalidTag:
        raise Refused("aes128gcm: the record does not decrypt (wrong key, auth secret or tag)")
    # RFC 8188 2: data, then the delimiter (0x02 in the last record), then zeros.
    stripped = padded.rstrip(b"\x00")
    if not stripped or stripped[-1] != 2:
        raise Refused("aes128gcm: the last record's padding delimiter is not 0x02")
    return stripped[:-1]


def json_body(body, status=400):
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise Refused("body is not JSON: %s" % e, status)


# ---- the common part: records, planned answers ------------------------------

class Fake:
    """Records and planned answers of one fake provider."""

    name = "fake"

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []    # passed every check: dicts with "key", "status", "at", ...
        self.delivered = []   # the same, answered 2xx
        self.refused = []     # {"reason", "status", "path", "at"}
        self.plans = {}       # key (None: any) -> [[status, times or None, headers, body]]

    def answer(self, key, status, times=None, retry_after=None, body=None, headers=None):
        """From now on answer requests that pass the checks for key (None:
        any key) with status, times times (None: until told otherwise); a
        body in the provider's own error format unless given."""
        h = dict(headers or {})
        if retry_after is not None:
            h["Retry-After"] = str(retry_after)
        if body is None:
            body = self.error_body(status)
        with self.lock:
            self.plans.setdefault(key, []).append([status, times, h, body])

    def answer_normally(self, key=None):
        """Forget the planned answers for key (None: the ones for any key)."""
        with self.lock:
            self.plans.pop(key, None)

    def error_body(self, status):
        return b""

    def planned(self, key, default):
        """(status, headers, body) for a request of key that passed the checks."""
        with self.lock:
            for k in (key, None):
                plan = self.plans.get(k)
                while plan:
                    status, times, h, body = plan[0]
                    if times is None:
                        return status, dict(h), body
                    if times > 0:
                        plan[0][1] = times - 1
                        if plan[0][1] == 0:
                            plan.pop(0)
                        return status, dict(h), body
                    plan.pop(0)
        return default, {}, b""

    def record(self, key, status, **info):
        rec = dict(info, key=key, status=status, at=time.time())
        with self.lock:
            self.requests.append(rec)
            if 200 <= status < 300:
                self.delivered.append(rec)
        return rec

    def refuse(self, path, refused):
        with self.lock:
            self.refused.append({"reason": refused.reason, "status": refused.status,
                                 "path": path, "at": time.time()})

    def deliveries(self, key=None):
        """The delivered requests (of key), oldest first."""
        with self.lock:
            return [r for r in self.delivered if key is None or r["key"] == key]

    def requests_of(self, key=None):
        with self.lock:
            return [r for r in self.requests if key is None or r["key"] == key]

    def wait_delivered(self, n, key=None, timeout=harness.DEFAULT_TIMEOUT):
        """Until at least n requests of key were delivered; returns them all.
        Fails early on a refusal: the archiver would never get it right."""
        def enough():
            self.assert_refused_nothing()
            got = self.deliveries(key)
            return got if len(got) >= n else None
        return harness.wait_for(enough, timeout, interval=0.02, what="%d %s deliveries%s (have %r)" % (
            n, self.name, " for %s" % key if key else "", [r.get("notification") for r in self.deliveries(key)]))

    def wait_requests(self, n, key=None, timeout=harness.DEFAULT_TIMEOUT):
        def enough():
            self.assert_refused_nothing()
            got = self.requests_of(key)
            return got if len(got) >= n else None
        return harness.wait_for(enough, timeout, interval=0.02, what="%d %s requests%s" % (
            n, self.name, " for %s" % key if key else ""))

    def assert_refused_nothing(self):
        with self.lock:
            refused = list(self.refused)
        assert not refused, "%s refused: %s" % (self.name, json.dumps(refused, indent=1))

    def notifications(self, key=None):
        return [r["notification"] for r in self.deliveries(key)]


# ---- an HTTP/1.1 server that can go down and come back ----------------------

class _HttpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True   # up() again on the same port, TIME_WAIT or not
    block_on_close = False

    def __init__(self, port, fake):
        self.fake = fake
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def get_request(self):
        sock, addr = super().get_request()
        with self.conns_lock:
            self.conns.add(sock)
        return sock, addr

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def drop_connections(self):
        with self.conns_lock:
            conns = list(self.conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive, as libcurl likes
    server_version = "push-fake"

    def log_message(self, *a):
        pass

    def do_POST(self):
        self._serve("POST")

    def do_GET(self):
        self._serve("GET")

    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self, method):
        body = self._read_body()
        fake = self.server.fake
        if fake.is_down:
            # Down between accepting and answering: as a network error.
            self.close_connection = True
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, h, payload = fake.handle(method, self.path, headers, body)
        except Refused as r:
            fake.refuse(self.path, r)
            status, h, payload = r.status, r.headers, r.body
        if isinstance(payload, str):
            payload = payload.encode()
        self.send_response(status)
        for k, v in h.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class HttpFake(Fake):
    """A Fake served over HTTP/1.1 on 127.0.0.1:port (a free one if None)."""

    def __init__(self, port=None):
        super().__init__()
        self.port = port or harness.free_port()
        self.origin = "http://127.0.0.1:%d" % self.port
        self.is_down = False
        self.server = None
        self.thread = None
        self.up()

    def up(self):
        """Listen (again) on the same port."""
        self.server = _HttpServer(self.port, self)
        self.is_down = False
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True, name="%s-%d" % (self.name, self.port))
        self.thread.start()

    def down(self):
        """Close the listener and every open connection: connections are
        refused until up()."""
        if self.server is None:
            return
        self.is_down = True
        self.server.shutdown()
        self.server.server_close()
        self.server.drop_connections()
        self.thread.join(timeout=5)
        self.server = None

    def stop(self):
        self.down()

    def handle(self, method, path, headers, body):
        """(status, headers, body) for a request; raises Refused."""
        raise NotImplementedError


# ---- Web Push -----------------------------------------------------------------

class Subscription:
    """A browser's push subscription: what it hands the application server
    (endpoint, p256dh, auth) and the private key the fake decrypts with."""

    def __init__(self, origin, server_key=None):
        self.id = uuid.uuid4().hex[:16]
        self.endpoint = "%s/push/%s" % (origin, self.id)
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth_secret = os.urandom(16)
        self.p256dh = b64u(p256_raw(self.private_key.public_key()))
        self.auth = b64u(self.auth_secret)
        self.server_key = server_key   # the applicationServerKey (VAPID public key), if given


class WebPushFake(HttpFake):
    """A Web Push service (RFC 8030) with RFC 8291 payloads and RFC 8292 VAPID."""

    name = "webpush"

    def __init__(self, port=None):
        self.subs = {}
        super().__init__(port)

    def subscribe(self, server_key=None):
        """A new subscription; with server_key (the VAPID public key,
        base64url, as a browser's applicationServerKey) requests must carry
        that key in k (else 403, as RFC 8292 4.2)."""
        s = Subscription(self.origin, server_key)
        with self.lock:
            self.subs[s.id] = s
        return s

    def unsubscribe(self, sub):
        with self.lock:
            self.subs.pop(sub.id, None)

    def error_body(self, status):
        return {410: b"push subscription has unsubscribed or expired",
                404: b"no such subscription",
                429: b"too many requests",
                500: b"internal error", 503: b"unavailable"}.get(status, b"")

    def handle(self, method, path, headers, body):
        if method != "POST":
            raise Refused("%s, not POST" % method, 405)
        m = re.match(r"^/push/([0-9a-f]{16})$", path)
        with self.lock:
            sub = self.subs.get(m.group(1)) if m else None
        if sub is None:
            raise Refused("no subscription at %s" % path, 404)
        # RFC 8030 5.2, 5.3, 5.4: TTL always; Urgency and Topic if given.
        ttl = headers.get("ttl")
        if ttl is None or not re.match(r"^[0-9]+$", ttl.strip()):
            raise Refused("TTL header missing or not a number: %r" % ttl)
        urgency = headers.get("urgency")
        if urgency is not None and urgency.strip() not in ("very-low", "low", "normal", "high"):
            raise Refused("Urgency %r is not very-low, low, normal or high" % urgency)
        topic = headers.get("topic")
        if topic is not None and (len(topic) > 32 or not topic or not B64URL.match(topic)):
            raise Refused("Topic %r: at most 32 characters of the base64url alphabet" % topic)
        vapid = self.check_vapid(headers.get("authorization"), sub)
        if headers.get("content-encoding", "").strip().lower() != "aes128gcm":
            raise Refused("Content-Encoding %r, not aes128gcm" % headers.get("content-encoding"), 415)
        if len(body) > WEBPUSH_MAX_BODY:
            raise Refused("body of %d bytes, more than %d" % (len(body), WEBPUSH_MAX_BODY), 413)
        plain = webpush_decrypt(body, sub.private_key, sub.auth_secret)
        notification = json_body(plain)
        status, h, payload = self.planned(sub.id, 201)
        if status == 201:
            h["Location"] = "%s/message/%s" % (self.origin, uuid.uuid4().hex)
        self.record(sub.id, status, notification=notification, ttl=int(ttl), urgency=urgency,
                    topic=topic, vapid=vapid, headers=headers)
        return status, h, payload

    def check_vapid(self, value, sub):
        """RFC 8292: Authorization: vapid t=<JWT>, k=<public key>. Returns the claims."""
        if not value:
            raise Refused("no Authorization header (VAPID)", 401)
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "vapid":
            raise Refused("Authorization scheme %r, not vapid" % scheme, 401)
        params = {}
        for part in rest.split(","):
            k, eq, v = part.strip().partition("=")
            if not eq or k.strip().lower() in params:
                raise Refused("Authorization parameters not t=..., k=...: %r" % rest, 401)
            params[k.strip().lower()] = v.strip()
        if set(params) != {"t", "k"}:
            raise Refused("Authorization parameters %r, not t and k" % sorted(params), 401)
        try:
            key = p256_public(unb64u(params["k"]))
        except ValueError as e:
            raise Refused("VAPID k: %s" % e, 401)
        if sub.server_key is not None and params["k"] != sub.server_key:
            raise Refused("VAPID k is not the key the subscription was made with", 403)
        header, claims = jwt_parse(params["t"], es256_verifier(key))
        if header.get("typ") not in (None, "JWT"):
            raise Refused("JWT typ %r" % header.get("typ"), 401)
        if claims.get("aud") != self.origin:
            raise Refused("VAPID aud %r, not the endpoint's origin %r" % (claims.get("aud"), self.origin), 403)
        exp = int_claim(claims, "exp")
        now = time.time()
        if exp <= now:
            raise Refused("VAPID JWT expired (exp %d, now %d)" % (exp, now), 403)
        if exp > now + 86400 + 5:   # 5 s for the clocks' second boundaries
            raise Refused("VAPID exp %d is more than 24 h ahead" % exp, 403)
        sub_claim = claims.get("sub")
        if not isinstance(sub_claim, str) or not sub_claim.startswith(("mailto:", "https:")):
            raise Refused("VAPID sub %r: not a mailto: or https: contact" % sub_claim, 403)
        return claims


# ---- Firebase Cloud Messaging HTTP v1 ---------------------------------------

FCM_MESSAGE_FIELDS = {"name", "data", "notification", "android", "webpush", "apns", "fcm_options",
                      "token", "topic", "condition"}
FCM_ANDROID_FIELDS = {"collapse_key", "priority", "ttl", "restricted_package_name", "data",
                      "notification", "fcm_options", "direct_boot_ok"}


def fcm_error(status):
    """An FCM v1 error body (google.rpc.Status with an FcmError detail)."""
    kind = {400: ("INVALID_ARGUMENT", "INVALID_ARGUMENT"), 401: ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
            403: ("PERMISSION_DENIED", "SENDER_ID_MISMATCH"), 404: ("NOT_FOUND", "UNREGISTERED"),
            429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), 500: ("INTERNAL", "INTERNAL"),
            503: ("UNAVAILABLE", "UNAVAILABLE")}.get(status, ("UNKNOWN", "UNSPECIFIED_ERROR"))
    return json.dumps({"error": {"code": status, "message": "fake: %s" % kind[0], "status": kind[0],
                                 "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                              "errorCode": kind[1]}]}}).encode()


class FcmFake(HttpFake):
    """Google's OAuth 2.0 token endpoint and FCM's messages:send."""

    name = "fcm"

    def __init__(self, port=None, folder=None, project_id="mqchat-fake", expires_in=3599):
        super().__init__(port)
        self.project_id = project_id
        self.expires_in = expires_in
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = uuid.uuid4().hex
        self.client_email = "push@%s.iam.gserviceaccount.com" % project_id
        self.token_uri = self.origin + "/token"
        self.tokens = {}          # access token -> expiry (time.time())
        self.token_requests = []  # claims of every assertion accepted
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        account = {"type": "service_account", "project_id": project_id, "private_key_id": self.key_id,
                   "private_key": pem, "client_email": self.client_email, "client_id": "1234567890",
                   "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": self.token_uri}
        folder = folder or tempfile.mkdtemp(prefix="mqchat-fcm-")
        self.credentials = os.path.join(folder, "fcm-service-account-%d.json" % self.port)
        fd = os.open(self.credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(account, f, indent=2)

    def expire_tokens(self):
        """Every access token issued so far is expired from now on (401)."""
        with self.lock:
            for t in self.tokens:
                self.tokens[t] = 0

    def error_body(self, status):
        return fcm_error(status)

    def handle(self, method, path, headers, body):
        if method != "POST":
            raise Refused("%s, not POST" % method, 405, fcm_error(400))
        if path == "/token":
            return self.token(headers, body)
        if path == "/v1/projects/%s/messages:send" % self.project_id:
            return self.send(headers, body)
        raise Refused("no such path %s" % path, 404, fcm_error(404))

    def token(self, headers, body):
        """The jwt-bearer grant (RFC 7523) as Google's token endpoint does it."""
        def bad(reason):
            return Refused(reason, 400, json.dumps({"error": "invalid_grant",
                                                    "error_description": reason}).encode(),
                           {"Content-Type": "application/json"})
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise bad("token request Content-Type %r" % headers.get("content-type"))
        try:
            form = urllib.parse.parse_qs(body.decode("ascii"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as e:
            raise bad("token request form: %s" % e)
        if form.get("grant_type") != [JWT_BEARER]:
            raise bad("grant_type %r" % form.get("grant_type"))
        if len(form.get("assertion", [])) != 1:
            raise bad("no assertion")
        try:
            header, claims = jwt_parse(form["assertion"][0], rs256_verifier(self.key.public_key()), 400)
        except Refused as r:
            raise bad(r.reason)
        if header.get("kid") not in (None, self.key_id):
            raise bad("assertion kid %r is not the account's private_key_id" % header.get("kid"))
        if claims.get("iss") != self.client_email:
            raise bad("assertion iss %r, not %r" % (claims.get("iss"), self.client_email))
        if claims.get("aud") != self.token_uri:
            raise bad("assertion aud %r, not %r" % (claims.get("aud"), self.token_uri))
        if FCM_SCOPE not in str(claims.get("scope", "")).split():
            raise bad("assertion scope %r lacks %s" % (claims.get("scope"), FCM_SCOPE))
        try:
            iat, exp = int_claim(claims, "iat", 400), int_claim(claims, "exp", 400)
        except Refused as r:
            raise bad(r.reason)
        now = time.time()
        if not (now - 300 <= iat <= now + 60) or exp <= now or exp - iat > 3600 or exp <= iat:
            raise bad("assertion times iat %d exp %d (now %d): not issued now, or over an hour" % (iat, exp, now))
        token = "ya29.fake-" + uuid.uuid4().hex
        with self.lock:
            self.tokens[token] = now + self.expires_in
            self.token_requests.append(claims)
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}).encode()

    def send(self, headers, body):
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        with self.lock:
            expiry = self.tokens.get(token.strip())
        if scheme.lower() != "bearer" or expiry is None or expiry <= time.time():
            raise Refused("bearer token %s" % ("expired" if expiry is not None else "unknown or missing"),
                          401, fcm_error(401), {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
        if not headers.get("content-type", "").startswith("application/json"):
            raise Refused("Content-Type %r, not application/json" % headers.get("content-type"), 400, fcm_error(400))
        req = json_body(body)
        if not isinstance(req, dict) or not isinstance(req.get("message"), dict) or \
                set(req) - {"message", "validate_only"}:
            raise Refused("body is not {\"message\": {...}}: %r" % req, 400, fcm_error(400))
        msg = req["message"]
        unknown = set(msg) - FCM_MESSAGE_FIELDS
        if unknown:
            raise Refused("unknown message fields %r" % sorted(unknown), 400, fcm_error(400))
        targets = [k for k in ("token", "topic", "condition") if k in msg]
        if targets != ["token"] or not isinstance(msg["token"], str) or not msg["token"]:
            raise Refused("message targets %r, not one token" % targets, 400, fcm_error(400))
        data = msg.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise Refused("data must map strings to strings: %r" % data, 400, fcm_error(400))
        if len(json.dumps(data).encode()) > 4096:
            raise Refused("data payload over 4096 bytes", 400, fcm_error(400))
        android = msg.get("android", {})
        if not isinstance(android, dict) or set(android) - FCM_ANDROID_FIELDS:
            raise Refused("android %r: not an AndroidConfig" % android, 400, fcm_error(400))
        if "priority" in android and str(android["priority"]).upper() not in ("NORMAL", "HIGH"):
            raise Refused("android.priority %r" % android["priority"], 400, fcm_error(400))
        if "ttl" in android and not re.match(r"^[0-9]+(\.[0-9]{1,9})?s$", str(android["ttl"])):
            raise Refused("android.ttl %r is not a duration like \"86400s\"" % android["ttl"], 400, fcm_error(400))
        if "collapse_key" in android and not isinstance(android["collapse_key"], str):
            raise Refused("android.collapse_key %r" % android["collapse_key"], 400, fcm_error(400))
        for k in data:
            # As FCM: "from", "message_type" and the google./gcm. prefixes are reserved.
            if k in ("from", "message_type") or k.startswith(("google.", "gcm.")):
                raise Refused("Invalid data payload key: %s (reserved)" % k, 400, fcm_error(400))
        status, h, payload = self.planned(msg["token"], 200)
        if status == 200:
            h["Content-Type"] = "application/json"
            payload = json.dumps({"name": "projects/%s/messages/%s" % (self.project_id, uuid.uuid4().hex)}).encode()
        self.record(msg["token"], status, notification=data, message=msg)
        return status, h, payload


# ---- Apple Push Notification service (HTTP/2) --------------------------------

class ApnsFake(Fake):
    """APNs over HTTP/2 with prior knowledge (no TLS), as tests configure
    push_apns_url http://127.0.0.1:<port>."""

    name = "apns"

    def __init__(self, port=None, folder=None, team_id="TEAM123456", key_id="KEY1234567",
                 topic="org.mqchat.app", one_connection_per_request=True):
        super().__init__()
        self.port = port or harness.free_port()
        # APNs keeps connections open. But libcurl before 8.0 (Debian 12 has
        # 7.88.1) fails every request that reuses an HTTP/2 connection made
        # with prior knowledge, "Error in the HTTP2 framing layer" before
        # anything is sent (curl issue 10634, fixed by pull request 10643).
        # Only plain-text tests use prior knowledge (https negotiates h2 with
        # ALPN), so by default the fake ends each connection once it is idle
        # (GOAWAY), and the next request opens a new one.
        self.one_connection_per_request = one_connection_per_request
        self.url = "http://127.0.0.1:%d" % self.port
        self.team_id = team_id
        self.key_id = key_id
        self.topic = topic
        self.key = ec.generate_private_key(ec.SECP256R1())
        folder = folder or tempfile.mkdtemp(prefix="mqchat-apns-")
        self.key_path = os.path.join(folder, "AuthKey_%s.p8" % key_id)
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        self.provider_tokens = []   # distinct provider tokens, in the order first seen
        self.connections = 0        # HTTP/2 connections accepted
        self.is_down = False
        self.listener = None
        self.conns = set()
        self.up()

    def error_body(self, status):
        reason = {400: "BadDeviceToken", 403: "InvalidProviderToken", 410: "Unregistered",
                  413: "PayloadTooLarge", 429: "TooManyRequests", 500: "InternalServerError",
                  503: "ServiceUnavailable"}.get(status, "InternalServerError")
        body = {"reason": reason}
        if status == 410:
            body["timestamp"] = int(time.time() * 1000)
        return json.dumps(body).encode()

    def up(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.listener = s
        self.is_down = False
        threading.Thread(target=self._accept, args=(s,), daemon=True, name="apns-%d" % self.port).start()

    def down(self):
        if self.listener is None:
            return
        self.is_down = True
        l, self.listener = self.listener, None
        try:
            l.shutdown(socket.SHUT_RDWR)   # wakes accept()
        except OSError:
            pass
        l.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.down()

    def _accept(self, listener):
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            if self.is_down:
                sock.close()
                return
            with self.lock:
                self.conns.add(sock)
                self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False,
                                                                          header_encoding="utf-8"))
        streams = {}   # stream id -> [headers dict, body bytes]
        answered = False
        try:
            conn.initiate_connection()
            sock.sendall(conn.data_to_send())
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError as e:
                    self.refuse("(connection)", Refused("HTTP/2 protocol error: %s" % e))
                    sock.sendall(conn.data_to_send())
                    return
                for ev in events:
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = [ev.headers, b""]
                    elif isinstance(ev, h2.events.DataReceived):
                        if ev.stream_id in streams:
                            streams[ev.stream_id][1] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        hdrs, body = streams.pop(ev.stream_id, ([], b""))
                        self._respond(conn, ev.stream_id, hdrs, body)
                    elif isinstance(ev, h2.events.StreamReset):
                        streams.pop(ev.stream_id, None)
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        sock.sendall(conn.data_to_send())
                        return
                answered = answered or any(isinstance(ev, h2.events.StreamEnded) for ev in events)
                if self.one_connection_per_request and answered and not streams:
                    conn.close_connection()
                    sock.sendall(conn.data_to_send())
                    self._linger(sock)
                    return
                out = conn.data_to_send()
                if out:
                    sock.sendall(out)
        except OSError:
            return
        finally:
            with self.lock:
                self.conns.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    @staticmethod
    def _linger(sock):
        """After GOAWAY: no more writes, and read until the client closes
        (closing with its bytes unread would reset the connection)."""
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass

    def _respond(self, conn, stream_id, hdrs, body):
        headers = {}
        for k, v in hdrs:
            headers[k if isinstance(k, str) else k.decode()] = v if isinstance(v, str) else v.decode()
        path = headers.get(":path", "")
        try:
            status, h, payload = self.handle(headers, body)
        except Refused as r:
            self.refuse(path, r)
            status, h, payload = r.status, {}, r.body or json.dumps({"reason": r.reason.split(":")[0]}).encode()
        if self.is_down:
            return
        out = [(":status", str(status))] + [(k.lower(), str(v)) for k, v in h.items()]
        if payload:
            out.append(("content-type", "application/json"))
            out.append(("content-length", str(len(payload))))
            conn.send_headers(stream_id, out)
            conn.send_data(stream_id, payload, end_stream=True)
        else:
            conn.send_headers(stream_id, out, end_stream=True)

    def handle(self, headers, body):
        """(status, headers, body) as APNs answers; Refused with APNs's reason
        strings (the first word of the reason is the "reason" answered)."""
        def bad(reason, status=400, why=""):
            return Refused(reason + (": " + why if why else ""), status,
                           json.dumps({"reason": reason}).encode())
        if headers.get(":method") != "POST":
            raise bad("MethodNotAllowed", 405, headers.get(":method", ""))
        m = re.match(r"^/3/device/([^/?]*)$", headers.get(":path", ""))
        if not m:
            raise bad("BadPath", 404, headers.get(":path", ""))
        token = m.group(1)
        if len(token) < 64 or len(token) % 2 or not re.match(r"^[0-9a-fA-F]+$", token):
            raise bad("BadDeviceToken", 400, token)
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            raise bad("MissingProviderToken", 403, auth[:20])
        jwt = auth[7:].strip()
        header, claims = jwt_parse(jwt, es256_verifier(self.key.public_key(), 403), 403)
        if header.get("kid") != self.key_id:
            raise bad("InvalidProviderToken", 403, "kid %r" % header.get("kid"))
        if claims.get("iss") != self.team_id:
            raise bad("InvalidProviderToken", 403, "iss %r" % claims.get("iss"))
        iat = int_claim(claims, "iat", 403)
        now = time.time()
        if iat < now - 3600:
            raise bad("ExpiredProviderToken", 403, "iat %d is over an hour ago" % iat)
        if iat > now + 60:
            raise bad("InvalidProviderToken", 403, "iat %d is in the future" % iat)
        topic = headers.get("apns-topic")
        if topic is None:
            raise bad("MissingTopic")
        if topic != self.topic:
            raise bad("TopicDisallowed", 400, topic)
        if headers.get("apns-push-type") != "alert":
            raise bad("InvalidPushType", 400, repr(headers.get("apns-push-type")))
        if headers.get("apns-priority", "10") not in ("5", "10"):
            raise bad("BadPriority", 400, headers.get("apns-priority"))
        if "apns-expiration" in headers and not re.match(r"^[0-9]+$", headers["apns-expiration"]):
            raise bad("BadExpirationDate", 400, headers["apns-expiration"])
        cid = headers.get("apns-collapse-id")
        if cid is not None and len(cid.encode()) > 64:
            raise bad("BadCollapseId", 400, "%d bytes" % len(cid.encode()))
        apns_id = headers.get("apns-id")
        if apns_id is not None and not re.match(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", apns_id):
            raise bad("BadMessageId", 400, apns_id)
        if not body:
            raise bad("PayloadEmpty")
        if len(body) > APNS_MAX_PAYLOAD:
            raise bad("PayloadTooLarge", 413, "%d bytes" % len(body))
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise bad("BadPayload", 400, body[:40].decode(errors="replace"))   # not an APNs reason: nothing is
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            raise bad("BadPayload", 400, "no aps dictionary")
        if not payload["aps"].get("alert"):
            raise bad("BadPayload", 400, "an alert push without aps.alert")
        with self.lock:
            if jwt not in self.provider_tokens:
                self.provider_tokens.append(jwt)
        status, h, out = self.planned(token, 200)
        if status == 200:
            out = b""
        h["apns-id"] = apns_id or str(uuid.uuid4()).upper()
        self.record(token, status, notification=payload.get("mqchat"), payload=payload, headers=headers)
        return status, h, out


def apns_token():
    """A device token as iOS hands it out: 32 random bytes, hex."""
    return os.urandom(32).hex()


# ---- webhooks ---------------------------------------------------------------

class WebhookFake(HttpFake):
    """An HTTP receiver of mqchat's signed webhooks."""

    name = "webhook"

    def __init__(self, port=None):
        self.secrets = {}   # hook id -> secret (None until set_secret)
        super().__init__(port)

    def hook(self):
        """A new receiving URL: (id, url). set_secret(id, ...) once the
        archiver has answered the registration."""
        hid = uuid.uuid4().hex[:16]
        with self.lock:
            self.secrets[hid] = None
        return hid, "%s/hook/%s" % (self.origin, hid)

    def set_secret(self, hid, secret):
        with self.lock:
            self.secrets[hid] = secret

    def error_body(self, status):
        return b"fake webhook: %d" % status

    def handle(self, method, path, headers, body):
        if method != "POST":
            raise Refused("%s, not POST" % method, 405)
        m = re.match(r"^/hook/([0-9a-f]{16})$", path)
        with self.lock:
            known = m is not None and m.group(1) in self.secrets
            secret = self.secrets.get(m.group(1)) if known else None
        if not known:
            raise Refused("no hook at %s" % path, 404)
        hid = m.group(1)
        if secret is None:
            raise Refused("a request before the test knew the hook's secret", 401)
        if not headers.get("content-type", "").startswith("application/json"):
            raise Refused("Content-Type %r, not application/json" % headers.get("content-type"))
        ts = headers.get("x-mqchat-timestamp", "")
        if not re.match(r"^[0-9]+$", ts):
            raise Refused("X-Mqchat-Timestamp %r is not seconds since the epoch" % ts, 401)
        if abs(time.time() - int(ts)) > WEBHOOK_MAX_AGE:
            raise Refused("X-Mqchat-Timestamp %s is more than %d s off" % (ts, WEBHOOK_MAX_AGE), 401)
        sig = headers.get("x-mqchat-signature", "")
        want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, want):
            raise Refused("X-Mqchat-Signature %r does not match the body and timestamp" % sig, 401)
        notification = json_body(body)
        status, h, payload = self.planned(hid, 200)
        self.record(hid, status, notification=notification, headers=headers)
        return status, h, payload
