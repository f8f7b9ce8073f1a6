"""The node's spool, the broker's side (plugin/spool.c, common/spool.h): a
real mosquitto with the plugin and plugin_opt_spool_mb, and DATA/spool read
here with struct, a second reading of the format of common/spool.h.

What is accepted is in the spool, in order, with its fields, before its
PUBACK; what is refused is not; a full spool refuses with `unavailable`;
bad values stop the broker; a killed or restarted broker keeps the spool
and its seq."""
import json
import os
import signal
import struct
import time
from collections import namedtuple

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import harness
from test_plugin_refusals import notices
from plugin_util import (PROTOCOLS, assert_denied_publish, expect_msg, expect_none, inbox, login,
                         publish, room, subscribe_ok)

PW = "password-xxxx"
# PUBACK reason codes of an accepted publish: MQTT 5 says 0x10 when nobody
# subscribed, 3.1.1 has none (0).
OK = (0, 0x10)

# ---- the file (common/spool.h) ----

HEADER_SIZE = 4096
REC_MAGIC = 0x5352
MESSAGE, PAD = 1, 2
F_STORE = 1
READER_LINE = 128           # two cache lines per reader slot, from offset 128

Rec = namedtuple("Rec", "pos end seq time_ms flags client_id topic payload corr resp_topic")


class Spool:
    """One look at DATA/spool: its header and its records from the
    archiver's position to the write position."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        (magic, self.version, hsize, self.ring, self.epoch,
         self.created_ms) = struct.unpack_from("=8sIIQQq", d, 0)
        assert magic == b"MQCSPOOL" and hsize == HEADER_SIZE, (magic, hsize)
        assert len(d) == HEADER_SIZE + self.ring, (len(d), self.ring)
        self.write_pos, self.next_seq = struct.unpack_from("=QQ", d, 64)
        self.archiver_pos, self.archiver_hard = struct.unpack_from("=QI", d, READER_LINE)
        self.records = self._records(self.archiver_pos)

    def _records(self, pos):
        d, out = self.data, []
        while pos < self.write_pos:
            off = HEADER_SIZE + pos % self.ring
            length, kind, magic = struct.unpack_from("=IHH", d, off)
            assert magic == REC_MAGIC and length % 8 == 0 and length >= 8, (pos, length, magic)
            if kind == PAD:
                assert off + length == HEADER_SIZE + self.ring, "a PAD ends at the ring's end"
                pos += length
                continue
            assert kind == MESSAGE, kind
            seq, t, flags, plen, clen, tlen, corr_len, rlen = struct.unpack_from("=QqIIHHHH", d, off + 8)
            p = off + 40
            cid = d[p:p + clen].decode()
            assert d[p + clen] == 0
            p += clen + 1
            topic = d[p:p + tlen].decode()
            assert d[p + tlen] == 0
            p += tlen + 1
            resp = None
            if rlen:
                resp = d[p:p + rlen].decode()
                p += rlen + 1
            corr = d[p:p + corr_len] if corr_len else None
            p += corr_len
            payload = d[p:p + plen]
            p += plen
            assert (p - off + 7) // 8 * 8 == length, "the record's length is its fields, padded"
            out.append(Rec(pos, pos + length, seq, t, flags, cid, topic, payload, corr, resp))
            pos += length
        return out


def spool_path(broker):
    return os.path.join(broker.datadir, "spool")


def consume(broker, pos):
    """What the archiver does after its commit: move its position."""
    fd = os.open(spool_path(broker), os.O_RDWR)
    try:
        os.pwrite(fd, struct.pack("=Q", pos), READER_LINE)
    finally:
        os.close(fd)


def publish_props(c, topic, payload, resp_topic, corr):
    """An MQTT 5 QoS 1 publish with a response topic and correlation data;
    the PUBACK's reason code."""
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = resp_topic
    props.CorrelationData = corr
    info = c.c.publish(topic, payload, qos=1, properties=props)
    return harness.wait_for(lambda: c.puback_reasons.get(info.mid) is not None
                            and c.puback_reasons[info.mid] + 1, what="PUBACK for %s" % topic) - 1


@pytest.fixture
def people(store):
    for u in ("alice", "bob", "carol"):
        store.add_user(u)
    store.add_user("archiver", kind="service")
    store.add_room("lab", members=["alice", "bob"])
    store.block("bob", "carol")


# ---- what is spooled ----

def test_accepted_publishes_are_spooled_in_order(people, make_broker, clients):
    b = make_broker(plugin_opts={"spool_mb": 1})
    sp = Spool(spool_path(b))
    assert (sp.version, sp.ring, sp.write_pos, sp.next_seq, sp.archiver_pos, sp.archiver_hard) == (
        1, 1 << 20, 0, 1, 0, 1)
    assert os.stat(spool_path(b)).st_mode & 0o777 == 0o600
    alice = login(clients, b, "alice", PW, client_id="alice@phone", v5=True)
    subscribe_ok(alice, "chat/notice/alice")
    bob = login(clients, b, "bob", PW, v5=False)
    carol = login(clients, b, "carol", PW, v5=True)
    t0 = int(time.time() * 1000)

    accepted = []
    m1 = harness.envelope("hi bob", id="m1")
    assert publish(alice, inbox("bob", "alice"), m1) in OK
    accepted.append(("alice@phone", inbox("bob", "alice"), m1.encode(), None, None))
    m2 = harness.envelope("hi lab", id="m2")
    publish(bob, room("lab", "bob"), m2)
    accepted.append(("bob", room("lab", "bob"), m2.encode(), None, None))
    # QoS 0 too: the archiver's subscription takes it today.
    m3 = harness.envelope("quick", id="m3")
    publish(alice, inbox("bob", "alice"), m3, qos=0)
    accepted.append(("alice@phone", inbox("bob", "alice"), m3.encode(), None, None))
    # A request keeps its MQTT 5 response topic and correlation data.
    req = json.dumps({"id": "r1", "op": "history", "with": "bob"})
    assert publish_props(alice, "chat/rpc/alice/req", req, "chat/rpc/alice/resp", b"\x00\x01c") in OK
    accepted.append(("alice@phone", "chat/rpc/alice/req", req.encode(), b"\x00\x01c",
                     "chat/rpc/alice/resp"))
    # On a chat message the plugin drops them before delivery: not spooled either.
    m4 = harness.envelope("with props", id="m4")
    assert publish_props(alice, inbox("bob", "alice"), m4, "chat/x", b"zz") in OK
    accepted.append(("alice@phone", inbox("bob", "alice"), m4.encode(), None, None))

    # Refused: not spooled. Not the archiver's: not spooled.
    refused = [
        (alice, inbox("bob", "alice"), "not json"),                                   # envelope
        (carol, inbox("bob", "carol"), harness.envelope("x", id="c1")),               # blocked
        (alice, room("lab", "bob"), harness.envelope("x", id="c2")),                  # not sender
        (carol, room("lab", "carol"), harness.envelope("x", id="c3")),                # not member
    ]
    for c, topic, payload in refused:
        assert_denied_publish(c, publish(c, topic, payload), topic)
    assert publish(alice, "chat/typing/bob/alice", json.dumps({"typing": True}), qos=0) is None
    # A receipt after it all: everything before it was taken in order.
    m5 = harness.receipt("m2", id="m5")
    assert publish(alice, inbox("bob", "alice"), m5) in OK
    accepted.append(("alice@phone", inbox("bob", "alice"), m5.encode(), None, None))

    sp = Spool(spool_path(b))
    got = [(r.client_id, r.topic, r.payload, r.corr, r.resp_topic) for r in sp.records]
    assert got == accepted
    assert [r.seq for r in sp.records] == list(range(1, len(accepted) + 1))
    assert sp.next_seq == len(accepted) + 1
    assert all(r.flags == F_STORE for r in sp.records)
    now = int(time.time() * 1000)
    assert all(t0 - 1000 <= r.time_ms <= now + 1000 for r in sp.records), [r.time_ms for r in sp.records]
    assert sp.records[-1].end == sp.write_pos


@pytest.mark.parametrize("v5", PROTOCOLS)
def test_the_archivers_own_publishes_are_spooled(people, make_broker, clients, v5):
    """The archiver subscribes to chat/inbox/# and chat/room/# without
    no-local (archiver/mqtt.c), so it receives what it publishes there
    itself (room events, edits, deletes, read markers): the spool carries
    them too, with its client id."""
    b = make_broker(plugin_opts={"spool_mb": 1})
    svc = login(clients, b, "archiver", PW, client_id="archiver@0", v5=v5)
    ev = json.dumps({"id": "ev-1", "type": "event", "event": "joined", "user": "carol"})
    rd = json.dumps({"id": "rd-1", "type": "read", "with": "bob", "seq": 5, "unread": 0})
    text = harness.envelope("from the service", id="no-1")
    assert publish(svc, room("lab", "archiver"), ev) in OK + (None,)
    assert publish(svc, inbox("alice", "archiver"), rd) in OK + (None,)
    # A text is never the service's: refused, not spooled.
    assert_denied_publish(svc, publish(svc, inbox("alice", "archiver"), text), "text")
    assert publish(svc, "chat/rpc/alice/resp", json.dumps({"id": "r1", "ok": True})) in OK + (None,)
    svc.barrier()
    sp = Spool(spool_path(b))
    assert [(r.client_id, r.topic, r.payload) for r in sp.records] == [
        ("archiver@0", room("lab", "archiver"), ev.encode()),
        ("archiver@0", inbox("alice", "archiver"), rd.encode()),
    ]


# ---- no room ----

def test_full_spool_refuses_with_unavailable(people, make_broker, clients):
    """1 MiB and no reader: it fills; the next publish gets PUBACK 0x87 and
    the notice `unavailable` with retry_ms, is not delivered and not
    spooled; once the reader moves, publishes go again."""
    b = make_broker(plugin_opts={"spool_mb": 1, "stats_interval": 1})
    alice = login(clients, b, "alice", PW, client_id="alice@phone", v5=True)
    subscribe_ok(alice, "chat/notice/alice")
    bob = login(clients, b, "bob", PW, v5=True)
    subscribe_ok(bob, "chat/inbox/bob/#")
    svc = login(clients, b, "archiver", PW, client_id="archiver@0", v5=True)
    subscribe_ok(svc, "$SYS/mqchat/plugin")
    body = "x" * 60000
    accepted, code = [], 0
    for i in range(40):
        payload = harness.envelope(body, id="big-%02d" % i)
        code = publish(alice, inbox("bob", "alice"), payload)
        if code not in OK:
            break
        accepted.append(payload.encode())
    assert code == 0x87, code
    assert 14 <= len(accepted) <= 17, len(accepted)
    n = notices(alice, 1)[0]
    assert (n["type"], n["code"], n["retry_ms"], n["message"], n["client"], n["topic"], n["ref"]) == (
        "refused", "unavailable", 1000, "the server cannot take messages now", "alice@phone",
        inbox("bob", "alice"), "big-%02d" % len(accepted)), n
    for payload in accepted:
        expect_msg(bob, inbox("bob", "alice"), payload)
    expect_none(bob)
    sp = Spool(spool_path(b))
    assert [r.payload for r in sp.records] == accepted
    assert sp.next_seq == len(accepted) + 1
    b.wait_log("the spool is full")

    # Nothing moves by itself: still refused (a small one would fit in
    # what is left).
    assert publish(alice, inbox("bob", "alice"), harness.envelope(body, id="again")) == 0x87

    def figure(name):
        for line in reversed(svc_lines):
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return None
    svc_lines = []

    def refusals_counted():
        while not svc.messages.empty():
            svc_lines.extend(svc.messages.get_nowait().payload.decode().splitlines())
        return figure('mqchat_plugin_spool_refusals_total{what="publish"}') == 2
    harness.wait_for(refusals_counted, 5, what="mqchat_plugin_spool_refusals_total 2")
    assert figure("mqchat_plugin_spool_appends_total") == len(accepted)
    assert figure('mqchat_plugin_refusals_total{reason="unavailable"}') == 2
    assert figure("mqchat_plugin_spool_size_bytes") == 1 << 20
    assert figure("mqchat_plugin_spool_used_bytes") == sp.write_pos

    # The archiver has read and committed it all.
    consume(b, sp.write_pos)
    after = harness.envelope("after", id="after")
    assert publish(alice, inbox("bob", "alice"), after) in OK
    expect_msg(bob, inbox("bob", "alice"), after)
    b.wait_log("the spool takes messages again (2 refused)")
    sp2 = Spool(spool_path(b))
    assert [(r.seq, r.payload) for r in sp2.records] == [(len(accepted) + 1, after.encode())]


# ---- the option and the file ----

@pytest.mark.parametrize("value,says", [
    ("-1", "plugin_opt_spool_mb must be an integer in 0..4096"),
    ("4097", "plugin_opt_spool_mb must be an integer in 0..4096"),
    ("1.5", "plugin_opt_spool_mb must be an integer in 0..4096"),
    ("lots", "plugin_opt_spool_mb must be an integer in 0..4096"),
])
def test_bad_values_stop_the_broker(store, make_broker, value, says):
    b = make_broker(start=False, plugin_opts={"spool_mb": value})
    assert b.start(expect_fail=True) != 0
    assert says in b.output(), b.output()
    assert not os.path.exists(spool_path(b))


def test_files_the_broker_cannot_use_stop_it(store, make_broker, datadir):
    # A ring too small for the largest message the plugin lets through.
    b = make_broker(start=False, plugin_opts={"spool_mb": 1, "max_payload": 900000})
    assert b.start(expect_fail=True) != 0
    assert "plugin_opt_spool_mb 1 cannot hold a message of plugin_opt_max_payload 900000 bytes:" \
        " make it at least 2" in b.output(), b.output()
    # Another size than the file has.
    b = make_broker(plugin_opts={"spool_mb": 2})
    b.stop()
    b = make_broker(start=False, plugin_opts={"spool_mb": 1})
    assert b.start(expect_fail=True) != 0
    assert "has a ring of 2 MiB, not 1: to resize it" in b.output(), b.output()
    # Not a spool.
    with open(spool_path(b), "r+b") as f:
        f.write(b"SQLite f")
    b = make_broker(start=False, plugin_opts={"spool_mb": 2})
    assert b.start(expect_fail=True) != 0
    assert "is not a spool file" in b.output(), b.output()


def test_one_writer_per_data_folder(store, make_broker):
    make_broker(plugin_opts={"spool_mb": 1})
    second = make_broker(start=False, plugin_opts={"spool_mb": 1})
    assert second.start(expect_fail=True) != 0
    assert "is written by another broker" in second.output(), second.output()


def test_without_the_option_there_is_no_spool(people, make_broker, clients):
    b = make_broker()
    alice = login(clients, b, "alice", PW)
    publish(alice, inbox("bob", "alice"), harness.envelope("x"))
    assert not os.path.exists(spool_path(b))


# ---- a killed broker ----

def test_killed_broker_keeps_what_it_acknowledged_and_seq_goes_on(people, make_broker, clients):
    b = make_broker(plugin_opts={"spool_mb": 1})
    epoch = Spool(spool_path(b)).epoch
    alice = login(clients, b, "alice", PW, client_id="alice@phone", v5=True)
    ids = ["k%03d" % i for i in range(200)]
    infos = [alice.c.publish(inbox("bob", "alice"), harness.envelope("m", id=i), qos=1) for i in ids]
    harness.wait_for(lambda: all(alice.puback_reasons.get(i.mid) in OK for i in infos), 20,
                     what="200 PUBACKs")
    # SIGKILL: nothing of the broker runs after it; the page cache keeps
    # the mapping's writes.
    b.stop(sig=signal.SIGKILL)
    sp = Spool(spool_path(b))
    assert [json.loads(r.payload)["id"] for r in sp.records] == ids
    assert [r.seq for r in sp.records] == list(range(1, 201))
    alice.close()

    b.start()
    alice = login(clients, b, "alice", PW, client_id="alice@phone", v5=True)
    assert publish(alice, inbox("bob", "alice"), harness.envelope("m", id="after")) in OK
    sp = Spool(spool_path(b))
    assert sp.epoch == epoch
    assert [(r.seq, json.loads(r.payload)["id"]) for r in sp.records[-2:]] == [(200, "k199"), (201, "after")]
    b.wait_log("next seq 201")
