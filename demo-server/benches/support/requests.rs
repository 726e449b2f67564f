//! The requests and the upstream response the fake-connection benchmarks send
//! (`fakeconn.rs` times them, `instructions.rs` counts their instructions).

/// Go's request for `BenchmarkServerFakeConnNoKeepAlive`.
pub(crate) const BROWSER_REQUEST: &[u8] = b"GET / HTTP/1.0\r\n\
Host: golang.org\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_8_2) AppleWebKit/537.17 (KHTML, like Gecko) Chrome/24.0.1312.52 Safari/537.17\r\n\
Accept-Encoding: gzip,deflate,sdch\r\n\
Accept-Language: en-US,en;q=0.8\r\n\
Accept-Charset: ISO-8859-1,utf-8;q=0.7,*;q=0.3\r\n\r\n";

/// Go's request for `BenchmarkServerFakeConnWithKeepAliveLite`.
pub(crate) const LITE_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: golang.org\r\n\r\n";

/// What the fake upstream answers: a small response, as a typical API's.
pub(crate) const UPSTREAM_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: upstream\r\n\
Content-Type: text/plain; charset=utf-8\r\nDate: Tue, 15 Nov 1994 08:12:31 GMT\r\n\
Content-Length: 13\r\n\r\nHello, World!";
