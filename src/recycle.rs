//! The reset-on-return hook, [`Recycle`], and its impls for common types.

use std::collections::{HashMap, HashSet, VecDeque};

/// What to do with an object after its [`Recycle`] hook ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reuse {
    /// The object was reset and may be handed out again.
    Keep,
    /// The object must not be reused; the pool drops it (and counts a discard).
    Discard,
}

/// Reset-on-return hook.
///
/// A [`Pool`](crate::Pool) calls [`recycle`](Recycle::recycle) exactly once every time
/// an object comes back (a guard is dropped, or [`Pool::put`](crate::Pool::put) is
/// called), **on the returning thread, before the object can be seen by anyone
/// else**. The hook either resets the object to a state that is indistinguishable,
/// for the next user, from a fresh one and returns [`Reuse::Keep`], or refuses it with
/// [`Reuse::Discard`] (the pool then drops it).
///
/// # What a good implementation keeps
///
/// Keep the *allocation*, drop the *contents*: `Vec::clear` keeps the capacity, which is
/// the whole point of pooling. Never leave data a previous user wrote where the next
/// user could read it. Refuse objects whose state you cannot prove clean (a writer
/// with unflushed bytes, a connection in an unknown protocol state).
///
/// # Unbounded capacity
///
/// Keeping capacity means one huge request can pin a huge buffer for as long as the
/// pool lives. Report the retained size from [`capacity`](Recycle::capacity) and set
/// [`Builder::max_capacity`](crate::Builder::max_capacity): an object that grew past it
/// is discarded on return instead of being kept.
///
/// # Examples
///
/// ```
/// use recycle_pool::{Pool, Recycle, Reuse};
///
/// struct Request {
///     path: String,
///     headers: Vec<(String, String)>,
///     poisoned: bool,
/// }
///
/// impl Recycle for Request {
///     fn recycle(&mut self) -> Reuse {
///         if self.poisoned {
///             return Reuse::Discard;
///         }
///         self.path.clear();
///         self.headers.clear();
///         Reuse::Keep
///     }
/// }
///
/// let pool = Pool::new(|| Request { path: String::new(), headers: Vec::new(), poisoned: false });
/// let mut req = pool.get();
/// req.path.push_str("/index.html");
/// drop(req); // the hook clears it on the way back
/// assert!(pool.get().path.is_empty());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Recycle`, which `Pool::new` and `Pool::builder` use to reset returned objects",
    label = "no `Recycle` impl for `{Self}`",
    note = "for a type you cannot implement `Recycle` on (one from another crate), build the pool with `Pool::builder_with(create, |obj| {{ /* reset obj */ Reuse::Keep }})`"
)]
pub trait Recycle {
    /// Resets `self` for the next user, or refuses it.
    fn recycle(&mut self) -> Reuse;

    /// How much this object retains across reuse, in a unit the type chooses (elements
    /// for collections, bytes for buffers). Compared against
    /// [`Builder::max_capacity`](crate::Builder::max_capacity). The default, `0`, never
    /// exceeds a bound.
    fn capacity(&self) -> usize {
        0
    }
}

/// `Recycle` for collections whose `clear` drops the contents and keeps the allocation.
macro_rules! clear_and_keep {
    ($(impl<$($param:ident),*> for $ty:ty;)*) => {$(
        impl<$($param),*> Recycle for $ty {
            /// Clears the collection, keeping its allocation.
            fn recycle(&mut self) -> Reuse {
                self.clear();
                Reuse::Keep
            }

            fn capacity(&self) -> usize {
                <$ty>::capacity(self)
            }
        }
    )*};
}

clear_and_keep! {
    impl<T> for Vec<T>;
    impl<> for String;
    impl<T> for VecDeque<T>;
    impl<K, V, S> for HashMap<K, V, S>;
    impl<T, S> for HashSet<T, S>;
}

impl Recycle for bytes::BytesMut {
    /// Clears the buffer, keeping its allocation.
    ///
    /// If part of the buffer was split off and is still alive elsewhere, the capacity
    /// reported afterwards is what this handle can still use without allocating.
    fn recycle(&mut self) -> Reuse {
        self.clear();
        Reuse::Keep
    }

    fn capacity(&self) -> usize {
        bytes::BytesMut::capacity(self)
    }
}

impl<T: Recycle + ?Sized> Recycle for Box<T> {
    fn recycle(&mut self) -> Reuse {
        (**self).recycle()
    }

    fn capacity(&self) -> usize {
        (**self).capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Recycle + Default + Extend<E>, E>(item: E, cap: impl Fn(&T) -> usize) {
        let mut value = T::default();
        value.extend(std::iter::once(item));
        let before = cap(&value);
        assert_eq!(Recycle::recycle(&mut value), Reuse::Keep);
        assert_eq!(cap(&value), before, "capacity is kept");
        assert_eq!(Recycle::capacity(&value), before);
    }

    #[test]
    fn std_impls_clear_and_keep_capacity() {
        check::<Vec<u8>, _>(7, |v| v.capacity());
        check::<String, _>('x', |s| s.capacity());
        check::<VecDeque<u8>, _>(7, |v| v.capacity());
        check::<HashMap<u8, u8>, _>((1, 2), |m| m.capacity());
        check::<HashSet<u8>, _>(1, |s| s.capacity());

        let mut v = vec![1, 2, 3];
        Recycle::recycle(&mut v);
        assert!(v.is_empty());
        let mut s = String::from("secret");
        Recycle::recycle(&mut s);
        assert!(s.is_empty());
    }

    #[test]
    fn bytes_mut_clears_and_keeps_capacity() {
        let mut b = bytes::BytesMut::with_capacity(64);
        b.extend_from_slice(b"secret");
        assert_eq!(Recycle::recycle(&mut b), Reuse::Keep);
        assert!(b.is_empty());
        assert!(Recycle::capacity(&b) >= 64);
    }

    #[test]
    fn boxed_delegates() {
        let mut b: Box<Vec<u8>> = Box::new(vec![1; 10]);
        assert_eq!(Recycle::recycle(&mut b), Reuse::Keep);
        assert!(b.is_empty());
        assert!(Recycle::capacity(&b) >= 10);
    }
}
