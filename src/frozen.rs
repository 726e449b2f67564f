//! Pooled buffers frozen into [`bytes::Bytes`] that go home when the last view drops.
//!
//! [`Bytes::from_owner`] takes any `AsRef<[u8]> + Send + 'static` owner and hands out
//! views of its bytes without copying; clones and slices share the owner, and the last
//! one to drop drops it. The owner here is an owned pool guard, whose drop returns the
//! buffer to its pool (the hook runs then, on the thread that dropped the last view).
//! The guard holds an `Arc` of the pool, so views outliving every other handle of the
//! pool keep it alive, still read their bytes, and the last one frees the buffer with
//! the pool.
//!
//! # Cost
//!
//! `Bytes::from_owner` boxes its owner with a reference count: **one allocation per
//! freeze** (the guard plus a reference count: 40 bytes for an
//! `OwnedPooled<Vec<u8>>` on 64-bit), freed when the last view drops. `bytes` offers no
//! way to supply that header, so this is the floor: the buffer itself is never copied
//! nor allocated once the pool is warm. Against `Bytes::copy_from_slice` (one
//! allocation *and* a copy of the bytes) or `Bytes::from(Vec)` (no allocation, but the
//! buffer is freed instead of reused), a frozen pooled buffer trades a small header
//! allocation for keeping the big one.

use bytes::Bytes;

use crate::pool::OwnedPooled;
use crate::sized::OwnedSizedBuf;

/// The owner handed to `Bytes::from_owner`: the guard, whose drop returns the buffer.
struct Home<T: Send>(OwnedPooled<T>);

impl<T: AsRef<[u8]> + Send> AsRef<[u8]> for Home<T> {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl<T: AsRef<[u8]> + Send + 'static> OwnedPooled<T> {
    /// Freezes the buffer into a [`Bytes`] without copying it: clones and slices share
    /// it, and when the last of them drops, the buffer goes back to the pool (its hook
    /// runs then, on the thread that dropped it). One small allocation per freeze for
    /// `Bytes`' shared header (see the [crate docs](crate#pooled-bytes)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use recycle_pool::Pool;
    ///
    /// let pool = Arc::new(Pool::new(|| Vec::<u8>::with_capacity(4096)));
    /// let mut buf = pool.get_owned();
    /// buf.extend_from_slice(b"hello, world");
    /// let at = buf.as_ptr();
    ///
    /// let bytes = buf.freeze();
    /// let hello = bytes.slice(..5);
    /// assert_eq!(hello.as_ptr(), at); // no copy
    /// drop(bytes);
    /// assert_eq!(pool.stats().idle, 0); // `hello` still holds it
    /// drop(hello);
    /// assert_eq!(pool.stats().idle, 1); // home, cleared by the hook
    /// assert!(pool.get().is_empty());
    /// ```
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(Home(self))
    }
}

impl OwnedSizedBuf {
    /// Freezes the buffer into a [`Bytes`] without copying it; when the last clone or
    /// slice drops, the buffer goes back to the class its capacity fits. As
    /// [`OwnedPooled::freeze`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use recycle_pool::sized::SizedPool;
    ///
    /// let pool = Arc::new(SizedPool::new());
    /// let mut buf = pool.get_owned(10_000);
    /// buf.resize(10_000, b'x');
    /// let body = buf.freeze();
    /// let clone = body.clone();
    /// drop(body);
    /// drop(clone);
    /// assert_eq!(pool.stats().idle(), 1);
    /// ```
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}
