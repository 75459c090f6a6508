"""What the probes share about connections they hold open."""


def still_open(socks):
    """How many of the connected sockets the peer has not closed (nothing to read yet counts as
    open; a byte waiting too; an end or an error does not)."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            n += s.recv(1) != b""
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n
