#!/usr/bin/env python3
"""Hold N idle keep-alive HTTP/1.1 connections open to a server (bench/idle-conns.sh).

    idle_client.py --port 18080 --n 5000

Opens N connections to 127.0.0.1:PORT (at most --parallel of them connecting or
waiting for their response at a time, so the listen backlog never overflows), sends
one `GET / HTTP/1.1` on each and reads its whole response, which must be a 200 that
keeps the connection open (Content-Length or chunked, no `Connection: close`). Then it
prints `READY N` and holds every connection open, idle, until a line (or EOF) arrives
on standard input; then it checks that none was closed meanwhile, resets them all
(SO_LINGER 0), prints `DONE` and exits 0. Any failure prints
`ERROR reason` and exits 1. Standard library only.
"""

import argparse
import errno
import resource
import selectors
import socket
import struct
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def fail(reason):
    print(f"ERROR {reason}", flush=True)
    sys.exit(1)


def response_complete(buf):
    """True once buf holds one whole keep-alive 200 response; fails on anything else."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            fail("response head over 64 KiB")
        return False
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    if not head[0].startswith("HTTP/1.1 200"):
        fail(f"unexpected status line {head[0]!r}")
    fields = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip().lower()
    if "close" in fields.get("connection", ""):
        fail("the server closes the connection (Connection: close)")
    body = buf[end + 4 :]
    if "chunked" in fields.get("transfer-encoding", ""):
        return body.endswith(b"0\r\n\r\n")
    if "content-length" in fields:
        return len(body) >= int(fields["content-length"])
    fail("response without Content-Length or chunked framing")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--parallel", type=int, default=128)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to open them all")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < args.n + 32:
        fail(f"descriptor hard limit {hard} is below {args.n} connections")

    sel = selectors.DefaultSelector()
    held = []  # connections whose response has been read whole: idle from now on
    pending = {}  # socket -> bytearray of the response so far (None: still connecting)
    opened = 0
    deadline = time.monotonic() + args.timeout
    while len(held) < args.n:
        while len(pending) < args.parallel and opened < args.n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((args.host, args.port))
            if err not in (0, errno.EINPROGRESS):
                fail(f"connect: {errno.errorcode.get(err, err)} after {opened} connections")
            pending[s] = None
            sel.register(s, selectors.EVENT_WRITE)
            opened += 1
        if time.monotonic() > deadline:
            fail(f"only {len(held)} of {args.n} connections answered in {args.timeout:.0f} s")
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            if pending[s] is None:  # connected (or failed): send the request
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(f"connect: {errno.errorcode.get(err, err)} after {len(held)} connections")
                if s.send(REQUEST) != len(REQUEST):
                    fail("short write of the request")
                pending[s] = bytearray()
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(65536)
            except OSError as e:
                fail(f"recv: {e} after {len(held)} connections")
            if not data:
                fail(f"the server closed a connection before its response ended (after {len(held)})")
            pending[s] += data
            if response_complete(pending[s]):
                sel.unregister(s)
                del pending[s]
                held.append(s)
    print(f"READY {len(held)}", flush=True)
    sys.stdin.readline()
    # Each connection must still be open: the server closed none of them while idle.
    # Then close with a reset (SO_LINGER 0): no TIME_WAIT left on thousands of local
    # ports, so the next server's run finds the ephemeral port range free again.
    closed = 0
    linger = struct.pack("ii", 1, 0)
    for s in held:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        try:
            if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                closed += 1
        except BlockingIOError:
            pass  # open, nothing to read: as it should be
        except OSError:
            closed += 1
        s.close()
    if closed:
        fail(f"the server closed {closed} idle connections while they were held")
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
