//! The scanner's first stage: where in a string a keyword can possibly be, found without
//! the keyword automaton.
//!
//! Every keyword (ASCII case-insensitive) is represented by one of its trigrams, chosen
//! to be rare in prose and JSON (`ssw` for `password`, not `pas`). A string is read once,
//! eight bytes at a time: each position's three bytes, case-folded by setting bit 5
//! (`A`→`a`; it also folds a few punctuation pairs such as `_`/DEL, which only adds false
//! hits), are hashed into an 8 KiB bit set that stays in L1. Only the windows around hits
//! are handed to the automaton; a string with no hit costs this one pass and nothing
//! else, and nothing is allocated.
//!
//! Exactness: every keyword occurrence holds its chosen trigram, whose folded hash is in
//! the set, so it is a hit; the occurrence lies within `back` bytes before and `ahead`
//! bytes after that hit, so inside the hit's window. Windows that overlap are merged and
//! the automaton runs over each merged region, so it reports exactly the occurrences the
//! whole-string pass reports, in the same order (see the differential tests).
//! Two-byte keywords are entered with every possible third byte, one-byte keywords are
//! not supported (the scanner looks for its two, `%` and `\`, with `memchr`).

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
    /// A keyword occurrence starts at most `back` bytes before its trigram's hit.
    back: usize,
    /// …and ends at most `ahead` bytes after the hit's start.
    ahead: usize,
}

impl Trigrams {
    /// The filter for `keywords`, each at least two bytes long (checked by the caller).
    pub fn new<'k>(keywords: impl IntoIterator<Item = &'k str>) -> Self {
        let mut trigrams = Self {
            bits: Box::new([0; WORDS]),
            back: 0,
            ahead: 0,
        };
        for keyword in keywords {
            let folded: Vec<u8> = keyword.bytes().map(|b| b | 0x20).collect();
            match folded.len() {
                0 | 1 => debug_assert!(false, "keyword {keyword:?} shorter than two bytes"),
                2 => {
                    // Any third byte, the padding past a string's end included.
                    for third in 0..=u8::MAX {
                        trigrams.insert([folded[0], folded[1], third | 0x20]);
                    }
                    trigrams.ahead = trigrams.ahead.max(2);
                }
                len => {
                    let offset = (0..=len - 3)
                        .min_by_key(|&at| rank(&folded[at..at + 3]))
                        .unwrap_or(0);
                    trigrams.insert([folded[offset], folded[offset + 1], folded[offset + 2]]);
                    trigrams.back = trigrams.back.max(offset);
                    trigrams.ahead = trigrams.ahead.max(len - offset);
                }
            }
        }
        trigrams
    }

    fn insert(&mut self, trigram: [u8; 3]) {
        let bit = hash(u32::from_le_bytes([trigram[0], trigram[1], trigram[2], 0]));
        self.bits[bit / 64] |= 1 << (bit % 64);
    }

    /// Whether the folded trigram `packed` (three bytes, little-endian) is in the set.
    #[inline(always)]
    fn has(&self, packed: u32) -> u64 {
        let bit = hash(packed);
        (self.bits[bit / 64] >> (bit % 64)) & 1
    }

    /// Calls `region(start, end)` for each merged window of `bytes` in which a keyword
    /// may occur, in order, none overlapping.
    pub fn regions(&self, bytes: &[u8], mut region: impl FnMut(usize, usize)) {
        let len = bytes.len();
        let mut open: Option<(usize, usize)> = None;
        let mut hit = |at: usize| {
            let start = at.saturating_sub(self.back);
            let end = (at + self.ahead).min(len);
            match &mut open {
                Some((_, open_end)) if start <= *open_end => *open_end = (*open_end).max(end),
                _ => {
                    if let Some((s, e)) = open.replace((start, end)) {
                        region(s, e);
                    }
                }
            }
        };
        let mut at = 0;
        // Six trigram positions per eight-byte load.
        while at + 8 <= len {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[at..at + 8]);
            let word = u64::from_le_bytes(word) | FOLD;
            let mut found = 0;
            for k in 0..6 {
                found |= self.has((word >> (8 * k)) as u32 & 0x00FF_FFFF) << k;
            }
            while found != 0 {
                hit(at + found.trailing_zeros() as usize);
                found &= found - 1;
            }
            at += 6;
        }
        // The tail, padded with folded zero bytes (two-byte keywords allow any third).
        while at < len {
            let byte = |i: usize| bytes.get(i).copied().unwrap_or(0) | 0x20;
            let packed = u32::from_le_bytes([byte(at), byte(at + 1), byte(at + 2), 0]);
            if self.has(packed) != 0 {
                hit(at);
            }
            at += 1;
        }
        if let Some((s, e)) = open {
            region(s, e);
        }
    }
}

/// Multiplicative hash of a packed trigram to a bit index (top 16 bits).
#[inline(always)]
fn hash(packed: u32) -> usize {
    (packed.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

/// How common a folded trigram is: its place in [`COMMON`], or past the end if absent;
/// among absent ones, those holding a non-letter are preferred (rarer in prose).
fn rank(trigram: &[u8]) -> usize {
    match COMMON.iter().position(|c| c.as_bytes() == trigram) {
        Some(place) => COMMON.len() + 2 - place,
        None if trigram.iter().all(u8::is_ascii_lowercase) => 1,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(trigrams: &Trigrams, text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        trigrams.regions(text.as_bytes(), |s, e| out.push((s, e)));
        out
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
