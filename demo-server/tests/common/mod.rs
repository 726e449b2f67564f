//! Helpers shared by the demo server's tests: a strict little response parser.

#![allow(dead_code, unreachable_pub)]

pub mod fds;
pub mod net;

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub version: u8,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the body was chunked and ended with its last chunk.
    pub chunked: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses one response from the front of `input`, advancing it. `head` says the
/// request was HEAD (no body follows whatever the headers say). Returns `None` if the
/// input holds no complete response.
pub fn parse_response(input: &mut &[u8], head: bool) -> Option<Response> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut res = httparse::Response::new(&mut headers);
    let n = match res.parse(input).expect("valid response head") {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let status = res.code.unwrap();
    let version = res.version.unwrap();
    let headers: Vec<(String, String)> = res
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8(h.value.to_vec()).unwrap(),
            )
        })
        .collect();
    let mut rest = &input[n..];
    let mut response = Response {
        status,
        version,
        headers,
        body: Vec::new(),
        chunked: false,
    };
    let no_body = head || (100..200).contains(&status) || status == 204 || status == 304;
    if !no_body {
        if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().unwrap();
            if rest.len() < len {
                return None;
            }
            response.body = rest[..len].to_vec();
            rest = &rest[len..];
        } else if response
            .header("transfer-encoding")
            .is_some_and(|te| te == "chunked" || te.ends_with(", chunked"))
        {
            loop {
                let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
                let size =
                    usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
                        .unwrap();
                let data = &rest[line_end + 2..];
                if size == 0 {
                    if data.len() < 2 {
                        return None;
                    }
                    assert_eq!(&data[..2], b"\r\n", "no trailers expected");
                    rest = &data[2..];
                    response.chunked = true;
                    break;
                }
                if data.len() < size + 2 {
                    return None;
                }
                response.body.extend_from_slice(&data[..size]);
                assert_eq!(&data[size..size + 2], b"\r\n");
                rest = &data[size + 2..];
            }
        } else {
            panic!("response without framing: {response:?}");
        }
    }
    *input = rest;
    Some(response)
}

/// Parses every response in `bytes` (none of them to HEAD requests).
pub fn parse_all(mut bytes: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match parse_response(&mut bytes, false) {
            Some(r) => out.push(r),
            None => panic!("incomplete response: {:?}", String::from_utf8_lossy(bytes)),
        }
    }
    out
}
