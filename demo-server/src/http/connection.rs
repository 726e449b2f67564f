//! The `Connection` field's options (RFC 9110 §7.6.1), read once per head: what they
//! say about the connection (`close`, `keep-alive`, `upgrade`) and, for a proxy,
//! which of the head's fields they name (hop-by-hop: never forwarded).
//!
//! A client may list options by the thousand (`Connection: a,B,a,B,…`, one byte and a
//! comma each, 8,000 in a 16 KiB head, 500,000 in a 1 MiB one), so reading them must
//! cost about what reading any other bytes of the head does. The parsers
//! ([`FramingFields`](super::fields::FramingFields)) read each `Connection` value
//! once: a server for the three options alone ([`read_flags`]), a proxy for those and
//! the names at once (`read`; [`named`] for fields read otherwise), and the proxy
//! takes the fields named from the parser instead of splitting the values again.
//!
//! How one value is read (`scan`), 64 bytes at a time:
//!
//! - the block is copied with its letters lowercased, and its commas and OWS (spaces,
//!   tabs) found as bit masks, in one pass (SSE2 on x86-64, eight bytes at a time
//!   elsewhere);
//! - from the masks alone, the first and the last byte of each element that ends in
//!   the block (OWS aside: the first byte after a comma and its OWS, the last before
//!   OWS and a comma), as two masks whose bits pair up in order;
//! - an element of one byte (first and last at once) or two marks itself in a set of
//!   64 or 4,096 bits (by `CODE`); the names of one and two bytes are matched against
//!   the sets once, at the end;
//! - an element of three to eight bytes is read from the copy as a word (one load,
//!   masked to its length), one of nine to sixteen as two, one of seventeen to
//!   twenty-four as three, and looked up in the head's `Table` of names: a keyed
//!   hash (multiply, xor-shift, multiply; once more for a third word), one slot on
//!   average, one comparison of the word (or the two, or the three): NULs are copied
//!   as 0xff, so an element's words hold no 0 byte and tell its length. A hit sets
//!   the name's entry in a hit list that is resolved to fields once, at the end
//!   (`close`, `keep-alive` and `upgrade` are entries too);
//! - a longer element is sliced from the value, hashed eight bytes at a time and
//!   compared where the hashes agree; one that crosses the end of the block from
//!   before its last 16 bytes (then it has more than 16 bytes, OWS aside, or OWS up
//!   to the block's end) is sliced too, and looked up by its words if it has 24 bytes
//!   or fewer. One whose first byte is in the last 16 is read in the next block
//!   instead, which begins there: each block moves on by 48 bytes at least, and
//!   every element is read once.
//!
//! Elements split at every comma and are trimmed of OWS (RFC 9110 §5.6.1); a token
//! holds no quote, so every comma splits (in `Connection: a"b, close`, `close` is
//! seen), and an element with OWS inside (`a b`) is looked up with it, so it names
//! nothing: field names are tokens (httparse reads no other), and no token holds OWS.
//! Neither does one hold a NUL: a name with a NUL (which only [`named`] can be
//! given) is named by no option.
//! The table is keyed by a per-process random key, so that a client cannot choose
//! names that all land in one slot.

use httparse::Header;

use super::fields::MAX_HEADERS;

/// What the options say about the connection itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `close` is listed.
    pub close: bool,
    /// `keep-alive` is listed.
    pub keep_alive: bool,
    /// `upgrade` is listed.
    pub upgrade: bool,
}

/// The words of an option or a name of nine to sixteen bytes (or the first sixteen
/// of a longer one), [`fold`]ed, zeros after it.
type Pair = [u64; 2];

/// The words of an option or a name of seventeen to twenty-four bytes, [`fold`]ed,
/// zeros after it.
type Triple = [u64; 3];

/// `close` and `upgrade` as [`Scan::word`] has them, and `keep-alive` as
/// [`Scan::pair`] has it.
const CLOSE: u64 = u64::from_le_bytes(*b"close\0\0\0");
const UPGRADE: u64 = u64::from_le_bytes(*b"upgrade\0");
const KEEP_ALIVE: Pair = [
    u64::from_le_bytes(*b"keep-ali"),
    u64::from_le_bytes(*b"ve\0\0\0\0\0\0"),
];

/// Reads one `Connection` value for [`Flags`] alone: the server's reading, which
/// needs no field names.
#[inline]
pub fn read_flags(value: &[u8], flags: &mut Flags) {
    struct Only<'f>(&'f mut Flags);
    impl Visit<'_> for Only<'_> {
        #[inline(always)]
        fn word(&mut self, word: u64) {
            self.0.close |= word == CLOSE;
            self.0.upgrade |= word == UPGRADE;
        }
        #[inline(always)]
        fn pair(&mut self, pair: Pair) {
            self.0.keep_alive |= pair == KEEP_ALIVE;
        }
        #[inline(always)]
        fn long(&mut self, option: &[u8]) {
            // A flag has ten bytes at most; one or two bytes name nothing here.
            match option.len() {
                3..=8 => self.word(pair_of(option)[0]),
                9..=16 => self.pair(pair_of(option)),
                _ => {}
            }
        }
    }
    scan(value, &mut Only(flags));
}

/// The fields of `all` that its `Connection` fields name, as bits by index: for a
/// caller that has the fields but did not parse them with the names collected.
///
/// It expects what httparse gives: names that are tokens and values without control
/// bytes but HTAB. For other bytes it can differ from splitting at commas and
/// trimming: a field whose name has a NUL byte is never named, and an element longer
/// than twenty-four bytes is trimmed of CR, LF and FF as well as SP and HTAB.
pub fn named(all: &[Header<'_>]) -> u128 {
    let connection = all
        .iter()
        .take(MAX_HEADERS)
        .enumerate()
        .filter(|(_, f)| f.name.eq_ignore_ascii_case("connection"))
        .fold(0, |bits, (i, _)| bits | 1 << i);
    if connection == 0 {
        return 0;
    }
    read(all, connection, &mut Flags::default())
}

/// Reads the `Connection` fields of `all` (bits by index in `connection`, at least
/// one), each once: their [`Flags`] into `flags`, and returns the fields they name,
/// as bits by index.
#[inline(never)]
pub(crate) fn read(all: &[Header<'_>], connection: u128, flags: &mut Flags) -> u128 {
    read_keyed(all, connection, flags, option_key())
}

/// [`read`] with the table's key given.
fn read_keyed(all: &[Header<'_>], mut connection: u128, flags: &mut Flags, key: u64) -> u128 {
    let all = &all[..all.len().min(MAX_HEADERS)];
    let mut table = Table::new(all, key);
    while connection != 0 {
        let i = connection.trailing_zeros() as usize;
        connection &= connection - 1;
        scan(all[i].value, &mut table);
    }
    table.finish(flags)
}

/// What [`scan`] hands the elements of a value to, each trimmed of OWS and not
/// empty, its bytes [`fold`]ed where it is read from the block's copy.
trait Visit<'v> {
    /// Whether [`one`](Self::one) and [`two`](Self::two) are to be called (else
    /// such elements are passed over in bulk).
    #[inline(always)]
    fn wants_short(&self) -> [bool; 2] {
        [false; 2]
    }
    /// A one-byte element.
    #[inline(always)]
    fn one(&mut self, _b: u8) {}
    /// A two-byte element.
    #[inline(always)]
    fn two(&mut self, _a: u8, _b: u8) {}
    /// An element of three to eight bytes, as a little-endian word, zeros after it.
    fn word(&mut self, word: u64);
    /// An element of nine to sixteen bytes, as two such words.
    fn pair(&mut self, pair: Pair);
    /// An element of seventeen to twenty-four bytes, as three such words (no flag
    /// is that long).
    #[inline(always)]
    fn triple(&mut self, _triple: Triple) {}
    /// Any element, as it is in the value (in practice, one of more than
    /// twenty-four bytes, or one that crossed a block edge: see [`scan`]).
    fn long(&mut self, option: &'v [u8]);
}

/// `MASKS[n]` keeps the first `n + 1` bytes of a word (`n` up to 7).
const MASKS: [u64; 8] = {
    let mut masks = [!0; 8];
    let mut n = 0;
    while n < 7 {
        masks[n] = (1 << (8 * (n + 1))) - 1;
        n += 1;
    }
    masks
};

/// Hands `visit` the elements of `value` (see the module docs): those of one to
/// twenty-four bytes that lie in a block read from its copy, the others sliced.
#[inline(always)]
fn scan<'v>(value: &'v [u8], visit: &mut impl Visit<'v>) {
    #[cfg(test)]
    work::scanned(value.len());
    // The block's bytes, lowercased, and 24 more, so that three words loaded at
    // any byte of the block stay in it (the bytes past 64 are masked off).
    let mut copy = [0u8; 88];
    let mut base = 0;
    // Where the element not ended yet began (after its comma), if not at `base`.
    let mut open = None;
    while base < value.len() {
        let rest = &value[base..];
        let (commas, ows) = match rest.first_chunk::<64>() {
            Some(block) => fold_block(block, &mut copy),
            None => {
                // The last bytes, and commas after them: they end the last element.
                let mut last = [b','; 64];
                last[..rest.len()].copy_from_slice(rest);
                fold_block(&last, &mut copy)
            }
        };
        let tokens = !(commas | ows);
        // Where an element begins (after a comma, or at `base`), then its first byte
        // that is not OWS (the carry runs through the OWS after each beginning).
        let begins = commas << 1 | u64::from(open.is_none());
        let first = (begins & !ows | (begins & ows).wrapping_add(ows) & !ows) & tokens;
        // The OWS bits that reach a comma through OWS alone, found downwards, run by
        // run doubling (no step at all in a block without OWS before a comma).
        let mut to_comma = commas >> 1 & ows;
        let (mut span, mut step) = (ows, 1);
        while to_comma >> 1 & ows & !to_comma != 0 {
            to_comma |= to_comma >> step & span;
            span &= span >> step;
            step *= 2;
        }
        // The last byte of each element before its comma, OWS aside.
        let mut ends = (commas | to_comma) >> 1 & tokens;
        // The first byte of each element that ends in this block (up to its last
        // comma): the two masks pair up in order, an element to a pair.
        let ended = !0u64 >> commas.leading_zeros().min(63) & u64::from(commas != 0).wrapping_neg();
        let mut starts = first & ended;
        if let Some(from) = open {
            if commas != 0 {
                // The element begun in an earlier block ends at the first comma.
                let at = commas.trailing_zeros() as usize;
                visit.long(trim_ows(&value[from..base + at]));
                ends &= !0 << at;
                open = None;
            }
        }
        let one = starts & ends;
        let two = starts & ends >> 1;
        starts &= !(one | two);
        ends &= !(one | two << 1);
        let [wants_one, wants_two] = visit.wants_short();
        let mut one = if wants_one { one } else { 0 };
        while one != 0 {
            visit.one(copy[one.trailing_zeros() as usize]);
            one &= one - 1;
        }
        let mut two = if wants_two { two } else { 0 };
        while two != 0 {
            let at = two.trailing_zeros() as usize;
            visit.two(copy[at], copy[at + 1]);
            two &= two - 1;
        }
        while starts != 0 {
            let at = starts.trailing_zeros() as usize & 63;
            let last = ends.trailing_zeros() as usize;
            starts &= starts - 1;
            ends &= ends - 1;
            // The element's length, less one.
            let n = last - at;
            let word = |i: usize| {
                let bytes = copy[at + 8 * i..at + 8 * i + 8].try_into();
                u64::from_le_bytes(bytes.expect("8 bytes"))
            };
            if n < 8 {
                visit.word(word(0) & MASKS[n]);
            } else if n < 16 {
                visit.pair([word(0), word(1) & MASKS[n - 8]]);
            } else if n < 24 {
                visit.triple([word(0), word(1), word(2) & MASKS[n - 16]]);
            } else {
                visit.long(&value[base + at..=base + last]);
            }
        }
        // The element not ended in this block: its first byte, if it has one.
        let tail = match commas {
            0 if open.is_some() => None,
            0 => Some(first),
            _ => Some(first & !ended),
        };
        match tail {
            None => base += 64,
            Some(0) => {
                // Only OWS so far: the element begins at the next block.
                base += 64;
                open = None;
            }
            Some(tail) => {
                let at = tail.trailing_zeros() as usize;
                if at >= 48 {
                    // Sixteen bytes or fewer: read it again at the next block's start.
                    base += at;
                    open = None;
                } else {
                    open = Some(base + at);
                    base += 64;
                }
            }
        }
    }
    if let Some(from) = open {
        visit.long(trim_ows(&value[from..]));
    }
}

/// Copies `block` into `copy` [`fold`]ed, and returns its commas and its OWS
/// (spaces and tabs), as bits by position.
#[inline(always)]
fn fold_block(block: &[u8; 64], copy: &mut [u8; 88]) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128,
            _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_setzero_si128, _mm_storeu_si128,
        };
        let (mut commas, mut ows) = (0u64, 0u64);
        let parts = block.chunks_exact(16).zip(copy.chunks_exact_mut(16));
        for (i, (part, out)) in parts.enumerate() {
            // SAFETY: SSE2 is part of the x86-64 baseline, so every x86-64 CPU runs
            // these; the load reads the 16 bytes of `part` and the store writes the
            // 16 bytes of `out` (unaligned loads and stores are allowed).
            let (c, w) = unsafe {
                let bytes = _mm_loadu_si128(part.as_ptr().cast::<__m128i>());
                // `A..=Z` plus 0x3f is 0x80..=0x99: below -102 as a signed byte.
                let upper = _mm_cmpgt_epi8(
                    _mm_set1_epi8(-102),
                    _mm_add_epi8(bytes, _mm_set1_epi8(0x3f)),
                );
                let nul = _mm_cmpeq_epi8(bytes, _mm_setzero_si128());
                let lower = _mm_or_si128(bytes, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
                _mm_storeu_si128(out.as_mut_ptr().cast::<__m128i>(), _mm_or_si128(lower, nul));
                let c = _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b',' as i8)));
                let w = _mm_movemask_epi8(_mm_or_si128(
                    _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b' ' as i8)),
                    _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\t' as i8)),
                ));
                (c, w)
            };
            commas |= u64::from(c as u16) << (16 * i);
            ows |= u64::from(w as u16) << (16 * i);
        }
        (commas, ows)
    }
    #[cfg(not(target_arch = "x86_64"))]
    fold_block_swar(block, copy)
}

/// [`fold_block`] eight bytes at a time, for targets without SSE2 (and, in tests, to
/// check the SSE2 reading against).
#[cfg(any(test, not(target_arch = "x86_64")))]
fn fold_block_swar(block: &[u8; 64], copy: &mut [u8; 88]) -> (u64, u64) {
    // The top bit of each byte, gathered into the low eight bits.
    let gather =
        |m: u64| ((m >> 7) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080) >> 56;
    let (mut commas, mut ows) = (0u64, 0u64);
    let parts = block.chunks_exact(8).zip(copy.chunks_exact_mut(8));
    for (i, (part, out)) in parts.enumerate() {
        let word = u64::from_le_bytes(part.try_into().expect("8 bytes"));
        out.copy_from_slice(&fold(word).to_le_bytes());
        commas |= gather(bytes_equal(word, b',')) << (8 * i);
        ows |= gather(bytes_equal(word, b' ') | bytes_equal(word, b'\t')) << (8 * i);
    }
    (commas, ows)
}

/// The top bit of each byte of `word` that is `byte`, and no other bit: a byte is
/// tested in its low seven bits and its top bit apart, so no carry crosses bytes and
/// no byte is reported that is not `byte`.
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const LOW: u64 = u64::from_ne_bytes([0x7f; 8]);
    let x = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    !(((x & LOW) + LOW) | x | LOW)
}

/// `token` without the OWS around it (httparse lets no CR, LF or FF into a value, so
/// this trims what `trim_ascii` would).
#[inline(always)]
fn trim_ows(token: &[u8]) -> &[u8] {
    token.trim_ascii()
}

/// Each byte's place in the sets of one-byte and two-byte options: the `tchar`s
/// (RFC 9110 §5.6.2), a letter in either case at one place, numbered from 0;
/// [`NO_TOKEN`] for every other byte (no field name holds one).
static CODE: [u8; 256] = {
    let mut code = [NO_TOKEN; 256];
    let mut next = 0;
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        if super::TCHAR.contains(byte) && !byte.is_ascii_uppercase() {
            code[b] = next;
            next += 1;
        }
        b += 1;
    }
    let mut b = b'A';
    while b <= b'Z' {
        code[b as usize] = code[b.to_ascii_lowercase() as usize];
        b += 1;
    }
    assert!(next < NO_TOKEN);
    code
};

/// [`CODE`] of a byte that is no `tchar`.
const NO_TOKEN: u8 = 63;

/// Slots of a [`Table`]: about five per name at most, so that a lookup meets few
/// others (linear probing at a load of a fifth at most).
const SLOTS: usize = 512;

/// Entries of a [`Table`]: the flags' three names, a name per field at most, and
/// [`EMPTY`].
const ENTRIES: usize = 128;

/// A free slot: the entry that no element matches.
const EMPTY: u8 = (ENTRIES - 1) as u8;

// The flags and a field each have an entry, EMPTY apart, and a field's index fits a
// `u128` of bits.
const _: () = assert!(3 + MAX_HEADERS < ENTRIES && MAX_HEADERS <= 128);

/// The distinct names of a head, in any case, that [`scan`]'s elements are looked
/// up in, and what the elements found: `close`, `keep-alive` and `upgrade` (entries
/// 0 to 2), then the field names of three bytes or more, an entry each (a name that
/// several fields carry, or a flag's, is one entry); the elements of one and two
/// bytes in sets. Made on the stack for each head with a `Connection` field (the
/// proxy's reading).
///
/// An element's bytes hold no NUL once [`fold`]ed, so the words of one of three to
/// twenty-four bytes tell its length: an entry's word (or words) are compared alone,
/// and are 0 (no element's) where the entry's name has another length.
struct Table<'a> {
    all: &'a [Header<'a>],
    /// The hash's key: random, odd.
    key: u64,
    /// Linear probing by [`slot`] (of a [`hash_long`] for a name of more than
    /// twenty-four bytes): entries, [`EMPTY`] where free.
    slots: [u8; SLOTS],
    /// Each entry's word, for a name of three to eight bytes.
    words: [u64; ENTRIES],
    /// Each entry's words, for a name of nine to twenty-four bytes (the third 0 for
    /// one of sixteen bytes or fewer, which no element of more has).
    wide: [Triple; ENTRIES],
    /// Each entry's [`hash_long`] and first field, for a name of more than
    /// twenty-four bytes (`EMPTY`'s: a field no entry has).
    long: [(u64, u8); ENTRIES],
    /// The entries an element named.
    hit: [bool; ENTRIES],
    /// Each field's entry ([`EMPTY`] for a name of one or two bytes, or with a NUL).
    entry: [u8; MAX_HEADERS],
    /// The one-byte elements seen, a bit each by [`CODE`].
    one: u64,
    /// The two-byte elements seen: `two[CODE[a]]` bit `CODE[b]`.
    two: [u64; 64],
    /// Whether some field name has one byte, two bytes.
    short: [bool; 2],
}

/// What a [`Table`] looks an element up by: its slot, and how its entry is told.
#[derive(Clone, Copy)]
enum Name<'n> {
    /// Three to eight bytes, as [`Visit::word`] has them.
    Word(u64),
    /// Nine to sixteen bytes, as [`Visit::pair`] has them.
    Pair(Pair),
    /// Seventeen to twenty-four bytes, as [`Visit::triple`] has them.
    Triple(Triple),
    /// More than twenty-four bytes, and its [`hash_long`].
    Long(&'n [u8], u64),
}

impl<'a> Table<'a> {
    fn new(all: &'a [Header<'a>], key: u64) -> Self {
        let mut table = Self {
            all,
            key,
            slots: [EMPTY; SLOTS],
            words: [0; ENTRIES],
            wide: [[0; 3]; ENTRIES],
            long: [(0, EMPTY); ENTRIES],
            hit: [false; ENTRIES],
            entry: [EMPTY; MAX_HEADERS],
            one: 0,
            two: [0; 64],
            short: [1, 2].map(|n| all.iter().any(|f| f.name.len() == n)),
        };
        let flags = [
            Name::Word(CLOSE),
            Name::Pair(KEEP_ALIVE),
            Name::Word(UPGRADE),
        ];
        let fields = all.iter().enumerate().filter_map(|(i, f)| {
            let name = f.name.as_bytes();
            (name.len() >= 3 && !name.contains(&0)).then(|| (Name::of(name), Some(i)))
        });
        let names = flags.into_iter().map(|name| (name, None)).chain(fields);
        for (entries, (name, field)) in names.enumerate() {
            let mut at = name.slot(key);
            let entry = loop {
                let entry = table.slots[at];
                if entry == EMPTY {
                    table.slots[at] = entries as u8;
                    match name {
                        Name::Word(word) => table.words[entries] = word,
                        Name::Pair([low, high]) => table.wide[entries] = [low, high, 0],
                        Name::Triple(triple) => table.wide[entries] = triple,
                        Name::Long(_, hash) => {
                            table.long[entries] = (hash, field.unwrap_or(0) as u8);
                        }
                    }
                    break entries as u8;
                }
                if table.is(entry, name) {
                    break entry;
                }
                at = (at + 1) % SLOTS;
            };
            if let Some(i) = field {
                table.entry[i] = entry;
            }
        }
        table
    }

    /// Whether `entry` holds `name`.
    #[inline(always)]
    fn is(&self, entry: u8, name: Name<'_>) -> bool {
        #[cfg(test)]
        if entry != EMPTY {
            work::compared();
        }
        let entry = usize::from(entry) % ENTRIES;
        match name {
            Name::Word(word) => self.words[entry] == word,
            Name::Pair([low, high]) => self.wide[entry] == [low, high, 0],
            Name::Triple(triple) => self.wide[entry] == triple,
            Name::Long(option, hash) => {
                let (entry_hash, field) = self.long[entry];
                entry_hash == hash
                    && self
                        .all
                        .get(usize::from(field))
                        .is_some_and(|f| f.name.as_bytes().eq_ignore_ascii_case(option))
            }
        }
    }

    /// Marks the entry of `name`, if any.
    #[inline(always)]
    fn look_up(&mut self, name: Name<'_>) {
        let mut at = name.slot(self.key);
        loop {
            // `EMPTY`'s entry matches no element: it ends the probe after the
            // comparison.
            let entry = self.slots[at];
            if self.is(entry, name) {
                self.hit[usize::from(entry) % ENTRIES] = true;
                return;
            }
            if entry == EMPTY {
                return;
            }
            at = (at + 1) % SLOTS;
        }
    }

    /// The fields named, as bits by index, and the flags into `flags`.
    fn finish(self, flags: &mut Flags) -> u128 {
        flags.close |= self.hit[0];
        flags.keep_alive |= self.hit[1];
        flags.upgrade |= self.hit[2];
        let mut named = 0;
        for (i, f) in self.all.iter().enumerate() {
            let is_named = match *f.name.as_bytes() {
                [b] => {
                    let b = CODE[usize::from(b)];
                    b != NO_TOKEN && self.one & 1 << b != 0
                }
                [a, b] => {
                    let (a, b) = (CODE[usize::from(a)], CODE[usize::from(b)]);
                    a != NO_TOKEN && b != NO_TOKEN && self.two[usize::from(a)] & 1 << b != 0
                }
                _ => self.hit[usize::from(self.entry[i]) % ENTRIES],
            };
            named |= u128::from(is_named) << i;
        }
        named
    }
}

impl Name<'_> {
    /// `name` (three bytes or more) as a [`Table`] looks it up.
    fn of(name: &[u8]) -> Name<'_> {
        match name.len() {
            ..=8 => Name::Word(pair_of(name)[0]),
            9..=16 => Name::Pair(pair_of(name)),
            17..=24 => Name::Triple(triple_of(name)),
            _ => Name::Long(name, hash_long(name)),
        }
    }

    /// The slot of a name in a [`Table`] whose key is `key`.
    #[inline(always)]
    fn slot(self, key: u64) -> usize {
        match self {
            Name::Word(word) => slot([word, 0], key),
            Name::Pair(pair) => slot(pair, key),
            Name::Triple([low, middle, high]) => slot([slot_mix([low, middle], key), high], key),
            Name::Long(_, hash) => slot_of(hash, key),
        }
    }
}

impl<'a> Visit<'a> for Table<'_> {
    #[inline(always)]
    fn wants_short(&self) -> [bool; 2] {
        self.short
    }

    #[inline(always)]
    fn one(&mut self, b: u8) {
        self.one |= 1 << CODE[usize::from(b)];
    }

    #[inline(always)]
    fn two(&mut self, a: u8, b: u8) {
        self.two[usize::from(CODE[usize::from(a)])] |= 1 << CODE[usize::from(b)];
    }

    #[inline(always)]
    fn word(&mut self, word: u64) {
        self.look_up(Name::Word(word));
    }

    #[inline(always)]
    fn pair(&mut self, pair: Pair) {
        self.look_up(Name::Pair(pair));
    }

    #[inline(always)]
    fn triple(&mut self, triple: Triple) {
        self.look_up(Name::Triple(triple));
    }

    /// Kept out of line: the loop over the elements, which most leave by
    /// [`word`](Visit::word), stays small.
    #[inline(never)]
    fn long(&mut self, option: &'a [u8]) {
        match *option {
            [] => {}
            [b] => self.one(b),
            [a, b] => self.two(a, b),
            _ => self.look_up(Name::of(option)),
        }
    }
}

/// The [`Pair`] of `bytes` (sixteen at most), [`fold`]ed (as the block's copy has
/// them).
fn pair_of(bytes: &[u8]) -> Pair {
    let (low, high) = bytes.split_at(bytes.len().min(8));
    [word_of(low), word_of(high)]
}

/// The [`Triple`] of `bytes` (seventeen to twenty-four), [`fold`]ed.
fn triple_of(bytes: &[u8]) -> Triple {
    let (low, high) = bytes.split_at(16);
    let [a, b] = pair_of(low);
    [a, b, word_of(high)]
}

/// The word of `bytes` (eight at most), [`fold`]ed, zeros after them.
fn word_of(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let at = |i: usize| u64::from(bytes[i]) << (8 * i);
    let word = match n {
        0 => return 0,
        // Two four-byte loads that overlap: the bytes they share are the same.
        4.. => {
            let four = |i: usize| {
                u64::from(u32::from_le_bytes(
                    bytes[i..i + 4].try_into().expect("4 bytes"),
                ))
            };
            four(0) | four(n - 4) << (8 * (n - 4))
        }
        _ => at(0) | at(n / 2) | at(n - 1),
    };
    fold(word) & MASKS[n - 1]
}

/// The slot of a [`Pair`] (or of a word and 0) in a [`Table`]: the top bits of a
/// keyed multiply, xor-shift, multiply of its words (`key` odd).
///
/// A bare multiply-shift (`word * key`, its top bits) is universal (two given words
/// share a slot for few keys) but too regular for linear probing: names in a
/// sequence (`X-00` to `X-95`) land in evenly spaced runs for some keys, and a
/// lookup that finds no name then probes 7 slots on average (1.3 expected at the
/// table's load; seen in 1 of 100 processes with the work-counting test in
/// `proxy::headers`). The xor-shift between two multiplies spreads them as a random
/// function would.
#[inline(always)]
fn slot(pair: Pair, key: u64) -> usize {
    (slot_mix(pair, key) >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The keyed mix of [`slot`], all 64 bits: a [`Triple`]'s slot is [`slot`] of its
/// first two words' mix and its third.
#[inline(always)]
fn slot_mix([low, high]: Pair, key: u64) -> u64 {
    let h = (low ^ key).wrapping_mul(key) ^ high;
    (h ^ (h >> 29)).wrapping_mul(key)
}

/// The slot of a [`hash_long`] in a [`Table`] whose key is `key` (odd).
#[inline(always)]
fn slot_of(hash: u64, key: u64) -> usize {
    slot([hash, 0], key)
}

/// A hash of a name of more than twenty-four bytes, in any case, for [`slot_of`] and
/// to tell names apart before comparing them: a multiply keyed with the process's
/// [`option_key`] (odd) and an xor-shift, over the name eight bytes at a time,
/// lowercased ([`lower_letters`]). The xor-shift after each multiply is needed: a
/// multiply only carries differences upwards, so without it names that differ only
/// in the top bits of their words (`!` against `a`, 0x21 and 0x61, in the last byte
/// of each) would share one of four hashes whatever the key (a review found it; the
/// test `connection_options_cost_one_lookup_each_however_many` has such names).
fn hash_long(name: &[u8]) -> u64 {
    let key = option_key();
    let mix = |h: u64, word: u64| {
        let h = (h ^ word).wrapping_mul(key);
        h ^ h >> 29
    };
    let words = name.chunks_exact(8);
    let tail = words.remainder();
    let h = words.fold(key ^ name.len() as u64, |h, word| {
        mix(
            h,
            lower_letters(u64::from_le_bytes(word.try_into().expect("8 bytes"))),
        )
    });
    let tail = tail
        .iter()
        .rev()
        .fold(0, |w, &b| w << 8 | u64::from(b.to_ascii_lowercase()));
    mix(h, tail)
}

/// `word` as an element's bytes are compared: its letters lowercased
/// ([`lower_letters`]) and each NUL made 0xff, a byte no name holds (a name with a
/// NUL has no entry, and UTF-8 has no 0xff), so that the words of a name tell its
/// length by the bytes that are not 0.
#[inline(always)]
fn fold(word: u64) -> u64 {
    lower_letters(word) | ((bytes_equal(word, 0) >> 7) * 0xff)
}

/// `word` with each of its bytes in `A..=Z` lowercased, eight at a time. Setting the
/// `0x20` bit of every byte instead would fold pairs of non-letters (`^` and `~`,
/// `@` and `` ` ``) into one, whatever the key: names built of such pairs would all
/// share a slot.
fn lower_letters(word: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = ONES << 7;
    // Each byte's low seven bits plus a constant sets its top bit when it is at least
    // `A` (resp. past `Z`); no sum carries into the next byte (at most 0x7f + 0x3f).
    let low = word & !HIGH;
    let from_a = low + (0x80 - u64::from(b'A')) * ONES;
    let past_z = low + (0x80 - u64::from(b'Z' + 1)) * ONES;
    let upper = from_a & !past_z & !word & HIGH;
    word | upper >> 2
}

/// The process's key for [`slot`]: random, odd, made once.
fn option_key() -> u64 {
    use std::hash::BuildHasher as _;
    static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| std::hash::RandomState::new().hash_one(0x5eed_u64) | 1)
}

/// The work of reading `Connection` fields, counted on the test's thread (tests
/// only): the bytes of values scanned and the name comparisons made.
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        static SCANNED: Cell<usize> = const { Cell::new(0) };
        static COMPARED: Cell<usize> = const { Cell::new(0) };
    }

    pub(super) fn scanned(bytes: usize) {
        SCANNED.set(SCANNED.get() + bytes);
    }

    pub(super) fn compared() {
        COMPARED.set(COMPARED.get() + 1);
    }

    /// `(bytes scanned, names compared)` since the last call, and starts again.
    pub(crate) fn take() -> (usize, usize) {
        (SCANNED.replace(0), COMPARED.replace(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A head of fields named `names` (each with the value `v`), then one
    /// `Connection` field with `value`.
    fn head_with_connection<'a>(names: &[&'a str], value: &'a [u8]) -> Vec<Header<'a>> {
        let mut all: Vec<Header<'a>> = names
            .iter()
            .map(|&name| Header { name, value: b"v" })
            .collect();
        all.push(Header {
            name: "Connection",
            value,
        });
        all
    }

    /// A xorshift generator from `seed`: each call gives a number below `n`.
    fn xorshift(mut state: u64) -> impl FnMut(usize) -> usize {
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        }
    }

    /// What the options of `values` name and say, read the slow way: every option
    /// (split at every comma, trimmed) against every field.
    fn slow(names: &[&str], values: &[&[u8]]) -> (u128, Flags) {
        let mut flags = Flags::default();
        let mut named = 0;
        for value in values {
            for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                flags.close |= option.eq_ignore_ascii_case(b"close");
                flags.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                flags.upgrade |= option.eq_ignore_ascii_case(b"upgrade");
                for (i, name) in names.iter().enumerate() {
                    if name.as_bytes().eq_ignore_ascii_case(option) {
                        named |= 1 << i;
                    }
                }
            }
        }
        (named, flags)
    }

    /// Random heads: field names of one to 35 bytes (some `close` and the like),
    /// `Connection` values of up to 700 bytes (several 64-byte blocks) made of those
    /// names in either case, commas, spaces and tabs (alone and in runs up to 70
    /// bytes), other bytes (NUL and 0xff among them); both readings (a server's,
    /// flags only, and a proxy's) against the slow one.
    #[test]
    fn options_are_read_as_splitting_reads_them() {
        let mut random = xorshift(0x9e37_79b9_7f4a_7c15_u64);
        let pool = [
            "a",
            "B",
            "c",
            "ab",
            "Zz",
            "x-",
            "abc",
            "aBd",
            "close",
            "keep-alive",
            "upgrade",
            "x-long-name",
            "~^~",
            "^~^",
            "a_b",
            "AbCd",
            "x-abcdef",
            "abcdef",
            "UpGrAdE",
            "Close",
            "x-abcdefg",
            "x-sixteen-bytes-",
            "x-seventeen-bytes",
            "x-seventeen-bytes-",
            "x-twenty-four-bytes-long",
            "x-twenty-five-bytes-long-",
            "X-A-Rather-Long-Field-Name-Number-1",
            "x-a-rather-long-field-name-number-2",
        ];
        // Fewer under Miri, which runs each a thousand times slower.
        for round in 0..if cfg!(miri) { 40 } else { 4000 } {
            let count = 1 + random(6);
            let mut names: Vec<&str> = (0..count).map(|_| pool[random(pool.len())]).collect();
            let mut values: Vec<Vec<u8>> = Vec::new();
            for _ in 0..1 + random(3) {
                let len = random([300, 700][round % 2]);
                let mut value = Vec::new();
                while value.len() < len {
                    match random(9) {
                        0 | 1 => value.push(b','),
                        2 => value.push(b' '),
                        3 => value.push(b'\t'),
                        4 => value.push([b'"', b'a', b'Q', b';', 0, 0xff][random(6)]),
                        // Runs of OWS up to 70 bytes: elements across block edges,
                        // long OWS before a comma.
                        5 => value.extend((0..random(70)).map(|_| [b' ', b'\t'][random(2)])),
                        _ => {
                            let word = pool[random(pool.len())];
                            value.extend(word.bytes().map(|b| {
                                if random(2) == 0 {
                                    b.to_ascii_uppercase()
                                } else {
                                    b
                                }
                            }));
                        }
                    }
                }
                values.push(value);
            }
            let mut all: Vec<Header<'_>> = names
                .iter()
                .map(|&name| Header { name, value: b"v" })
                .collect();
            let first_connection = all.len();
            for value in &values {
                all.push(Header {
                    name: "Connection",
                    value,
                });
                names.push("Connection");
            }
            let values: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            let (want_named, want_flags) = slow(&names, &values);
            let connection = (first_connection..all.len()).fold(0u128, |b, i| b | 1 << i);
            let mut flags = Flags::default();
            let named = read_keyed(&all, connection, &mut flags, 0x9e37_79b9_7f4a_7c15 | 1);
            assert_eq!(named, want_named, "round {round}: {names:?} {values:?}");
            assert_eq!(flags, want_flags, "round {round}: {values:?}");
            let mut flags = Flags::default();
            for value in &values {
                read_flags(value, &mut flags);
            }
            assert_eq!(flags, want_flags, "round {round}, flags alone: {values:?}");
        }
    }

    /// Both readings of a block (SSE2, and the eight-byte one other targets use)
    /// against the plain one: the commas, the OWS, the copy lowercased (letters
    /// only, NUL made 0xff), on bytes near every edge of each test (`,`, space, tab,
    /// NUL, `@`, `A`, `Z`,
    /// `[`, `` ` ``, `a`, `z`, `{`, each also with the top bit set) and any byte.
    #[test]
    fn sse2_block_reading_matches_the_eight_byte_one() {
        let mut random = xorshift(0x2545_f491_4f6c_dd1d_u64);
        let edges = [
            b',', b' ', b'\t', 0, b'@', b'A', b'Z', b'[', b'`', b'a', b'z', b'{',
        ];
        for _ in 0..if cfg!(miri) { 200 } else { 20_000 } {
            let mut block = [0u8; 64];
            for b in &mut block {
                *b = match random(3) {
                    0 => edges[random(edges.len())],
                    1 => 0x80 | edges[random(edges.len())],
                    _ => random(256) as u8,
                };
            }
            let want: (u64, u64) = block.iter().enumerate().fold((0, 0), |(c, w), (i, &b)| {
                (
                    c | u64::from(b == b',') << i,
                    w | u64::from(b == b' ' || b == b'\t') << i,
                )
            });
            let lower = block.map(|b| if b == 0 { 0xff } else { b.to_ascii_lowercase() });
            for read in [fold_block, fold_block_swar] {
                let mut copy = [0xee; 88];
                assert_eq!(read(&block, &mut copy), want);
                assert_eq!(copy[..64], lower);
                assert_eq!(copy[64..], [0xee; 24], "nothing written past the block");
            }
        }
    }

    #[test]
    fn bytes_equal_marks_exactly_the_bytes_equal() {
        for byte in 0..=255u8 {
            for other in 0..=255u8 {
                let word = u64::from_le_bytes([other, byte, other, 0, 255, byte, 0x80, byte]);
                let expected = (0..8).fold(0u64, |m, i| {
                    let b = word.to_le_bytes()[i];
                    m | u64::from(b == byte) << (8 * i + 7)
                });
                assert_eq!(bytes_equal(word, byte), expected, "{byte} {other}");
            }
        }
    }

    #[test]
    fn connection_options_cost_one_lookup_each_however_many() {
        // 96 fields and a `Connection` of 7,700 options (770 under Miri), in the
        // shapes that cost most: one option repeated, distinct options naming
        // nothing, options naming every field in turn, two names alternating, names
        // drawn at random in either case.
        let options_count = if cfg!(miri) { 770 } else { 7700 };
        // Read for every field, as before, these cost 96 × 7,700 comparisons per pass.
        let distinct_names: Vec<String> = (0..96).map(|i| format!("X-Field-{i:02}")).collect();
        // Every field named alike (in mixed case): one name in the table, however
        // many fields carry it; one-byte and two-byte names (the shortest options).
        let same_names: Vec<String> = (0..96)
            .map(|i| if i % 2 == 0 { "a" } else { "A" }.to_string())
            .collect();
        let short_names: Vec<String> = (0..96)
            .map(|i| ["a", "b", "cd", "Ef", "g-", "h_"][i % 6].to_string())
            .collect();
        let mut random = xorshift(0x2545_f491_4f6c_dd1d_u64);
        // Names of `^` and `~` only, which differ in the `0x20` bit alone: a fold
        // that set that bit in every byte would make them one name (and, folded
        // only for the hash, give them all one slot, whatever the key). Seven bytes
        // (one word) and eleven (a pair) of them.
        let pair_name = |i: usize, len: usize| -> String {
            let pair = |b: usize| if i >> (b % 7) & 1 == 1 { '~' } else { '^' };
            (0..len).map(pair).collect()
        };
        let pair_names: Vec<String> = (0..96).map(|i| pair_name(i, 7)).collect();
        let long_pair_names: Vec<String> = (0..96).map(|i| pair_name(i, 11)).collect();
        // Fifteen bytes: one word alike, then one of `^` and `~` (a hash of the
        // second word alone: without the multiply, xor-shift, multiply of `slot`,
        // a bare multiply-shift, this test finds more than two comparisons per
        // option for some of its keys).
        let tail_pair_names: Vec<String> = (0..96)
            .map(|i| format!("x-fixed-{}", pair_name(i, 7)))
            .collect();
        // 56 bytes, seven words that differ only in their last byte, `!` or `a`
        // (0x21, 0x61: the top bits of the word): a hash of long names that only
        // multiplies gives them four hashes whatever the key.
        let family = |i: usize| -> String {
            (0..7)
                .map(|j| {
                    let bit = if i >> j & 1 == 1 { 'a' } else { '!' };
                    format!(
                        "{}{bit}",
                        ["-abcdef", "-ghijkl", "-mnopqr", "-stuvwx"][j % 4]
                    )
                })
                .collect()
        };
        let family_names: Vec<String> = (0..96).map(family).collect();
        let family_others = (0..options_count)
            .map(|i| family(96 + i % 32))
            .collect::<Vec<_>>()
            .join(",");
        let pairs = (0..options_count)
            .map(|i| pair_name(96 + i % 32, [7, 11][i / 32 % 2]))
            .collect::<Vec<_>>()
            .join(",");
        for names in [
            &distinct_names,
            &same_names,
            &short_names,
            &pair_names,
            &long_pair_names,
            &tail_pair_names,
            &family_names,
        ] {
            let repeated = vec!["a"; options_count].join(",");
            let distinct = (0..options_count)
                .map(|i| format!("o{i}"))
                .collect::<Vec<_>>()
                .join(",");
            let naming = (0..options_count)
                .map(|i| names[i % 96].to_lowercase())
                .collect::<Vec<_>>()
                .join(",");
            let alternating = (0..options_count)
                .map(|i| if i % 2 == 0 { "cd" } else { "EF" })
                .collect::<Vec<_>>()
                .join(" , ");
            let drawn = (0..options_count)
                .map(|_| {
                    let name = ["a", "b", "cd", "ef", "g-", "h_", "x", "yz"][random(8)];
                    if random(2) == 0 {
                        name.to_uppercase()
                    } else {
                        name.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(",");
            for (case, options) in [
                ("repeated", &repeated),
                ("distinct", &distinct),
                ("naming", &naming),
                ("alternating", &alternating),
                ("drawn", &drawn),
                ("pairs", &pairs),
                ("family", &family_others),
            ] {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let all = head_with_connection(&names, options.as_bytes());
                // What the options name, read the slow way: every option against
                // every field.
                let expected = all.iter().enumerate().fold(0u128, |named, (i, f)| {
                    let is_named = options
                        .as_bytes()
                        .split(|&b| b == b',')
                        .map(<[u8]>::trim_ascii)
                        .any(|option| f.name.as_bytes().eq_ignore_ascii_case(option));
                    named | u128::from(is_named) << i
                });
                let mut worst = 0;
                // The key is random in a process; here, sixteen fixed ones (one
                // under Miri).
                for k in 0..if cfg!(miri) { 1 } else { 16u64 } {
                    let key = (k + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                    work::take();
                    let connection = 1 << (all.len() - 1);
                    let named = read_keyed(&all, connection, &mut Flags::default(), key);
                    let (scanned, compared) = work::take();
                    assert_eq!(named, expected, "{case}, {:?}, key {key:#x}", &names[..3]);
                    assert_eq!(scanned, options.len(), "{case}: one pass over the value");
                    worst = worst.max(compared);
                }
                // A lookup meets the field it names, plus a few others at most; the
                // table holds each distinct name once (6 here, or 96).
                assert!(
                    worst <= 2 * options_count + 2 * 96,
                    "{case}, {:?}: {worst} comparisons for {options_count} options",
                    &names[..3]
                );
            }
        }
    }

    /// A NUL is no token byte, so no parsed head has one, but [`named`] takes any
    /// bytes: an option with a NUL names no field (`abc\0` is not `abc`, `\0\0\0` is
    /// not the 0 words of a name of another length, a NUL is not the 0xff it is
    /// compared as), and a name with a NUL is named by nothing, not even itself.
    #[test]
    fn options_with_nul_bytes_name_no_field() {
        let long = "x".repeat(40);
        let long_nul = format!("{long}\0");
        for (names, value) in [
            (vec!["abc", "wxyz"], &b"abc\0"[..]),
            (vec!["abc", "wxyz"], b"wxy\0, ab\0\0"),
            (vec![long.as_str(), "xyz"], b"\0\0\0"),
            (vec![long.as_str(), "xyz"], b"\0\0\0\0\0\0\0\0"),
            (vec!["keep-alive", "abc"], b"abc\xff, keep-alive\0"),
            (vec!["ab\0c", "a\0"], b"ab\0c, a\0, ab\xffc"),
            (vec![long_nul.as_str()], long_nul.as_bytes()),
        ] {
            let all = head_with_connection(&names, value);
            assert_eq!(named(&all), 0, "{names:?} {value:?}");
        }
    }

    #[test]
    fn lower_letters_lowercases_letters_and_nothing_else() {
        for b in 0..=255u8 {
            for at in 0..8 {
                // The byte among neighbours of every kind: letters, non-letters, 0x80+.
                let mut bytes = *b"aZ^~@`\xff\x00";
                bytes[at] = b;
                let want = bytes.map(|b| b.to_ascii_lowercase());
                let got = lower_letters(u64::from_le_bytes(bytes)).to_le_bytes();
                assert_eq!(got, want, "byte {b:#04x} at {at}");
            }
        }
    }
}
