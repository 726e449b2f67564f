//! Small helpers for non-blocking sockets, as mio's examples have them: the two
//! errors that are not failures, and the client socket as a trusted reader.

use std::io::{self, ErrorKind, Read};

use mio::net::TcpStream;
use recycle_pool::io::TrustedRead;

/// The operation would block: wait for the next readiness event.
#[inline]
pub(crate) fn would_block(error: &io::Error) -> bool {
    error.kind() == ErrorKind::WouldBlock
}

/// A signal interrupted the call: try it again.
#[inline]
pub(crate) fn interrupted(error: &io::Error) -> bool {
    error.kind() == ErrorKind::Interrupted
}

/// Whether a client whose socket reported a hang-up has gone: its connection was
/// reset (or failed otherwise). An end of stream alone is a half-close, after which
/// the client may still read its answer (RFC 9112 §9.6); one that closed for good
/// is found when the answer is written.
pub(super) fn hung_up(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte) {
        Ok(_) => false,
        Err(e) => !(would_block(&e) || interrupted(&e)),
    }
}

/// Reads and drops what the client still sends after our last response. Returns
/// whether the connection can be closed now (EOF, error, or too much).
pub(super) fn drain(stream: &mut TcpStream) -> bool {
    let mut scratch = [0u8; 4096];
    for _ in 0..16 {
        match stream.read(&mut scratch) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if would_block(&e) => return false,
            Err(e) if interrupted(&e) => {}
            Err(_) => return true,
        }
    }
    true // 64 KiB after the end: stop being polite
}

/// A client socket read through
/// [`ReadBuf::read_from_trusted`](recycle_pool::io::ReadBuf::read_from_trusted):
/// `recv(2)` writes only the bytes it returns, so a returned read buffer needs only
/// those zeroed, not its whole capacity (a 4 KiB `memset` per request saved).
pub(super) struct Socket<'s>(pub(super) &'s mut TcpStream);

impl Read for Socket<'_> {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl TrustedRead for Socket<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_would_block_and_interrupted_are_not_failures() {
        let kinds = [
            (ErrorKind::WouldBlock, true, false),
            (ErrorKind::Interrupted, false, true),
            (ErrorKind::ConnectionReset, false, false),
            (ErrorKind::TimedOut, false, false),
        ];
        for (kind, blocks, retry) in kinds {
            let error = io::Error::from(kind);
            assert_eq!(would_block(&error), blocks, "{kind:?}");
            assert_eq!(interrupted(&error), retry, "{kind:?}");
        }
    }
}
