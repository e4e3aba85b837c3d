//! Values that sit where a secret would but are none: an empty string, a variable
//! reference, a redaction someone already made. Masking them would hide nothing and
//! mangle what the caller reads (a config template, source code).

/// Is `value`, found under a sensitive key, certainly not a secret?
pub fn is_not_a_secret(value: &str) -> bool {
    let value = value.trim();
    if value.is_empty() {
        return true;
    }
    // `${DB_PASSWORD}`, `$DB_PASSWORD`, `{{ .Values.password }}`, `%(password)s`.
    let reference = (value.starts_with("${") && value.ends_with('}'))
        || (value.starts_with("{{") && value.ends_with("}}"))
        || (value.starts_with('$')
            && value.len() > 1
            && value[1..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'));
    // `********`, `xxxxxxxx`, `••••`: already redacted.
    let redacted = value.chars().all(|c| matches!(c, '*' | '•' | '●' | '#'))
        || (value.len() >= 3 && value.chars().all(|c| c == 'x' || c == 'X'));
    reference || redacted
}
