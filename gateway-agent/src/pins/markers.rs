//! Injection markers: characters in a tool definition that a person reviewing it does
//! not see but a model reads. Unicode tag characters (U+E0000–U+E007F) spell hidden ASCII
//! text; bidi controls reorder what is displayed; runs of zero-width characters hide
//! text or encode data. A single zero-width joiner (emoji sequences) is not flagged.

use serde_json::Value;

/// Zero-width characters in a row that count as a run.
const ZERO_WIDTH_RUN: usize = 2;
/// Markers reported per definition: enough to show what was found.
const MAX_REPORTED: usize = 16;

fn is_tag(c: char) -> bool {
    ('\u{E0000}'..='\u{E007F}').contains(&c)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn is_zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{180E}'
    )
}

/// What was found in one string, described for logs and audit (`U+202E bidi control in
/// description`), never the hidden text itself decoded.
fn scan_str(text: &str, at: &str, out: &mut Vec<String>) {
    let mut run = 0usize;
    let mut tags = 0usize;
    for c in text.chars() {
        if out.len() >= MAX_REPORTED {
            return;
        }
        if is_tag(c) {
            tags += 1;
        }
        if is_bidi_control(c) {
            out.push(format!("bidi control U+{:04X} in {at}", c as u32));
        }
        if is_zero_width(c) {
            run += 1;
            if run == ZERO_WIDTH_RUN {
                out.push(format!("zero-width run in {at}"));
            }
        } else {
            run = 0;
        }
    }
    if tags > 0 && out.len() < MAX_REPORTED {
        out.push(format!("{tags} Unicode tag characters in {at}"));
    }
}

/// Every marker in the strings (keys included) of a tool definition; `at` names the
/// member path (`description`, `inputSchema.properties.cmd.description`).
pub fn scan(definition: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(definition, &mut String::new(), &mut out, 0);
    out
}

/// Schemas nest; a hostile one nesting without end is cut off here (serde_json already
/// refused anything past its own recursion limit).
const MAX_DEPTH: usize = 64;

fn walk(value: &Value, path: &mut String, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH || out.len() >= MAX_REPORTED {
        return;
    }
    match value {
        Value::String(text) => {
            scan_str(text, if path.is_empty() { "definition" } else { path }, out)
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| walk(item, path, out, depth + 1)),
        Value::Object(map) => {
            for (key, member) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                scan_str(key, path, out);
                walk(member, path, out, depth + 1);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_bidi_and_zero_width_runs_are_found_where_they_are() {
        let hidden: String = "ignore previous"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let def = json!({
            "description": format!("Weather.{hidden}"),
            "inputSchema": {"properties": {"city": {"description": "a \u{202E}txt.exe"}}},
            "title": "x\u{200B}\u{200B}y",
        });
        let found = scan(&def);
        assert!(
            found.contains(&"15 Unicode tag characters in description".to_owned()),
            "{found:?}"
        );
        assert!(
            found.contains(
                &"bidi control U+202E in inputSchema.properties.city.description".to_owned()
            ),
            "{found:?}"
        );
        assert!(
            found.contains(&"zero-width run in title".to_owned()),
            "{found:?}"
        );
    }

    #[test]
    fn ordinary_text_and_a_lone_joiner_are_clean() {
        let def = json!({"description": "Returns the forecast 🌧️ for a city — naïve café 👩\u{200D}💻", "name": "weather"});
        assert!(scan(&def).is_empty());
    }

    #[test]
    fn reports_are_bounded() {
        let def = json!({"description": "\u{202E}".repeat(10_000)});
        assert_eq!(scan(&def).len(), MAX_REPORTED);
    }
}
