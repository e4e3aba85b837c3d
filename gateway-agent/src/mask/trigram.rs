//! The scanner's first stage: where in a string a keyword can possibly be, found without
//! the keyword automaton.
//!
//! Every keyword (ASCII case-insensitive) is represented by one of its trigrams, chosen
//! to be rare in prose and JSON (`ssw` for `password`, not `pas`; `cke` for `docker
//! login`, not `er `). A string is read once,
//! eight bytes at a time: each position's three bytes, case-folded by setting bit 5
//! (`A`→`a`; it also folds a few punctuation pairs such as `_`/DEL, which only adds false
//! hits), are hashed into an 8 KiB bit set that stays in L1. Only the windows around hits
//! are handed to the automaton; a string with no hit costs this one pass and nothing
//! else, and nothing is allocated.
//!
//! Exactness: every keyword occurrence holds its chosen trigram, whose folded hash is in
//! the set, so it is a hit; the occurrence lies within the reach recorded for that hash
//! (the most over the keywords entered there), so inside the hit's window. Windows that overlap are merged and
//! the automaton runs over each merged region, so it reports exactly the occurrences the
//! whole-string pass reports, in the same order (see the differential tests).
//! Two-byte keywords are entered with every possible third byte, one-byte keywords are
//! not supported: the scanner has two, `%` and `\`, which only set a flag, and this
//! pass reports them from the same loads.

/// Longest keyword the filter takes (its reach is kept in a byte).
pub const MAX_KEYWORD: usize = 255;

/// Windows at most this far apart are scanned as one region ([`Trigrams::gap`]).
const MIN_GAP: usize = 64;

/// Bit-set size in 64-bit words: 65 536 bits, 8 KiB.
const WORDS: usize = 1024;

/// Case-folding of eight bytes at once: bit 5 set (`A`–`Z` → `a`–`z`).
const FOLD: u64 = 0x2020_2020_2020_2020;

/// Trigrams frequent in English prose, identifiers and JSON text, most frequent first;
/// a keyword is represented by one of its trigrams not in this list where it has one
/// (a hit on a frequent trigram costs an automaton run over its window).
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
    /// Per bit: a keyword occurrence whose trigram hashes there starts at most `[0]`
    /// bytes before the hit and ends at most `[1]` bytes after the hit's start (the most
    /// over the keywords sharing the bit). Read on hits only, so it may live outside L1.
    reach: Box<[[u8; 2]]>,
    /// Windows closer than this are one region: at least the most any keyword starts
    /// before its hit (so a region handed on takes no more windows), and wide enough that
    /// the automaton runs over a short gap rather than starting again after it (a start
    /// costs about as much as scanning [`MIN_GAP`] bytes).
    gap: usize,
}

impl Trigrams {
    /// The filter for `keywords`, each 2 to [`MAX_KEYWORD`] bytes long (checked by the
    /// caller).
    pub fn new<'k>(keywords: impl IntoIterator<Item = &'k str>) -> Self {
        let mut trigrams = Self {
            bits: Box::new([0; WORDS]),
            reach: vec![[0; 2]; WORDS * 64].into_boxed_slice(),
            gap: MIN_GAP,
        };
        for keyword in keywords {
            let folded: Vec<u8> = keyword.bytes().map(|b| b | 0x20).collect();
            match folded.len() {
                0 | 1 => debug_assert!(false, "keyword {keyword:?} shorter than two bytes"),
                len if len > MAX_KEYWORD => debug_assert!(false, "keyword {keyword:?} too long"),
                2 => {
                    // Any third byte, the padding past a string's end included.
                    for third in 0..=u8::MAX {
                        trigrams.insert([folded[0], folded[1], third | 0x20], 0, 2);
                    }
                }
                len => {
                    let offset = (0..=len - 3)
                        .min_by_key(|&at| rank(&folded[at..at + 3]))
                        .unwrap_or(0);
                    trigrams.insert(
                        [folded[offset], folded[offset + 1], folded[offset + 2]],
                        offset,
                        len - offset,
                    );
                }
            }
        }
        trigrams
    }

    /// Enters a keyword by its trigram, found `back` bytes into it, `ahead` bytes from
    /// its end (both under [`MAX_KEYWORD`]).
    fn insert(&mut self, trigram: [u8; 3], back: usize, ahead: usize) {
        let bit = hash(u32::from_le_bytes([trigram[0], trigram[1], trigram[2], 0]));
        self.bits[bit / 64] |= 1 << (bit % 64);
        let reach = &mut self.reach[bit];
        reach[0] = reach[0].max(u8::try_from(back).unwrap_or(u8::MAX));
        reach[1] = reach[1].max(u8::try_from(ahead).unwrap_or(u8::MAX));
        self.gap = self.gap.max(back);
    }

    /// Whether the folded trigram `packed` (three bytes, little-endian) is in the set.
    #[inline(always)]
    fn has(&self, packed: u32) -> u64 {
        let bit = hash(packed);
        (self.bits[bit / 64] >> (bit % 64)) & 1
    }

    /// The reach of the trigram `packed` ([`Trigrams::reach`]).
    fn reach(&self, packed: u32) -> (usize, usize) {
        let [back, ahead] = self.reach[hash(packed)];
        (usize::from(back), usize::from(ahead))
    }

    /// Calls `region(start, end)` for each merged window of `bytes` in which a keyword
    /// may occur, in order, none overlapping; says, from the same loads, whether `bytes`
    /// holds a `%` or a `\\` (what the scanner's decoders start from).
    pub fn regions(&self, bytes: &[u8], mut region: impl FnMut(usize, usize)) -> Seen {
        let len = bytes.len();
        let mut open: Option<(usize, usize)> = None;
        let mut hit = |at: usize, packed: u32| {
            let (back, ahead) = self.reach(packed);
            let start = at.saturating_sub(back);
            let end = (at + ahead).min(len);
            match &mut open {
                // Overlapping, or close enough that a later window might still reach
                // back into the open region: one region.
                Some((open_start, open_end))
                    if start <= *open_end || *open_end + self.gap >= at =>
                {
                    *open_start = (*open_start).min(start);
                    *open_end = (*open_end).max(end);
                }
                _ => {
                    if let Some((s, e)) = open.replace((start, end)) {
                        region(s, e);
                    }
                }
            }
        };
        let (mut percent, mut escape) = (0, 0);
        let mut at = 0;
        // Six trigram positions per eight-byte load (consecutive loads overlap by two
        // bytes, so every byte is in one for the `%` and `\` flags).
        while at + 8 <= len {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            let raw = u64::from_le_bytes(word);
            percent |= zero_byte(raw ^ (ONES * u64::from(b'%')));
            escape |= zero_byte(raw ^ (ONES * u64::from(b'\\')));
            let word = raw | FOLD;
            let mut found = 0;
            for k in 0..6 {
                found |= self.has((word >> (8 * k)) as u32 & 0x00FF_FFFF) << k;
            }
            while found != 0 {
                let k = found.trailing_zeros();
                hit(at + k as usize, (word >> (8 * k)) as u32 & 0x00FF_FFFF);
                found &= found - 1;
            }
            at += 6;
        }
        // The tail, padded with folded zero bytes (two-byte keywords allow any third).
        let tail = bytes.get(at..).unwrap_or_default();
        percent |= u64::from(tail.contains(&b'%'));
        escape |= u64::from(tail.contains(&b'\\'));
        while at < len {
            let byte = |i: usize| bytes.get(i).copied().unwrap_or(0) | 0x20;
            let packed = u32::from_le_bytes([byte(at), byte(at + 1), byte(at + 2), 0]);
            if self.has(packed) != 0 {
                hit(at, packed);
            }
            at += 1;
        }
        if let Some((s, e)) = open {
            region(s, e);
        }
        Seen {
            percent: percent != 0,
            escape: escape != 0,
        }
    }
}

/// Bytes [`Trigrams::regions`] noticed on its way.
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

/// Multiplicative hash of a packed trigram to a bit index (top 16 bits).
#[inline(always)]
fn hash(packed: u32) -> usize {
    (packed.wrapping_mul(0x9E37_79B1) >> 16) as usize
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
    use super::*;

    fn regions(trigrams: &Trigrams, text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let seen = trigrams.regions(text.as_bytes(), |s, e| out.push((s, e)));
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
    fn a_string_without_keywords_has_no_region() {
        let trigrams = Trigrams::new(["password", "ghp_", "pw"]);
        assert!(regions(&trigrams, "the quick brown fox jumps over the lazy dog").is_empty());
        assert!(regions(&trigrams, "").is_empty());
    }

    #[test]
    fn every_occurrence_lies_in_a_region_in_any_case_and_at_the_edges() {
        let keywords = ["password", "ghp_", "pw", "q~", "AKIA"];
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
            let found = regions(&trigrams, text);
            let lower = text.to_ascii_lowercase();
            for keyword in keywords {
                let keyword = keyword.to_ascii_lowercase();
                for (at, _) in lower.match_indices(&keyword) {
                    assert!(
                        found
                            .iter()
                            .any(|&(s, e)| s <= at && at + keyword.len() <= e),
                        "{keyword:?} at {at} of {text:?} outside {found:?}"
                    );
                }
            }
            assert!(found.windows(2).all(|w| w[0].1 < w[1].0), "{found:?}");
        }
    }
}
