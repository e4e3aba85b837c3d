//! Keys compared the way `keys` compares them (lowercase ASCII letters and digits only,
//! `apiKey` = `API_KEY`), without allocating: the walk looks at every key of every object.

use crate::mask::keys::normalise;

/// Normalised keys up to this length live on the stack.
const INLINE: usize = 48;

pub struct NormKey {
    inline: [u8; INLINE],
    len: usize,
    /// The rare longer key.
    heap: Option<String>,
}

impl NormKey {
    pub fn new(key: &str) -> Self {
        let mut norm = Self {
            inline: [0; INLINE],
            len: 0,
            heap: None,
        };
        for b in key.bytes().filter(u8::is_ascii_alphanumeric) {
            if norm.len == INLINE {
                norm.heap = Some(normalise(key));
                break;
            }
            norm.inline[norm.len] = b.to_ascii_lowercase();
            norm.len += 1;
        }
        norm
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.heap {
            Some(heap) => heap.as_bytes(),
            None => &self.inline[..self.len],
        }
    }

    pub fn is(&self, name: &str) -> bool {
        self.bytes() == name.as_bytes()
    }

    pub fn is_any(&self, names: &[&str]) -> bool {
        names.iter().any(|name| self.is(name))
    }

    pub fn ends_with(&self, suffix: &str) -> bool {
        self.bytes().ends_with(suffix.as_bytes())
    }
}
