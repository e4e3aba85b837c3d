//! The scanner's keyword search for its rule and assignment keywords, without an
//! automaton.
//!
//! Every keyword (ASCII case-insensitive) is entered by one of its trigrams, chosen to be
//! rare in prose and JSON (`ssw` for `password`, not `pas`; `ock` for `docker login`,
//! not `er `). A string is read once, eight bytes at a time: each position's three bytes,
//! case-folded by setting bit 5 (`A`→`a`; it also folds a few punctuation pairs such as
//! `_`/DEL, which only adds false hits), are hashed into an 8 KiB bit set that stays in
//! L1. A hit is checked directly against the few keywords entered under its hash (a
//! case-insensitive compare at the keyword's offset); a string with no hit costs this one
//! pass and nothing else, and nothing is allocated.
//!
//! Exactness: every keyword occurrence holds its chosen trigram at its chosen offset, so
//! its hash is a hit there and the compare finds it; a compare finds nothing that is not
//! an occurrence. Occurrences are handed on ordered as an overlapping Aho-Corasick pass
//! reports them (by end, longer first, then by keyword), which the differential tests
//! check against that pass. Two-byte keywords are entered with every possible third byte;
//! one-byte keywords are not supported: the scanner has two, `%` and `\`, which only set a
//! flag, and this pass reports them from the same loads.

/// Longest keyword the search takes (its trigram's offset is kept in a byte).
pub const MAX_KEYWORD: usize = 255;

/// Bit-set size in 64-bit words: 65 536 bits, 8 KiB.
const WORDS: usize = 1024;

/// Case-folding of eight bytes at once: bit 5 set (`A`–`Z` → `a`–`z`).
const FOLD: u64 = 0x2020_2020_2020_2020;

/// Trigrams frequent in English prose, identifiers and JSON text, most frequent first;
/// a keyword is represented by one of its trigrams not in this list where it has one
/// (a hit on a frequent trigram costs a check against its keywords for nothing).
const COMMON: &[&str] = &[
    "the", "ing", "and", "ion", "tio", "ent", "for", "ati", "her", "ter", "hat", "tha", "ere",
    "ate", "his", "con", "res", "ver", "all", "ons", "nce", "men", "ith", "ted", "ers", "pro",
    "thi", "wit", "are", "ess", "not", "ive", "was", "ect", "rea", "com", "eve", "per", "int",
    "est", "sta", "cti", "ica", "ist", "ear", "ain", "one", "our", "iti", "rat", "ted", "ser",
    "ame", "ord", "ati", "art", "sio", "ste", "ove", "str", "ine", "tra", "ave", "ate", "str",
    "red", "use", "ore", "rin", "lin", "tor", "des", "ble", "ang", "ass", "pas", "sec", "ret",
    "ken", "tok", "key", "aut", "uth", "cre", "ede", "den", "dat", "ata", "mon", "mar", "doc",
    "acc", "cce", "ces", "oun", "unt", "cur", "rre", "ren", "ses", "sio", "ssi", "ses", "nt_",
    "_id", "id_", "_to", "to_", "_ke", "ey_", "api", "htt", "ttp", "tps", "ps:", "s:/", "://",
    "ww.", "www", ".co", "com", "om/", "use", "ser", "na_", "ame", "nam", "typ", "ype", "val",
    "alu", "lue", "tex", "ext", "xt_", "ime", "tim", "err", "rro", "ror", "sag", "age", "mes",
    "ess", "ssa", "ref", "sh ", "in:", "ini", "nit", "log", "ogi", "gin", "ach", "ine", "chi",
    "mac", "bot", "oth", "oke", "en_", "_se", "_pa", "_ac", "_au", "rd_",
];

pub struct Trigrams {
    bits: Box<[u64; WORDS]>,
    /// The keywords, case-folded to lowercase ASCII, by index.
    keywords: Vec<Box<[u8]>>,
    /// Per bit, where its entries start in `entries` (and, one further, end).
    slots: Box<[u32]>,
    /// (keyword index, offset of its trigram in it), grouped by bit. Read on hits only.
    entries: Vec<(u32, u8)>,
}

impl Trigrams {
    /// The search for `keywords`, each 2 to [`MAX_KEYWORD`] bytes long (checked by the
    /// caller); occurrences are reported by index into `keywords`.
    pub fn new<'k>(keywords: impl IntoIterator<Item = &'k str>) -> Self {
        let mut bits = Box::new([0u64; WORDS]);
        let mut entered: Vec<(usize, u32, u8)> = Vec::new();
        let mut folded_keywords = Vec::new();
        for (index, keyword) in keywords.into_iter().enumerate() {
            let folded: Vec<u8> = keyword.bytes().map(|b| b | 0x20).collect();
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let mut enter = |trigram: [u8; 3], offset: usize| {
                let bit = hash(u64::from(u32::from_le_bytes([
                    trigram[0], trigram[1], trigram[2], 0,
                ])));
                bits[bit / 64] |= 1 << (bit % 64);
                entered.push((bit, index, u8::try_from(offset).unwrap_or(u8::MAX)));
            };
            match folded.len() {
                0 | 1 => debug_assert!(false, "keyword {keyword:?} shorter than two bytes"),
                len if len > MAX_KEYWORD => debug_assert!(false, "keyword {keyword:?} too long"),
                2 => {
                    // Any third byte, the padding past a string's end included.
                    for third in 0..=u8::MAX {
                        enter([folded[0], folded[1], third | 0x20], 0);
                    }
                }
                len => {
                    let offset = (0..=len - 3)
                        .min_by_key(|&at| rank(&folded[at..at + 3]))
                        .unwrap_or(0);
                    enter(
                        [folded[offset], folded[offset + 1], folded[offset + 2]],
                        offset,
                    );
                }
            }
            folded_keywords.push(keyword.to_ascii_lowercase().into_bytes().into_boxed_slice());
        }
        entered.sort_unstable();
        entered.dedup();
        let mut slots = vec![0u32; WORDS * 64 + 1].into_boxed_slice();
        for &(bit, _, _) in &entered {
            slots[bit + 1] += 1;
        }
        for bit in 0..WORDS * 64 {
            slots[bit + 1] += slots[bit];
        }
        Self {
            bits,
            keywords: folded_keywords,
            slots,
            entries: entered
                .into_iter()
                .map(|(_, index, offset)| (index, offset))
                .collect(),
        }
    }

    /// Whether hash `bit` is in the set (0 or 1).
    #[inline(always)]
    fn has(&self, bit: usize) -> u64 {
        (self.bits[bit / 64] >> (bit % 64)) & 1
    }

    /// Calls `found(keyword, start, end)` for every keyword occurrence in `bytes`, in the
    /// order of an overlapping Aho-Corasick pass: by end, then longer first, then by
    /// keyword index. Says, from the same loads, whether `bytes` holds a `%` or a `\`
    /// (what the scanner's decoders start from). Allocates only when something is found.
    pub fn occurrences(&self, bytes: &[u8], mut found: impl FnMut(usize, usize, usize)) -> Seen {
        let mut hits: Vec<(usize, std::cmp::Reverse<usize>, u32)> = Vec::new();
        let seen = self.hits(bytes, |at, bit| {
            let (from, to) = (self.slots[bit] as usize, self.slots[bit + 1] as usize);
            for &(index, offset) in &self.entries[from..to] {
                let Some(start) = at.checked_sub(usize::from(offset)) else {
                    continue;
                };
                let keyword = &self.keywords[index as usize];
                let end = start + keyword.len();
                if bytes
                    .get(start..end)
                    .is_some_and(|text| text.eq_ignore_ascii_case(keyword))
                {
                    hits.push((end, std::cmp::Reverse(start), index));
                }
            }
        });
        hits.sort_unstable();
        for (end, std::cmp::Reverse(start), index) in hits {
            found(index as usize, start, end);
        }
        seen
    }

    /// Calls `hit(position, trigram hash)` for every position whose trigram is in the
    /// set, in order; flags `%` and `\\`.
    fn hits(&self, bytes: &[u8], mut hit: impl FnMut(usize, usize)) -> Seen {
        let len = bytes.len();
        let (mut percent, mut escape) = (0, 0);
        let mut at = 0;
        // Eight trigram positions per step: one eight-byte load (which alone sets the `%`
        // and `\` flags: steps do not overlap) and the two bytes after it for the last
        // two positions.
        while let Some(chunk) = bytes.get(at..at + 10) {
            let mut word = [0u8; 8];
            word.copy_from_slice(&chunk[..8]);
            let raw = u64::from_le_bytes(word);
            percent |= zero_byte(raw ^ (ONES * u64::from(b'%')));
            escape |= zero_byte(raw ^ (ONES * u64::from(b'\\')));
            let low = raw | FOLD;
            // Bytes 6 to 9, folded.
            let high =
                (low >> 48) | (u64::from(u16::from_le_bytes([chunk[8], chunk[9]]) | 0x2020) << 16);
            let mut found = 0;
            for k in 0..6 {
                found |= self.has(hash(low >> (8 * k))) << k;
            }
            found |= self.has(hash(high)) << 6;
            found |= self.has(hash(high >> 8)) << 7;
            while found != 0 {
                let k = found.trailing_zeros();
                let window = if k < 6 {
                    low >> (8 * k)
                } else {
                    high >> (8 * (k - 6))
                };
                hit(at + k as usize, hash(window));
                found &= found - 1;
            }
            at += 8;
        }
        // The tail, padded with folded zero bytes (two-byte keywords allow any third).
        let tail = bytes.get(at..).unwrap_or_default();
        percent |= u64::from(tail.contains(&b'%'));
        escape |= u64::from(tail.contains(&b'\\'));
        while at < len {
            let byte = |i: usize| bytes.get(i).copied().unwrap_or(0) | 0x20;
            let packed = u32::from_le_bytes([byte(at), byte(at + 1), byte(at + 2), 0]);
            let bit = hash(u64::from(packed));
            if self.has(bit) != 0 {
                hit(at, bit);
            }
            at += 1;
        }
        Seen {
            percent: percent != 0,
            escape: escape != 0,
        }
    }
}

/// Bytes [`Trigrams::occurrences`] noticed on its way.
pub struct Seen {
    pub percent: bool,
    pub escape: bool,
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// Non-zero when one of the eight bytes of `x` is zero.
#[inline(always)]
fn zero_byte(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & 0x8080_8080_8080_8080
}

/// Multiplicative hash of the trigram in the low three bytes of `window` to a bit index:
/// bits 8 to 23 of the low three bytes times an odd constant. The multiplier is shifted
/// up by 40 bits so that the product's top 16 bits are those and the bytes above the
/// trigram fall off the top: no mask is needed to cut the trigram out of a longer load.
#[inline(always)]
fn hash(window: u64) -> usize {
    (window.wrapping_mul(0x9E37_79B1 << 40) >> 48) as usize
}

/// How common a folded trigram is in prose, JSON and logs (lower is rarer): its place
/// in [`COMMON`] if listed, else the sum of its bytes' commonness ([`byte_weight`]).
fn rank(trigram: &[u8]) -> usize {
    let listed = |c: &&str| c.bytes().map(|b| b | 0x20).eq(trigram.iter().copied());
    match COMMON.iter().position(listed) {
        Some(place) => 1000 - place,
        None => trigram.iter().map(|&b| byte_weight(b)).sum(),
    }
}

/// A rough commonness of a folded byte in text: space and the frequent English letters
/// highest, URL and path punctuation next, rare letters and symbols lowest.
fn byte_weight(b: u8) -> usize {
    match b {
        b' ' => 12,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' => 8,
        b's' | b'r' | b'h' | b'l' | b'd' => 7,
        b'c' | b'u' | b'm' | b'f' | b'p' | b'g' => 5,
        b'/' | b':' | b'.' | b',' | b'"' | b'w' | b'y' | b'b' => 5,
        b'0'..=b'9' => 4,
        b'_' | b'-' | b'=' => 3,
        b'v' | b'k' => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    /// Occurrences as (keyword, start, end), checking the `%` and `\\` flags.
    fn occurrences(trigrams: &Trigrams, text: &str) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        let seen = trigrams.occurrences(text.as_bytes(), |k, s, e| out.push((k, s, e)));
        assert_eq!(seen.percent, text.contains('%'), "{text:?}");
        assert_eq!(seen.escape, text.contains('\\'), "{text:?}");
        out
    }

    #[test]
    #[ignore = "prints the trigram each keyword is found by"]
    fn print_chosen_trigrams() {
        let keywords = crate::mask::rules::all()
            .flat_map(|rule| rule.keywords.iter().copied())
            .chain(crate::mask::assign::KEYWORDS.iter().copied());
        for keyword in keywords {
            let folded: Vec<u8> = keyword.bytes().map(|b| b | 0x20).collect();
            if folded.len() < 3 {
                continue;
            }
            let at = (0..=folded.len() - 3)
                .min_by_key(|&at| rank(&folded[at..at + 3]))
                .unwrap_or(0);
            println!(
                "{keyword:?} {:?}",
                String::from_utf8_lossy(&folded[at..at + 3])
            );
        }
    }

    #[test]
    fn a_string_without_keywords_has_no_occurrence() {
        let trigrams = Trigrams::new(["password", "ghp_", "pw"]);
        assert!(occurrences(&trigrams, "the quick brown fox jumps over the lazy dog").is_empty());
        assert!(occurrences(&trigrams, "").is_empty());
    }

    /// Every occurrence of `keywords` in `text`, by brute force, in the order
    /// [`Trigrams::occurrences`] promises.
    fn expected(keywords: &[&str], text: &str) -> Vec<(usize, usize, usize)> {
        let lower = text.to_ascii_lowercase();
        let mut expected = Vec::new();
        for (k, keyword) in keywords.iter().enumerate() {
            let keyword = keyword.to_ascii_lowercase();
            for at in 0..lower.len() {
                if lower.as_bytes()[at..].starts_with(keyword.as_bytes()) {
                    expected.push((at + keyword.len(), std::cmp::Reverse(at), k));
                }
            }
        }
        expected.sort_unstable();
        expected
            .into_iter()
            .map(|(end, std::cmp::Reverse(start), k)| (k, start, end))
            .collect()
    }

    proptest::proptest! {
        /// Keywords at every offset of the eight-position steps and of the tail, in any
        /// case, among filler: all found, in order, and the flags right.
        #[test]
        fn occurrences_agree_with_brute_force(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    3 => "[a-z _%\\\\]{0,11}",
                    1 => proptest::sample::select(vec![
                        "password", "PassWord", "ghp_", "pw", "PW", "q~", "akia", "pass", "ss",
                    ]).prop_map(str::to_owned),
                ],
                0..12,
            )
        ) {
            let keywords = ["password", "ghp_", "pw", "q~", "AKIA", "pass", "ss"];
            let trigrams = Trigrams::new(keywords);
            let text = parts.concat();
            proptest::prop_assert_eq!(occurrences(&trigrams, &text), expected(&keywords, &text));
        }
    }

    #[test]
    fn every_occurrence_is_found_in_any_case_at_the_edges_in_order() {
        let keywords = ["password", "ghp_", "pw", "q~", "AKIA", "pass", "ss"];
        let trigrams = Trigrams::new(keywords);
        for text in [
            "PassWord",
            "xx ghp_abc",
            "ends in pW",
            "q~",
            "a long prefix of prose before the akia key and some more text after it all",
            "pw at the start, then PASSWORD in the middle and Ghp_ at the end: ghp_",
            "100% of it\\n, then PASSWORD%3D in the middle and Ghp_ at the end: ghp_",
            "at the very end %",
            "\\ at the start and the end \\",
        ] {
            let expected = expected(&keywords, text);
            assert_eq!(occurrences(&trigrams, text), expected, "{text:?}");
        }
    }
}
