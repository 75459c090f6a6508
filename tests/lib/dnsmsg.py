"""DNS messages for tests: queries and responses built by hand (RFC 1035), with name compression
where asked, and a reader of the answers. Used by the world DNS server (tests/lib/servers.py), the
probes, and to seed fuzz/corpus/dns."""
import socket
import struct


def name(n, table=None, base=0):
    """Encodes name; with table (dict suffix -> offset) compresses against earlier names."""
    out = b""
    labels = [l for l in n.rstrip(".").split(".") if l]
    for i in range(len(labels)):
        suffix = ".".join(labels[i:]).lower()
        if table is not None and suffix in table:
            return out + struct.pack("!H", 0xC000 | table[suffix])
        if table is not None and base + len(out) < 0x3FFF:
            table[suffix] = base + len(out)
        lab = labels[i].encode()
        out += bytes([len(lab)]) + lab
    return out + b"\0"


def query(qid, qname, qtype=1, edns=False):
    m = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    m += name(qname) + struct.pack("!HH", qtype, 1)
    if edns:
        m += b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
    return m


def response(q, answers, rcode=0, compress=True, edns=False):
    """q: the query bytes; answers: list of (owner, type, ttl, value) with type 'A', 'AAAA' or
    'CNAME'."""
    qid, flags = struct.unpack("!HH", q[:4])
    qend = 12
    while q[qend] != 0:
        qend += 1 + q[qend]
    qend += 5
    table = {} if compress else None
    qn = parse_name(q, 12)[0]
    body = name(qn, table, 12) + q[qend - 4:qend]
    for owner, typ, ttl, value in answers:
        rr = name(owner, table, 12 + len(body))
        if typ == "A":
            rd, t = socket.inet_pton(socket.AF_INET, value), 1
        elif typ == "AAAA":
            rd, t = socket.inet_pton(socket.AF_INET6, value), 28
        else:
            rd, t = name(value, table, 12 + len(body) + len(rr) + 10), 5
        body += rr + struct.pack("!HHIH", t, 1, ttl, len(rd)) + rd
    ar = 0
    if edns:
        body += b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
        ar = 1
    hdr = struct.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode, 1, len(answers), 0, ar)
    return hdr + body


def parse_name(m, off):
    labels, jumped, nxt = [], False, None
    while True:
        l = m[off]
        if l & 0xC0 == 0xC0:
            if not jumped:
                nxt = off + 2
            off = ((l & 0x3F) << 8) | m[off + 1]
            jumped = True
            continue
        if l == 0:
            return ".".join(labels), (nxt if jumped else off + 1)
        labels.append(m[off + 1:off + 1 + l].decode("latin1").lower())
        off += 1 + l


def parse(m):
    """Returns (id, rcode, qname, qtype, answers [(owner, type, ttl, value)])."""
    qid, flags, qd, an = struct.unpack("!HHHH", m[:8])
    qn, off = parse_name(m, 12)
    qtype = struct.unpack("!H", m[off:off + 2])[0]
    off += 4
    out = []
    for _ in range(an):
        owner, off = parse_name(m, off)
        t, _c, ttl, rdlen = struct.unpack("!HHIH", m[off:off + 10])
        off += 10
        rd = m[off:off + rdlen]
        if t == 1:
            out.append((owner, "A", ttl, socket.inet_ntop(socket.AF_INET, rd)))
        elif t == 28:
            out.append((owner, "AAAA", ttl, socket.inet_ntop(socket.AF_INET6, rd)))
        elif t == 5:
            out.append((owner, "CNAME", ttl, parse_name(m, off)[0]))
        off += rdlen
    return qid, flags & 0xF, qn, qtype, out
