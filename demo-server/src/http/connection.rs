//! The `Connection` field's options (RFC 9110 §7.6.1), read once per head: what they
//! say about the connection (`close`, `keep-alive`, `upgrade`) and, for a proxy,
//! which of the head's fields they name (hop-by-hop: never forwarded).
//!
//! A client may list options by the thousand (`Connection: a,B,a,B,…`, one byte and a
//! comma each, 8,000 in a 16 KiB head, 500,000 in a 1 MiB one), so reading them must
//! cost about what reading any other bytes of the head does. The parsers
//! ([`FramingFields`](super::fields::FramingFields)) read each `Connection` value
//! once: a server for the three options alone ([`read_flags`]), a proxy for those and
//! the names at once (`read`; [`named`] for fields read otherwise), and the proxy takes the fields named from the parser
//! instead of splitting the values again.
//!
//! How one value is read (`scan`):
//!
//! - 64 bytes at a time, the commas (and, for a proxy, the spaces and tabs) found as
//!   bit masks (SSE2 on x86-64, eight bytes at a time elsewhere);
//! - an element shorter than the shortest length that could matter (5 for `close`;
//!   for a proxy the shortest field name) is passed over in bulk, never sliced;
//! - an element of one to eight bytes (OWS aside) whose length some field name has
//!   is read straight from the masks when it lies in one block with the comma that
//!   ends it: a one-byte or two-byte one marks itself in a set of 64 or 4,096 bits
//!   (by `CODE`, so in either case at once; the names of one and two bytes are
//!   matched against the sets once, at the end), a longer one is taken as a word,
//!   its letters lowercased, and looked up by one multiply and one word comparison
//!   per slot;
//! - any other element is trimmed of OWS, comma by comma, and looked up only if some
//!   field name has its length;
//! - an option is not looked up again right after itself; the lookup is in
//!   `Names`, a keyed hash table made at the first lookup (a per-process random key,
//!   so a client cannot choose names that all land in one slot), where each distinct
//!   name (in any case) is held once with every field that carries it.
//!
//! Elements split at every comma and are trimmed of OWS (RFC 9110 §5.6.1); a token
//! holds no quote, so every comma splits (in `Connection: a"b, close`, `close` is
//! seen), and an element with a space inside (`a b`) is no token and names nothing.
//! Field names are tokens (httparse reads no other).

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

/// The lengths of [`Flags`]' options, as bits.
const FLAG_LENGTHS: u64 = 1 << 5 | 1 << 7 | 1 << 10;

impl Flags {
    #[inline(always)]
    fn option(&mut self, option: &[u8]) {
        match option.len() {
            5 => self.close |= option.eq_ignore_ascii_case(b"close"),
            7 => self.upgrade |= option.eq_ignore_ascii_case(b"upgrade"),
            10 => self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive"),
            _ => {}
        }
    }
}

/// Reads one `Connection` value for [`Flags`] alone: the server's reading, which
/// needs no field names.
#[inline]
pub fn read_flags(value: &[u8], flags: &mut Flags) {
    struct Only<'f>(&'f mut Flags);
    impl Visit<'_> for Only<'_> {
        #[inline(always)]
        fn element(&mut self, option: &[u8]) {
            self.0.option(option);
        }
    }
    scan(value, FLAG_LENGTHS, 0, &mut Only(flags));
}

/// The fields of `all` that its `Connection` fields name, as bits by index: for a
/// caller that has the fields but did not parse them with the names collected.
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
    // Bit `n` (at most 63) set: some field name is `n` bytes long.
    let lengths = all
        .iter()
        .fold(0u64, |lengths, f| lengths | 1 << f.name.len().min(63));
    let mut collect = Collect {
        all,
        lengths,
        key,
        flags: *flags,
        one: 0,
        two: [0; 64],
        names: None,
        last: &[],
        last_word: (0, 0),
        named: 0,
        found: [0; 2],
    };
    // The elements of one to eight bytes that a field name could be, from the masks.
    let from_masks = lengths & 0x1fe;
    while connection != 0 {
        let i = connection.trailing_zeros() as usize;
        connection &= connection - 1;
        scan(
            all[i].value,
            lengths | FLAG_LENGTHS,
            from_masks,
            &mut collect,
        );
    }
    *flags = collect.flags;
    collect.finish()
}

/// What [`scan`] hands its elements to.
trait Visit<'v> {
    /// An element (trimmed of OWS) whose bytes between its commas are at least the
    /// shortest length that matters: the caller still checks its length.
    fn element(&mut self, option: &'v [u8]);
    /// A one-byte element, read from the masks.
    fn one(&mut self, _b: u8) {}
    /// A two-byte element, read from the masks.
    fn two(&mut self, _a: u8, _b: u8) {}
    /// An element of `len` bytes, three to eight, read from the masks: its
    /// [`folded_word`].
    fn word(&mut self, _len: usize, _word: u64) {}
}

/// Hands `visit` the elements of `value` that may matter: those whose bytes between
/// commas (OWS included) number at least the shortest length in `lengths` (bits by
/// length, as [`read`] makes them; an element's trimmed length is at most that, so
/// none is missed); those of one to eight bytes (OWS aside) whose length is in
/// `from_masks` (bits by length) are read from the masks instead, through
/// [`Visit::one`], [`Visit::two`] or [`Visit::word`], never sliced, when they lie
/// in one block of 64 bytes with the comma that ends them.
#[inline(always)]
fn scan<'v>(value: &'v [u8], lengths: u64, from_masks: u64, visit: &mut impl Visit<'v>) {
    #[cfg(test)]
    work::scanned(value.len());
    let shortest = (lengths.trailing_zeros() as usize).max(1);
    let ows = from_masks != 0;
    let mut start = 0; // the first byte of the current element
    let mut base = 0;
    let mut pad = [0u8; 64];
    while base < value.len() {
        let rest = &value[base..];
        let (block, valid): (&[u8; 64], u64) = match rest.first_chunk::<64>() {
            Some(block) => (block, !0),
            None => {
                // The last bytes, padded with NULs (neither comma nor OWS; a value
                // holds none).
                pad[..rest.len()].copy_from_slice(rest);
                (&pad, (1 << rest.len()) - 1)
            }
        };
        let (commas, spaces) = masks(block, ows);
        if commas != 0 {
            // Where an element begins: after a comma, or here if one began here; and
            // where one begins but for OWS (the carry runs through each run of OWS
            // that begins where an element does, to the byte after it).
            let begins = commas << 1 | u64::from(start == base);
            let first = begins & !spaces | (begins & spaces).wrapping_add(spaces) & !spaces;
            let mut done = 0; // commas whose element was read from the masks
            let tokens = !(commas | spaces) & valid;
            // Runs of bytes that are neither comma nor OWS, beginning an element.
            let runs_from = tokens & !(tokens << 1) & first;
            let mut kinds = from_masks;
            while kinds != 0 {
                let len = kinds.trailing_zeros() as usize;
                kinds &= kinds - 1;
                // Runs of `len` such bytes, the byte after them in this block: a
                // comma (the run is the whole element), or OWS (it is if a comma
                // follows the OWS; else it is left to the slow path below).
                let elements =
                    runs_from & runs(tokens, len) >> (len - 1) & !(tokens >> len) & !0 >> len;
                let mut direct = elements & commas >> len;
                done |= direct << len;
                let mut spaced = elements & spaces >> len;
                while spaced != 0 {
                    let at = spaced.trailing_zeros() as usize;
                    spaced &= spaced - 1;
                    let after = at + len;
                    let end = after + (!spaces >> after).trailing_zeros() as usize;
                    if end < 64 && commas >> end & 1 == 1 {
                        done |= 1 << end;
                        direct |= 1 << at;
                    }
                }
                // One loop per length, each as small as it can be.
                match len {
                    1 => {
                        while direct != 0 {
                            visit.one(block[direct.trailing_zeros() as usize]);
                            direct &= direct - 1;
                        }
                    }
                    2 => {
                        while direct != 0 {
                            let at = direct.trailing_zeros() as usize;
                            visit.two(block[at], block[at + 1]);
                            direct &= direct - 1;
                        }
                    }
                    _ => {
                        let mask = u64::MAX >> (64 - 8 * len);
                        while direct != 0 {
                            let at = direct.trailing_zeros() as usize;
                            visit.word(len, word_at(block, at, len, mask));
                            direct &= direct - 1;
                        }
                    }
                }
            }
            // The commas that end an element long enough: the first (its element may
            // have begun in an earlier block), and those after a long enough run.
            let long = runs(!commas & valid, shortest);
            let mut ends = (commas & long << 1 | commas & commas.wrapping_neg()) & !done;
            while ends != 0 {
                let at = ends.trailing_zeros() as usize;
                ends &= ends - 1;
                let before = commas & ((1 << at) - 1);
                let from = match before {
                    0 => start,
                    _ => base + 64 - before.leading_zeros() as usize,
                };
                let end = base + at;
                if end - from >= shortest {
                    visit.element(trim_ows(&value[from..end]));
                }
            }
            start = base + 64 - commas.leading_zeros() as usize;
        }
        base += 64;
    }
    if value.len() - start >= shortest {
        visit.element(trim_ows(&value[start..]));
    }
}

/// The [`folded_word`] of the `len` bytes (three to eight) at `at` in `block`;
/// `mask` keeps the low `len` bytes of a word.
#[inline(always)]
fn word_at(block: &[u8; 64], at: usize, len: usize, mask: u64) -> u64 {
    match block.get(at..at + 8) {
        Some(eight) => {
            let word = u64::from_le_bytes(eight.try_into().expect("8 bytes"));
            lower_letters(word & mask)
        }
        None => folded_word(&block[at..at + len]),
    }
}

/// The bits `p` of `bits` that end a run of `n` set bits (`bits` `p + 1 - n ..= p`),
/// for `n` up to 8; past 8, the runs of 8 (a superset: the caller checks lengths).
#[inline(always)]
fn runs(bits: u64, n: usize) -> u64 {
    let two = bits & bits << 1;
    let four = two & two << 2;
    match n {
        0 | 1 => bits,
        2 => two,
        3 => two & bits << 2,
        4 => four,
        5 => four & bits << 4,
        6 => four & two << 4,
        7 => four & two << 4 & bits << 6,
        _ => four & four << 4,
    }
}

/// The commas of `block`, and its spaces and tabs if `ows` (else 0), as bits by
/// position.
#[inline(always)]
fn masks(block: &[u8; 64], ows: bool) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let (mut commas, mut spaces) = (0u64, 0u64);
        for (i, part) in block.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of the x86-64 baseline, so every x86-64 CPU runs
            // these; the load reads the 16 bytes of `part` (an unaligned load is
            // allowed).
            let (c, w) = unsafe {
                let bytes = _mm_loadu_si128(part.as_ptr().cast::<__m128i>());
                let c = _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(b',' as i8)));
                let w = if ows {
                    _mm_movemask_epi8(_mm_or_si128(
                        _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b' ' as i8)),
                        _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\t' as i8)),
                    ))
                } else {
                    0
                };
                (c, w)
            };
            commas |= u64::from(c as u16) << (16 * i);
            spaces |= u64::from(w as u16) << (16 * i);
        }
        (commas, spaces)
    }
    #[cfg(not(target_arch = "x86_64"))]
    masks_swar(block, ows)
}

/// [`masks`] eight bytes at a time, for targets without SSE2 (and, in tests, to
/// check the SSE2 reading against).
#[cfg(any(test, not(target_arch = "x86_64")))]
fn masks_swar(block: &[u8; 64], ows: bool) -> (u64, u64) {
    // The top bit of each byte, gathered into the low eight bits.
    let gather =
        |m: u64| ((m >> 7) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080) >> 56;
    let (mut commas, mut spaces) = (0u64, 0u64);
    for (i, word) in block.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        commas |= gather(bytes_equal(word, b',')) << (8 * i);
        if ows {
            spaces |= gather(bytes_equal(word, b' ') | bytes_equal(word, b'\t')) << (8 * i);
        }
    }
    (commas, spaces)
}

/// The top bit of each byte of `word` that is `byte`, and no other bit: a byte is
/// tested in its low seven bits and its top bit apart, so no carry crosses bytes and
/// no byte is reported that is not `byte`.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    const LOW: u64 = u64::from_ne_bytes([0x7f; 8]);
    let x = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    !(((x & LOW) + LOW) | x | LOW)
}

/// `token` without the OWS around it (httparse lets no CR, LF or FF into a value, so
/// this trims what `trim_ascii` would).
#[inline(always)]
fn trim_ows(mut token: &[u8]) -> &[u8] {
    if let [b' ' | b'\t', ..] = token {
        token = token.trim_ascii_start();
    }
    if let [.., b' ' | b'\t'] = token {
        token = token.trim_ascii_end();
    }
    token
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

/// The reading of a head's `Connection` fields, for [`read`].
struct Collect<'a> {
    all: &'a [Header<'a>],
    /// Bit `n` (at most 63) set: some field name is `n` bytes long.
    lengths: u64,
    key: u64,
    flags: Flags,
    /// The one-byte options seen, a bit each by [`CODE`].
    one: u64,
    /// The two-byte options seen: `two[CODE[a]]` bit `CODE[b]`.
    two: [u64; 64],
    /// The longer names, made at the first option that may name one.
    names: Option<Names>,
    /// The option looked up last (if longer than a word).
    last: &'a [u8],
    /// The option of three to eight bytes looked up last: its length and
    /// [`folded_word`] (length 0: none).
    last_word: (usize, u64),
    /// The fields named so far by longer options.
    named: u128,
    /// The names of three to eight bytes named so far: bits by the index of the
    /// first field of each ([`Names::carriers`]).
    found: [u64; 2],
}

impl<'a> Visit<'a> for Collect<'a> {
    #[inline(always)]
    fn element(&mut self, option: &'a [u8]) {
        match *option {
            [] => {}
            [b] => self.one(b),
            [a, b] => self.two(a, b),
            _ => {
                self.flags.option(option);
                let len = option.len();
                if self.lengths & 1 << len.min(63) == 0 {
                    return; // no field has a name that long
                }
                // Not again if it was just looked up.
                if len <= 8 {
                    let word = (len, folded_word(option));
                    if word != self.last_word {
                        self.last_word = word;
                        self.look_up_word(word);
                    }
                } else if !(len == self.last.len() && option.eq_ignore_ascii_case(self.last)) {
                    self.last = option;
                    self.look_up(option);
                }
            }
        }
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
    fn word(&mut self, len: usize, word: u64) {
        const CLOSE: u64 = u64::from_le_bytes(*b"close\0\0\0");
        const UPGRADE: u64 = u64::from_le_bytes(*b"upgrade\0");
        if len == 5 {
            self.flags.close |= word == CLOSE;
        } else if len == 7 {
            self.flags.upgrade |= word == UPGRADE;
        }
        if (len, word) != self.last_word {
            self.last_word = (len, word);
            self.look_up_word((len, word));
        }
    }
}

impl Collect<'_> {
    /// Marks the fields `option` (three bytes or more) names: kept out of line, so
    /// that the loop over the options, which most options leave early, stays small.
    #[inline(never)]
    fn look_up(&mut self, option: &[u8]) {
        let (all, key) = (self.all, self.key);
        let names = self.names.get_or_insert_with(|| Names::new(all, key));
        self.named |= names.named(all, option, key);
    }

    /// [`look_up`](Self::look_up) for an option of three to eight bytes, as its
    /// length and [`folded_word`] (the word alone does not tell the length: `abc` and
    /// `abc\0` fold alike, and a NUL is no token byte but the caller of [`named`] may
    /// pass any bytes).
    #[inline(always)]
    fn look_up_word(&mut self, (len, word): (usize, u64)) {
        let (all, key) = (self.all, self.key);
        let names = match &self.names {
            Some(names) => names,
            None => self.names.insert(Names::new(all, key)),
        };
        let first = names.first_word(all, len, word, key);
        if first != EMPTY {
            self.found[usize::from(first >> 6)] |= 1 << (first & 63);
        }
    }

    /// The fields named: those found by lookup, and the one-byte and two-byte names
    /// against the options seen.
    fn finish(self) -> u128 {
        let mut named = self.named;
        if let Some(names) = &self.names {
            let mut found = u128::from(self.found[0]) | u128::from(self.found[1]) << 64;
            while found != 0 {
                named |= names.carriers[found.trailing_zeros() as usize];
                found &= found - 1;
            }
        }
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
                _ => false,
            };
            named |= u128::from(is_named) << i;
        }
        named
    }
}

/// Slots of [`Names`]' hash table: four per field at most, so that a lookup meets
/// few others (linear probing at a load of a quarter at most).
const SLOTS: usize = 512;

/// A free slot.
const EMPTY: u8 = u8::MAX;

// A field's index fits a `u128` of bits, and `Names`' slots (`u8`, `EMPTY` free).
const _: () = assert!(MAX_HEADERS <= 128);

/// The distinct field names of a head longer than two bytes, in any case, each with
/// the fields that carry it: made only for a head with an option that may name such
/// a field, on the stack.
struct Names {
    /// Linear probing by [`slot`]: the index of the first field of each name.
    slots: [u8; SLOTS],
    /// `carriers[i]`, for the first field `i` of a name: every field so named.
    carriers: [u128; MAX_HEADERS],
    /// `words[i]`, for the first field `i` of a name of three to eight bytes: its
    /// [`folded_word`] (0, which no such word is, for the other names).
    words: [u64; MAX_HEADERS],
}

impl Names {
    #[cold]
    #[inline(never)]
    fn new(all: &[Header<'_>], key: u64) -> Self {
        let mut names = Self {
            slots: [EMPTY; SLOTS],
            carriers: [0; MAX_HEADERS],
            words: [0; MAX_HEADERS],
        };
        for (i, f) in all.iter().enumerate() {
            let name = f.name.as_bytes();
            if name.len() < 3 {
                continue;
            }
            let mut at = slot(name, key);
            let first = loop {
                if names.slots[at] == EMPTY {
                    names.slots[at] = i as u8;
                    break i;
                }
                let first = usize::from(names.slots[at]);
                #[cfg(test)]
                work::compared();
                if all[first].name.as_bytes().eq_ignore_ascii_case(name) {
                    break first;
                }
                at = (at + 1) % SLOTS;
            };
            names.carriers[first] |= 1 << i;
            if name.len() <= 8 {
                names.words[first] = folded_word(name);
            }
        }
        names
    }

    /// The first field named as an option of three to eight bytes is, given as its
    /// length and [`folded_word`] ([`EMPTY`]: none): one comparison of words per slot
    /// (and of lengths where the words are equal).
    #[inline(always)]
    fn first_word(&self, all: &[Header<'_>], len: usize, word: u64, key: u64) -> u8 {
        let mut probe = slot_word(word, key);
        loop {
            let first = self.slots[probe];
            if first == EMPTY {
                return EMPTY;
            }
            #[cfg(test)]
            work::compared();
            if self.words[usize::from(first)] == word && all[usize::from(first)].name.len() == len {
                return first;
            }
            probe = (probe + 1) % SLOTS;
        }
    }

    /// The fields `option` (three bytes or more) names (none: 0).
    #[inline]
    fn named(&self, all: &[Header<'_>], option: &[u8], key: u64) -> u128 {
        // The run of slots from the option's own holds its name at most once.
        let mut probe = slot(option, key);
        while self.slots[probe] != EMPTY {
            let first = usize::from(self.slots[probe]);
            #[cfg(test)]
            work::compared();
            if all[first].name.as_bytes().eq_ignore_ascii_case(option) {
                return self.carriers[first];
            }
            probe = (probe + 1) % SLOTS;
        }
        0
    }
}

/// The slot of a field name in [`Names`]' table, in any case: a multiply-xor hash
/// keyed by `key` (odd) over the name eight bytes at a time, its ASCII letters
/// lowercased ([`lower_letters`]: so `A` and `a` hash alike, and only letters do; the
/// comparison after it is exact), its top bits.
fn slot(name: &[u8], key: u64) -> usize {
    if (3..=8).contains(&name.len()) {
        return slot_word(folded_word(name), key);
    }
    let mut h = key ^ name.len() as u64;
    let mut words = name.chunks_exact(8);
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        h = (h ^ lower_letters(word)).wrapping_mul(key);
    }
    let tail = words
        .remainder()
        .iter()
        .rev()
        .fold(0, |w, &b| w << 8 | u64::from(b.to_ascii_lowercase()));
    h = (h ^ tail).wrapping_mul(key);
    h = (h ^ (h >> 29)).wrapping_mul(key);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

/// [`slot`] of a name of three to eight bytes, as its [`folded_word`]: the top bits
/// of a keyed multiply, xor-shift, multiply of it.
///
/// A bare multiply-shift (`word * key`, its top bits) is universal (two given words
/// share a slot for few keys) but too regular for linear probing: names in a
/// sequence (`X-00` to `X-95`) land in evenly spaced runs for some keys, and a
/// lookup that finds no name then probes 7 slots on average (1.3 expected at the
/// table's load; seen in 1 of 100 processes with the work-counting test in
/// `proxy::headers`). The xor-shift between two multiplies spreads them as a random
/// function would, for two more instructions per lookup.
#[inline(always)]
fn slot_word(word: u64, key: u64) -> usize {
    let h = (word ^ key).wrapping_mul(key);
    let h = (h ^ (h >> 29)).wrapping_mul(key);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The bytes of `name` (three to eight) as a little-endian word, zeros after them,
/// its ASCII letters lowercased ([`lower_letters`]): two names are the same in any
/// case when their lengths and words are.
#[inline(always)]
fn folded_word(name: &[u8]) -> u64 {
    let n = name.len();
    debug_assert!((3..=8).contains(&n));
    let word = if n >= 4 {
        // Two four-byte loads that overlap: the bytes they share are the same.
        let low = u32::from_le_bytes([name[0], name[1], name[2], name[3]]);
        let high = u32::from_le_bytes([name[n - 4], name[n - 3], name[n - 2], name[n - 1]]);
        u64::from(low) | u64::from(high) << ((n - 4) * 8)
    } else {
        u64::from(name[0]) | u64::from(name[1]) << 8 | u64::from(name[2]) << 16
    };
    lower_letters(word)
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
                flags.option(option);
                for (i, name) in names.iter().enumerate() {
                    if name.as_bytes().eq_ignore_ascii_case(option) {
                        named |= 1 << i;
                    }
                }
            }
        }
        (named, flags)
    }

    /// Random heads: field names of one to twelve bytes (some `close` and the like),
    /// `Connection` values of up to 300 bytes (several 64-byte blocks) made of those
    /// names in either case, commas, spaces and tabs, other bytes, in runs; both
    /// readings (a server's, flags only, and a proxy's) against the slow one.
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
        ];
        for round in 0..4000 {
            let count = 1 + random(6);
            let mut names: Vec<&str> = (0..count).map(|_| pool[random(pool.len())]).collect();
            let mut values: Vec<Vec<u8>> = Vec::new();
            for _ in 0..1 + random(3) {
                let len = random(300);
                let mut value = Vec::new();
                while value.len() < len {
                    match random(8) {
                        0 | 1 => value.push(b','),
                        2 => value.push(b' '),
                        3 => value.push(b'\t'),
                        4 => value.push([b'"', b'a', b'Q', b';'][random(4)]),
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

    #[test]
    fn sse2_masks_match_the_eight_byte_reading() {
        let mut random = xorshift(0x2545_f491_4f6c_dd1d_u64);
        for _ in 0..20_000 {
            let mut block = [0u8; 64];
            for b in &mut block {
                *b = [
                    b',',
                    b' ',
                    b'\t',
                    b'a',
                    0x80 | b',',
                    0xac,
                    0xa0,
                    0x09 | 0x80,
                ][random(8)];
            }
            let want: (u64, u64) = block.iter().enumerate().fold((0, 0), |(c, w), (i, &b)| {
                (
                    c | u64::from(b == b',') << i,
                    w | u64::from(b == b' ' || b == b'\t') << i,
                )
            });
            assert_eq!(masks(&block, true), want);
            assert_eq!(masks_swar(&block, true), want);
            assert_eq!(masks(&block, false), (want.0, 0));
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
        // 96 fields and a `Connection` of 7,700 options, in the shapes that cost most:
        // one option repeated, distinct options naming nothing, options naming every
        // field in turn, two names alternating, names drawn at random in either case.
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
        // Names of `^` and `~` only, which differ in the `0x20` bit alone: a hash that
        // set that bit in every byte gave them all one slot, whatever the key.
        // Seven bytes (hashed as a tail) and eleven (a word, then a tail) of them.
        let pair_name = |i: usize, len: usize| -> String {
            let pair = |b: usize| if i >> (b % 7) & 1 == 1 { '~' } else { '^' };
            (0..len).map(pair).collect()
        };
        let pair_names: Vec<String> = (0..96).map(|i| pair_name(i, 7)).collect();
        let long_pair_names: Vec<String> = (0..96).map(|i| pair_name(i, 11)).collect();
        // Fifteen bytes: one word alike, then a tail of `^` and `~` (hashed byte by
        // byte: a tail that set the `0x20` bit gave them all one slot).
        let tail_pair_names: Vec<String> = (0..96)
            .map(|i| format!("x-fixed-{}", pair_name(i, 7)))
            .collect();
        let pairs = (0..7700)
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
        ] {
            let repeated = vec!["a"; 7700].join(",");
            let distinct = (0..7700)
                .map(|i| format!("o{i}"))
                .collect::<Vec<_>>()
                .join(",");
            let naming = (0..7700)
                .map(|i| names[i % 96].to_lowercase())
                .collect::<Vec<_>>()
                .join(",");
            let alternating = (0..7700)
                .map(|i| if i % 2 == 0 { "cd" } else { "EF" })
                .collect::<Vec<_>>()
                .join(" , ");
            let drawn = (0..7700)
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
            ] {
                let mut all: Vec<Header<'_>> = names
                    .iter()
                    .map(|name| Header { name, value: b"v" })
                    .collect();
                all.push(Header {
                    name: "Connection",
                    value: options.as_bytes(),
                });
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
                // The key is random in a process; here, sixteen fixed ones.
                for k in 0..16u64 {
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
                    worst <= 2 * 7700 + 2 * 96,
                    "{case}, {:?}: {worst} comparisons for 7,700 options",
                    &names[..3]
                );
            }
        }
    }

    /// A NUL is no token byte, so no parsed head has one in an option, but
    /// [`named`] takes any bytes: `abc\0` folds to the same word as `abc`, and a long
    /// name keeps the word 0, which `\0\0\0` folds to. Neither names a field.
    #[test]
    fn options_with_nul_bytes_name_no_field() {
        let long = "x".repeat(40);
        for (names, value) in [
            (vec!["abc", "wxyz"], &b"abc\0"[..]),
            (vec!["abc", "wxyz"], b"wxy\0, ab\0\0"),
            (vec![long.as_str(), "xyz"], b"\0\0\0"),
            (vec![long.as_str(), "xyz"], b"\0\0\0\0\0\0\0\0"),
        ] {
            let mut all: Vec<Header<'_>> = names
                .iter()
                .map(|name| Header { name, value: b"v" })
                .collect();
            all.push(Header {
                name: "Connection",
                value,
            });
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
