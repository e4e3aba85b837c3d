//! Ruling out every encoded spelling in a run of hex digits without running the encoded
//! automaton over it.
//!
//! Tool output is full of hex identifiers (a commit SHA per record, digests, request
//! ids), each a run long enough for [`super::decode::long_runs`] to hand to the encoded
//! automaton, whose start-up per run costs more than reading the run. Yet in a run made
//! of hex digits only, the only encoded spellings that can occur are those made of hex
//! digits alone: the hex spellings (no base64 spelling is one, which [`HexGate::new`]
//! checks). A hex spelling writes each byte of its trigger as two digits, so an
//! occurrence at offset `s` puts at offsets `s`, `s + 2`, … at least
//! [`HexGate::min_pairs`] consecutive digit pairs that each spell a byte found in some
//! trigger. A run without such a streak, at either parity, holds no spelling; one with
//! it goes to the automaton as before. Random hex has such a streak rarely (a trigger
//! byte is about one pair value in four).

use super::decode::Encoding;

/// A hex digit's value, or [`NOT_HEX`].
const HEX_VALUE: [u8; 256] = {
    let mut value = [NOT_HEX; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        value[b] = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            b'A'..=b'F' => byte - b'A' + 10,
            _ => NOT_HEX,
        };
        b += 1;
    }
    value
};
const NOT_HEX: u8 = 16;

pub struct HexGate {
    /// The byte values some hex spelling writes as a digit pair.
    spelled: [bool; 256],
    /// The fewest digit pairs a hex spelling has.
    min_pairs: usize,
}

impl HexGate {
    /// The gate for the encoded `keywords`; `None` where its premise fails: a base64
    /// spelling made of hex digits only (the automaton is not matched by case, so
    /// `A`–`F` count too), or a hex spelling of odd length.
    pub fn new(keywords: &[(String, Encoding)]) -> Option<Self> {
        let mut spelled = [false; 256];
        let mut min_pairs = usize::MAX;
        for (keyword, encoding) in keywords {
            let bytes = keyword.as_bytes();
            let hex_only = bytes.iter().all(|&b| HEX_VALUE[usize::from(b)] != NOT_HEX);
            match encoding {
                Encoding::Hex if hex_only && !bytes.is_empty() && bytes.len() % 2 == 0 => {
                    for pair in bytes.chunks(2) {
                        spelled[pair_value(pair[0], pair[1])] = true;
                    }
                    min_pairs = min_pairs.min(bytes.len() / 2);
                }
                Encoding::Hex => return None,
                Encoding::Base64 { .. } if hex_only => return None,
                Encoding::Base64 { .. } => {}
            }
        }
        (min_pairs != usize::MAX).then_some(Self { spelled, min_pairs })
    }

    /// Whether `run` is made of hex digits only and has no streak of
    /// [`HexGate::min_pairs`] digit pairs spelling trigger bytes at either parity: then
    /// no encoded spelling occurs in it.
    pub fn rules_out(&self, run: &[u8]) -> bool {
        if run.len() < 2 {
            return false;
        }
        let mut streak = [0usize; 2];
        let mut previous = HEX_VALUE[usize::from(run[0])];
        if previous == NOT_HEX {
            return false;
        }
        for (i, &b) in run.iter().enumerate().skip(1) {
            let digit = HEX_VALUE[usize::from(b)];
            if digit == NOT_HEX {
                return false;
            }
            // The pair starting at `i - 1`.
            let streak = &mut streak[i % 2];
            if self.spelled[usize::from(previous) * 16 + usize::from(digit)] {
                *streak += 1;
                if *streak >= self.min_pairs {
                    return false;
                }
            } else {
                *streak = 0;
            }
            previous = digit;
        }
        true
    }

    #[cfg(test)]
    pub fn min_pairs(&self) -> usize {
        self.min_pairs
    }
}

/// The byte two hex digits spell (both checked to be digits).
fn pair_value(high: u8, low: u8) -> usize {
    usize::from(HEX_VALUE[usize::from(high)]) * 16 + usize::from(HEX_VALUE[usize::from(low)])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::HexGate;
    use crate::mask::decode::{self, Encoding};

    fn gate() -> HexGate {
        HexGate::new(&decode::keywords()).expect("no base64 spelling is hex digits only")
    }

    #[test]
    fn the_premise_holds_for_the_built_in_spellings_and_is_checked() {
        assert_eq!(gate().min_pairs(), 4, "`AKIA`, `ghp_`: four bytes");
        // A base64 spelling of hex digits only would break the premise: no gate.
        let odd = vec![
            ("70617373".to_owned(), Encoding::Hex),
            ("Dead0Beef".to_owned(), Encoding::Base64 { phase: 0 }),
        ];
        assert!(HexGate::new(&odd).is_none());
    }

    #[test]
    fn a_commit_sha_is_ruled_out_and_a_hex_spelling_is_not() {
        let gate = gate();
        assert!(gate.rules_out(b"0123456789abcdef0123456789abcdef01234567"));
        // `password` in hex, in either case and at either parity.
        assert!(!gate.rules_out(b"0070617373776f726400"));
        assert!(!gate.rules_out(b"00070617373776F726400"));
        // Not hex digits only: left to the automaton.
        assert!(!gate.rules_out(b"0123456789abcdefg0123456789abcdef"));
    }

    proptest! {
        /// Wherever a hex spelling sits in a hex run, in either case, the run is not
        /// ruled out.
        #[test]
        fn no_run_holding_a_hex_spelling_is_ruled_out(
            before in "[0-9a-fA-F]{0,20}",
            after in "[0-9a-fA-F]{0,20}",
            pick in any::<prop::sample::Index>(),
            upper in any::<bool>(),
        ) {
            let spellings: Vec<String> = decode::keywords()
                .into_iter()
                .filter(|(_, encoding)| *encoding == Encoding::Hex)
                .map(|(keyword, _)| keyword)
                .collect();
            let mut spelling = pick.get(&spellings).clone();
            if upper {
                spelling.make_ascii_uppercase();
            }
            let run = format!("{before}{spelling}{after}");
            prop_assert!(!gate().rules_out(run.as_bytes()), "{}", run);
        }
    }
}
