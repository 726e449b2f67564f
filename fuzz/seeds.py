#!/usr/bin/env python3
"""Writes the seed corpus under corpus/<target>/ (run from fuzz/). Idempotent."""
import os

def write(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

CRLF = "\r\n"
def req(lines, body=b""):
    return (CRLF.join(lines) + CRLF + CRLF).encode() + body

SMUGGLED = req(["GET /smuggled HTTP/1.1", "Host: a"])

requests = {
    "curl": req(["GET / HTTP/1.1", "Host: 127.0.0.1:8080", "User-Agent: curl/8.5.0", "Accept: */*"]),
    "browser": req(["GET /bytes/10 HTTP/1.1", "Host: localhost", "Connection: keep-alive",
                    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
                    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                    "Accept-Encoding: gzip, deflate, br", "Accept-Language: en-US,en;q=0.9"]),
    "http10": req(["GET / HTTP/1.0"]),
    "http10_keepalive": req(["GET /stats HTTP/1.0", "Connection: keep-alive"]) + req(["HEAD / HTTP/1.0"]),
    "pipelined": req(["GET / HTTP/1.1", "Host: a"]) + req(["GET /status/404 HTTP/1.1", "Host: a"]) + req(["HEAD /bytes/5 HTTP/1.1", "Host: a", "Connection: close"]),
    "echo_length": req(["POST /echo HTTP/1.1", "Host: a", "Content-Length: 11"], b"hello world"),
    "echo_chunked": req(["POST /echo HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"], b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"),
    "expect_continue": req(["POST /echo HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 2"], b"ok"),
    "absolute_form": req(["GET http://example.com/bytes/3?x=1 HTTP/1.1", "Host: example.com"]),
    "bare_lf": b"GET / HTTP/1.1\nHost: a\n\n",
    # Malformed and smuggling shapes.
    "cl_te": req(["POST /echo HTTP/1.1", "Host: a", "Content-Length: 4", "Transfer-Encoding: chunked"], b"0\r\n\r\n"),
    "cl_cl": req(["POST /echo HTTP/1.1", "Host: a", "Content-Length: 4", "Content-Length: 5"], b"abcde"),
    "te_gzip": req(["POST /echo HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked"]),
    "te_http10": req(["POST /echo HTTP/1.0", "Transfer-Encoding: chunked"], b"0\r\n\r\n"),
    "chunk_bare_lf": req(["POST /echo HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"], b"5\nhello\n0\n\n"),
    "chunk_overflow": req(["POST /echo HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"], b"ffffffffffffffffff\r\n"),
    "te_space": b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    "no_host": req(["GET / HTTP/1.1"]),
    "two_hosts": req(["GET / HTTP/1.1", "Host: a", "Host: b"]),
    "http2": req(["GET / HTTP/2.0", "Host: a"]),
    "long_target": req(["GET /" + "a" * 3000 + " HTTP/1.1", "Host: a"]),
    "expect_other": req(["POST /echo HTTP/1.1", "Host: a", "Expect: 200-ok"]),
    "body_too_large": req(["POST /echo HTTP/1.1", "Host: a", "Content-Length: 99999"]),
    "nul_in_header": b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
    # Issue 14, item 1: a body is consumed per its framing whatever the route does; the
    # request smuggled inside it is never answered.
    "smuggled_cl": req(["GET /bytes/3 HTTP/1.1", "Host: a", "Content-Length: %d" % len(SMUGGLED)], SMUGGLED) + req(["GET / HTTP/1.1", "Host: a"]),
    "smuggled_chunked": req(["GET /bytes/3 HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"], b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n") + req(["GET / HTTP/1.1", "Host: a"]),
    "smuggled_head": req(["HEAD /status/204 HTTP/1.1", "Host: a", "Content-Length: %d" % len(SMUGGLED)], SMUGGLED) + req(["GET / HTTP/1.1", "Host: a"]),
    "body_to_stats": req(["DELETE /stats HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"], b"3;x=\"y\"\r\nabc\r\n0\r\nT: 1\r\n\r\n") + req(["GET / HTTP/1.1", "Host: a"]),
    "put_body_keepalive": req(["PUT / HTTP/1.1", "Host: a", "Content-Length: 3"], b"abc") + req(["GET / HTTP/1.1", "Host: a"]),
    "expect_declined": req(["POST / HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 2"]) + b"ok",
    # Items 2 and 7, through the connection.
    "chunk_hex_prefix": req(["POST /status/200 HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"], b"0x5\r\nhello\r\n0\r\n\r\n") + req(["GET / HTTP/1.1", "Host: a"]),
    "chunk_junk": req(["POST /echo HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"], b"5zzz\r\nhello\r\n0\r\n\r\n"),
    "chunk_space_digits": req(["POST /echo HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"], b"1 0\r\na\r\n0\r\n\r\n"),
    "trailer_no_colon": req(["POST /echo HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"], b"0\r\nno colon here\r\n\r\n") + req(["GET / HTTP/1.1", "Host: a"]),
    # Item 4: Host values (RFC 9112 §3.2).
    "invalid_host": req(["GET / HTTP/1.1", "Host: a b/c@@"]),
    "host_port_letters": req(["GET / HTTP/1.1", "Host: a:b"]),
    "host_ip_literal": req(["GET / HTTP/1.1", "Host: [::1]:8080"]),
    "host_pct": req(["GET / HTTP/1.1", "Host: %41%2e:80"]),
    # Item 5: a request line longer than the head limit (2048 in the check) is 414
    # however it arrives.
    "long_request_line": req(["GET /" + "a" * 2100 + " HTTP/1.1", "Host: a"]),
    # Item 6: no body in an error response to HEAD.
    "head_error": req(["HEAD / HTTP/1.1"]),
    "head_bad_framing": req(["HEAD / HTTP/1.1", "Host: a", "Content-Length: 1", "Content-Length: 2"]),
    # /status/{code} is 200..=599 (RFC 9110 §15).
    "status_600": req(["GET /status/600 HTTP/1.1", "Host: a"]) + req(["GET /status/599 HTTP/1.1", "Host: a"]),
}
prefixes = [b"\x3f\x3f\x3f\x3f", b"\x00\x00\x00\x00", b"\x00\x07\x1f\x3f"]
for name, data in requests.items():
    for i, prefix in enumerate(prefixes):
        write("http_request", f"{name}_{i}", prefix + data)

chunked = {
    "simple": b"5\r\nhello\r\n0\r\n\r\n",
    "ext": b"5;a=b;c\r\nhello\r\n0;x\r\n\r\n",
    "trailers": b"3\r\nabc\r\n0\r\nA: 1\r\nB: 2\r\n\r\nNEXT",
    "hex_case": b"A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
    "bare_lf": b"5\nhello\n0\n\n",
    "long_size": b"00000000000000005\r\nhello\r\n0\r\n\r\n",
    "missing_crlf": b"5\r\nhelloX0\r\n\r\n",
    "incomplete": b"5\r\nhel",
    "tab_ext": b"1\t;x\r\na\r\n0\r\n\r\n",
    "ctl_ext": b"1;\x01\r\na\r\n0\r\n\r\n",
    # Issue 14, items 2 and 7: only `chunk-size [ chunk-ext ] CRLF` (RFC 9112 §7.1.1)
    # and field lines as trailers (§7.1.2).
    "hex_prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "hex_prefix_16": b"0x10\r\n0123456789abcdef\r\n0\r\n\r\n",
    "junk_after_size": b"5zzz\r\nhello\r\n0\r\n\r\n",
    "space_in_size": b"1 0\r\na\r\n0\r\n\r\n",
    "trailing_ws": b"5 \r\nhello\r\n0\r\n\r\n",
    "ext_bws_quoted": b"5 ; a = \"q \\\" ;x\" ;b\r\nhello\r\n0\r\n\r\n",
    "ext_unterminated_quote": b"5;a=\"x\r\nhello\r\n0\r\n\r\n",
    "ext_no_name": b"5;=v\r\nhello\r\n0\r\n\r\n",
    "trailer_no_colon": b"0\r\nno colon here\r\n\r\n",
    "trailer_space_colon": b"0\r\nA : b\r\n\r\n",
    "trailer_fold": b"0\r\nA: b\r\n c\r\n\r\n",
    "trailer_obs_text": b"3\r\nabc\r\n0\r\nA:\r\nB: \t\x80\xff \r\n\r\nNEXT",
}
for name, data in chunked.items():
    # The last prefix sets bit 6: the caller takes half of each data run (unread).
    for i, first in enumerate([b"\x00", b"\x3f", b"\x05", b"\x41"]):
        write("http_chunked", f"{name}_{i}", first + data)

# proxy_headers: u16 LE client length, piece size, flags (bit 0 upstream closes, bit 1
# client closes, bit 2 slow client, bit 3 upstream timeout, bit 4 refused), client
# bytes, upstream bytes.
def resp(lines, body=b""):
    return (CRLF.join(lines) + CRLF + CRLF).encode() + body

OK = resp(["HTTP/1.1 200 OK", "Content-Length: 2"], b"ok")
proxied = {
    "get": (req(["GET /a?b=%20 HTTP/1.1", "Host: site", "Connection: keep-alive, X-Hop", "X-Hop: 1", "X-Forwarded-For: 10.0.0.1"]), OK),
    "post_length": (req(["POST /up HTTP/1.1", "Host: site", "Content-Length: 5"], b"hello"), OK),
    "post_chunked": (req(["POST /up HTTP/1.1", "Host: site", "Transfer-Encoding: chunked"], b"5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\n"), OK),
    "gzip_chunked": (req(["POST /up HTTP/1.1", "Host: site", "Transfer-Encoding: gzip, chunked"], b"2\r\n\x1f\x8b\r\n0\r\n\r\n"), OK),
    "get_with_body": (req(["GET /q HTTP/1.1", "Host: site", "Content-Length: 3"], b"abc"), OK),
    "get_length_0": (req(["GET /q HTTP/1.1", "Host: site", "Content-Length: 0"]), OK),
    "pipelined": (req(["GET /1 HTTP/1.1", "Host: s"]) + req(["HEAD /2 HTTP/1.1", "Host: s"]) + req(["GET /3 HTTP/1.1", "Host: s", "Connection: close"]),
                  OK + resp(["HTTP/1.1 200 OK", "Content-Length: 9"]) + resp(["HTTP/1.1 200 OK", "Transfer-Encoding: chunked"], b"3\r\nabc\r\n0\r\n\r\n")),
    "http10": (req(["GET / HTTP/1.0"]), resp(["HTTP/1.1 200 OK", "Transfer-Encoding: chunked"], b"3\r\nabc\r\n0\r\n\r\n")),
    "expect": (req(["POST /e HTTP/1.1", "Host: s", "Expect: 100-continue", "Content-Length: 2"], b"hi"),
               resp(["HTTP/1.1 100 Continue"]) + resp(["HTTP/1.1 103 Early Hints", "Link: </x>"]) + OK),
    "close_delimited": (req(["GET / HTTP/1.1", "Host: s"]), resp(["HTTP/1.1 200 OK"], b"until the end")),
    "resp_cl_te": (req(["GET / HTTP/1.1", "Host: s"]), resp(["HTTP/1.1 200 OK", "Content-Length: 2", "Transfer-Encoding: chunked"], b"ok")),
    "resp_bare_lf": (req(["GET / HTTP/1.1", "Host: s"]), b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    "resp_101": (req(["GET / HTTP/1.1", "Host: s"]), resp(["HTTP/1.1 101 Switching Protocols", "Upgrade: x"])),
    "resp_extra": (req(["GET / HTTP/1.1", "Host: s"]) + req(["GET /2 HTTP/1.1", "Host: s"]), OK + b"HTTP/1.1 200 OK\r\n" + OK),
    "resp_truncated": (req(["GET / HTTP/1.1", "Host: s"]), resp(["HTTP/1.1 200 OK", "Content-Length: 100"], b"abc")),
    "resp_bad_chunk": (req(["GET / HTTP/1.1", "Host: s"]), resp(["HTTP/1.1 200 OK", "Transfer-Encoding: chunked"], b"zz\r\n")),
    "resp_coded": (req(["GET / HTTP/1.1", "Host: s"]), resp(["HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"], b"2\r\n\x1f\x8b\r\n0\r\n\r\n")),
    "resp_304": (req(["GET / HTTP/1.1", "Host: s"]), resp(["HTTP/1.1 304 Not Modified", "Content-Length: 50"])),
    # Smuggling shapes: nothing may reach the upstream.
    "cl_te": (req(["POST / HTTP/1.1", "Host: s", "Content-Length: 4", "Transfer-Encoding: chunked"], b"0\r\n\r\n"), OK),
    "te_cl": (req(["POST / HTTP/1.1", "Host: s", "Transfer-Encoding: chunked", "Content-Length: 4"], b"0\r\n\r\n"), OK),
    "cl_cl": (req(["POST / HTTP/1.1", "Host: s", "Content-Length: 4", "Content-Length: 5"], b"abcde"), OK),
    "cl_list": (req(["POST / HTTP/1.1", "Host: s", "Content-Length: 4, 5"], b"abcde"), OK),
    "te_gzip": (req(["POST / HTTP/1.1", "Host: s", "Transfer-Encoding: gzip"], b"abc"), OK),
    "te_twice": (req(["POST / HTTP/1.1", "Host: s", "Transfer-Encoding: chunked, chunked"], b"0\r\n\r\n"), OK),
    "te_http10": (req(["POST / HTTP/1.0", "Transfer-Encoding: chunked"], b"0\r\n\r\n"), OK),
    "space_colon": (b"POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", OK),
    "obs_fold": (b"GET / HTTP/1.1\r\nHost: s\r\nX: a\r\n b\r\n\r\n", OK),
    "nul_value": (b"GET / HTTP/1.1\r\nHost: s\r\nX: a\x00b\r\n\r\n", OK),
    "cr_target": (b"GET /a\rb HTTP/1.1\r\nHost: s\r\n\r\n", OK),
    "bare_lf": (b"GET / HTTP/1.1\nHost: s\n\n", OK),
    "bad_name": (b"GET / HTTP/1.1\r\nHost: s\r\nA B: c\r\n\r\n", OK),
    "bad_version": (req(["GET / HTTP/1.7", "Host: s"]), OK),
    "userinfo": (req(["GET http://u@evil/ HTTP/1.1", "Host: s"]), OK),
    # Review items 1, 6, 7, D4: lists split outside quoted-strings only (RFC 9110
    # §5.6.4), OPTIONS * (RFC 9112 §3.2.4), Max-Forwards (RFC 9110 §7.6.2), CONNECT and
    # TRACE answered by the proxy, `_` in a field name.
    "te_quoted_comma": (req(["POST / HTTP/1.1", "Host: s", 'Transfer-Encoding: x;p="a,b", chunked'], b"3\r\nabc\r\n0\r\n\r\n"), OK),
    "te_unterminated_quote": (req(["POST / HTTP/1.1", "Host: s", 'Transfer-Encoding: x;p="a, chunked'], b"0\r\n\r\n"), OK),
    "te_escaped_quote": (req(["POST / HTTP/1.1", "Host: s", 'Transfer-Encoding: x;p="a\\", chunked'], b"0\r\n\r\n"), OK),
    "resp_te_quoted_comma": (req(["GET / HTTP/1.1", "Host: s"]), resp(["HTTP/1.1 200 OK", 'Transfer-Encoding: x;p="a,b", chunked'], b"2\r\nok\r\n0\r\n\r\n")),
    "resp_te_unterminated_quote": (req(["GET / HTTP/1.1", "Host: s"]), resp(["HTTP/1.1 200 OK", 'Transfer-Encoding: x;p="a, chunked'], b"2\r\nok\r\n0\r\n\r\n")),
    "options_absolute": (req(["OPTIONS http://a.example HTTP/1.1", "Host: a.example", "Max-Forwards: 3"]), OK),
    "options_max_forwards_0": (req(["OPTIONS * HTTP/1.1", "Host: s", "Max-Forwards: 0"]) + req(["GET / HTTP/1.1", "Host: s"]), OK),
    "options_max_forwards_bad": (req(["OPTIONS * HTTP/1.1", "Host: s", "Max-Forwards: 1, 2"]), OK),
    "trace": (req(["TRACE / HTTP/1.1", "Host: s", "Max-Forwards: 0"]) + req(["GET / HTTP/1.1", "Host: s"]), OK),
    "connect": (req(["CONNECT a.example:443 HTTP/1.1", "Host: a.example:443"]) + req(["GET /tunnelled HTTP/1.1", "Host: s"]), OK),
    "underscore_name": (req(["GET / HTTP/1.1", "Host: s", "X_Forwarded_For: 6.6.6.6"]), OK),
}
for name, (client, upstream) in proxied.items():
    for i, (step, flags) in enumerate([(0x3f, 0), (6, 0x01), (0, 0x06), (2, 0x18), (13, 0x0b)]):
        head = len(client).to_bytes(2, "little") + bytes([step, flags])
        write("proxy_headers", f"{name}_{i}", head + client + upstream)

ops = {
    "get_drop": bytes([2, 2, 0, 0, 1, 0] * 8),
    "detach_put": bytes([1, 1, 0, 0, 0, 0, 2, 0, 3, 0, 1, 0]),
    "trim": bytes([3, 4, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 4, 0, 4, 0, 0, 0]),
    "discard": bytes([1, 2, 0, 0, 5, 0, 0, 0, 6, 0, 7, 0]),
    "owned": bytes([0, 0, 6, 0, 6, 0, 7, 1, 7, 0, 6, 0]),
    "mixed": bytes(range(256)),
}
for name, data in ops.items():
    write("pool_ops", name, data)
