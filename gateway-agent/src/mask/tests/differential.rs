//! The staged keyword search (trigram windows, a plain and an encoded automaton, `memchr`
//! for `%` and `\`) against the single whole-string pass it replaced: on generated JSON
//! bodies and free text, salted with the corpus's secrets and look-alikes, every keyword,
//! encoded spellings, escapes and sensitive keys, both must mask byte for byte alike and
//! report the same rules.

use std::sync::OnceLock;

use proptest::prelude::*;

use super::{Masker, corpus, masker};
use crate::mask::{assign, decode, rules};

fn shared() -> &'static Masker {
    static MASKER: OnceLock<Masker> = OnceLock::new();
    MASKER.get_or_init(masker)
}

/// Pieces strings are made of: secrets and look-alikes from the corpus, every keyword
/// (with its case flipped too), encoded spellings, and escapes.
fn pieces() -> &'static [String] {
    static PIECES: OnceLock<Vec<String>> = OnceLock::new();
    PIECES.get_or_init(|| {
        let mut out: Vec<String> = Vec::new();
        for case in corpus::cases() {
            out.push(case.secret);
            out.push(case.text);
            out.push(case.negative);
        }
        out.extend(corpus::CLEAN.iter().map(|s| (*s).to_owned()));
        for line in include_str!("corpus/detection.jsonl").lines() {
            let Ok(item) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(text) = item["text"].as_str() {
                out.push(text.to_owned());
            }
            if let Some(secrets) = item["secrets"].as_array() {
                out.extend(secrets.iter().filter_map(|s| s.as_str().map(str::to_owned)));
            }
        }
        let keywords = rules::all()
            .flat_map(|rule| rule.keywords.iter().copied())
            .chain(assign::KEYWORDS.iter().copied());
        for keyword in keywords {
            out.push(keyword.to_owned());
            out.push(keyword.to_ascii_uppercase());
        }
        out.extend(decode::keywords().into_iter().map(|(kw, _)| kw));
        out.extend(
            [
                "DB_PASSWORD=",
                "smtp_pass: ",
                "--password ",
                "X-Api-Key: ",
                "token=",
                "\\n",
                "\\\"",
                "\\u0041",
                "%3D",
                "%22token%22%3A%22",
                "\n",
                "\"",
                "'",
                "=",
                ": ",
                "&",
                "#",
                " ",
                "\t",
                "{",
                "}",
                "[",
                "]",
                ",",
                "é",
                "日本",
                "cGFzc3dvcmQ9aHVudGVyMmh1bnRlcjJodW50ZXIy",
                "70617373776f72643d68756e746572",
                // Hex runs: a commit SHA (ruled out by the hex gate), hex-spelled secrets
                // in either case, and a trigger's spelling among digits.
                "0123456789abcdef0123456789abcdef01234567",
                "414B4941494F53464F444E4E374558414D504C45",
                "746f6b656e3d6768705f46414b4566616b6530313233343536373839",
                "0070617373776f72643d",
                "1",
                "AKIAIOSFODNN7EXAMPLE",
                "ghp_FAKEfake0123456789EXAMPLEexample0123",
                "postgres://app:FAKEpassw0rd@db.internal:5432/prod",
                "max_tokens",
                "tokenizer",
                "the password policy requires rotation",
                "aGVsbG8gd29ybGQgdGhpcyBpcyBub3Q",
                "Secret",
                "SecureString",
                "object",
                "DB_PASSWORD",
                "https://json-schema.org/draft/2020-12/schema",
            ]
            .map(str::to_owned),
        );
        out
    })
}

/// Object keys: sensitive, structural (name/value pairs, JWK, Kubernetes Secret,
/// schemas) and ordinary.
const KEYS: &[&str] = &[
    "password",
    "api_key",
    "apiKey",
    "token",
    "smtp_pass",
    "max_tokens",
    "nextPageToken",
    "name",
    "value",
    "type",
    "kty",
    "$schema",
    "Parameter_Value",
    "ParameterName",
    "variable",
    "key",
    "jsonSchema",
    "d",
    "kind",
    "data",
    "text",
    "content",
    "inputSchema",
    "properties",
    "default",
    "description",
    "id",
    "url",
    "body",
    "sensitive",
    "auth",
    "SecureString",
    "client_secret_value",
    "a_very_long_key_ghp_FAKEfake0123456789EXAMPLEex",
];

/// A string of 0–6 pieces, some cut at a random byte (on a char boundary).
fn salted() -> impl Strategy<Value = String> {
    prop::collection::vec((0..pieces().len(), any::<u8>()), 0..6).prop_map(|picks| {
        let mut out = String::new();
        for (index, cut) in picks {
            let piece = &pieces()[index];
            let mut end = piece.len() * usize::from(cut) / 200;
            if end >= piece.len() || cut % 3 != 0 {
                end = piece.len();
            }
            while !piece.is_char_boundary(end) {
                end -= 1;
            }
            out.push_str(&piece[..end]);
        }
        out
    })
}

/// Members that make an object a name/value pair, an SSM parameter, a Terraform output,
/// a JWK, a Kubernetes Secret or a JSON Schema, or nearly (a name that is no secret, a
/// `type` that is no type name), as raw JSON values.
const SHAPING: &[(&str, &str)] = &[
    ("name", r#""DB_PASSWORD""#),
    ("Name", r#""db_host""#),
    ("key", r#""api_key""#),
    ("ParameterName", r#""/prod/db/password""#),
    ("variable", r#""SMTP_PASS""#),
    ("Type", r#""SecureString""#),
    ("type", r#""String""#),
    ("type", r#""object""#),
    ("type", r#"["string","null"]"#),
    ("sensitive", "true"),
    ("sensitive", "false"),
    ("kty", r#""RSA""#),
    ("kind", r#""Secret""#),
    ("kind", r#""ConfigMap""#),
    (
        "$schema",
        r#""https://json-schema.org/draft/2020-12/schema""#,
    ),
    ("$schema", "1"),
    (
        "properties",
        r#"{"password":{"type":"string","default":"hunter2hunter2"}}"#,
    ),
    ("properties", "[]"),
    // A GeoJSON feature: `type` and `properties`, yet data, whose secrets are masked.
    ("type", r#""Feature""#),
    (
        "properties",
        r#"{"password":"hunter2hunter2","api_token":"FAKEtoken0123456789abcdef"}"#,
    ),
];

/// Keys of the fields such objects hold their secret in (and one they do not).
const HOLDING: &[&str] = &[
    "value",
    "Value",
    "Parameter_Value",
    "OutputValue",
    "secretValue",
    "data",
    "stringData",
    "d",
    "k",
    "default",
    "description",
];

/// A generated JSON value, written as JSON text below.
#[derive(Debug, Clone)]
enum Gen {
    Str(String),
    /// A string holding serialised JSON (a tool result's `text` block).
    Nested(Box<Gen>),
    Num(i64),
    /// JSON text written as it is.
    Raw(&'static str),
    Bool(bool),
    Null,
    Array(Vec<Gen>),
    Object(Vec<(String, Gen)>),
    /// A tool result: the value as `structuredContent` and serialised into a `text`
    /// block. `alike`: written with the same escapes, so the text is a copy the walk may
    /// reuse; else with the other ones (a near copy). `text_first`: the block comes first.
    ToolResult {
        value: Box<Gen>,
        alike: bool,
        text_first: bool,
        /// One letter or digit of the text block changed (at this index modulo the
        /// block's length, if it falls on one): a near copy that must not be taken for
        /// the structured one.
        changed: Option<usize>,
    },
}

fn gen_value() -> impl Strategy<Value = Gen> {
    let leaf = prop_oneof![
        4 => salted().prop_map(Gen::Str),
        1 => any::<i64>().prop_map(Gen::Num),
        1 => any::<bool>().prop_map(Gen::Bool),
        1 => Just(Gen::Null),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            3 => prop::sample::select(KEYS).prop_map(str::to_owned),
            1 => salted(),
        ];
        let object = prop::collection::vec((key, inner.clone()), 0..6).prop_map(Gen::Object);
        let shaping = prop::sample::select(SHAPING)
            .prop_map(|(key, value)| (key.to_owned(), Gen::Raw(value)));
        let holding = (prop::sample::select(HOLDING), inner.clone())
            .prop_map(|(key, value)| (key.to_owned(), value));
        let shaped = prop::collection::vec(prop_oneof![3 => shaping, 1 => holding], 1..8)
            .prop_map(Gen::Object);
        prop_oneof![
            2 => prop::collection::vec(inner.clone(), 0..6).prop_map(Gen::Array),
            3 => object.clone(),
            2 => shaped,
            1 => inner.prop_map(|v| Gen::Nested(Box::new(v))),
            1 => (object, any::<bool>(), any::<bool>(), prop::option::of(any::<usize>())).prop_map(
                |(value, alike, text_first, changed)| Gen::ToolResult {
                    value: Box::new(value),
                    alike,
                    text_first,
                    changed,
                }
            ),
        ]
    })
}

/// JSON text for `gen`; `escape_all` writes every non-ASCII or slash as an escape and
/// `pretty` indents (encoders differ, the masker keeps either).
fn write(value: &Gen, escape_all: bool, pretty: bool, out: &mut String) {
    let sep = if pretty { "\n  " } else { "" };
    match value {
        Gen::Str(s) => write_str(s, escape_all, out),
        Gen::Nested(inner) => {
            let mut text = String::new();
            write(inner, !escape_all, pretty, &mut text);
            write_str(&text, escape_all, out);
        }
        Gen::Num(n) => out.push_str(&n.to_string()),
        Gen::Raw(text) => out.push_str(text),
        Gen::Bool(b) => out.push_str(&b.to_string()),
        Gen::Null => out.push_str("null"),
        Gen::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(sep);
                write(item, escape_all, pretty, out);
            }
            out.push(']');
        }
        Gen::Object(members) => {
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(sep);
                write_str(key, escape_all, out);
                out.push(':');
                write(value, escape_all, pretty, out);
            }
            out.push('}');
        }
        Gen::ToolResult {
            value,
            alike,
            text_first,
            changed,
        } => {
            let mut text = String::new();
            write(value, escape_all == *alike, pretty, &mut text);
            if let Some(at) = changed
                .filter(|_| !text.is_empty())
                .map(|at| at % text.len())
            {
                let mut bytes = text.into_bytes();
                bytes[at] = match bytes[at] {
                    b'x' => b'y',
                    b if b.is_ascii_alphanumeric() => b'x',
                    b => b,
                };
                text = String::from_utf8(bytes).unwrap_or_default();
            }
            let mut block = String::from(r#"[{"type":"text","text":"#);
            write_str(&text, escape_all, &mut block);
            block.push_str("}]");
            let mut structured = String::new();
            write(value, escape_all, pretty, &mut structured);
            let members = [("content", block), ("structuredContent", structured)];
            let (first, second) = if *text_first {
                (&members[0], &members[1])
            } else {
                (&members[1], &members[0])
            };
            out.push_str(&format!(
                r#"{{"{}":{},"{}":{}}}"#,
                first.0, first.1, second.0, second.1
            ));
        }
    }
}

fn write_str(s: &str, escape_all: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '/' if escape_all => out.push_str("\\/"),
            c if (c as u32) < 0x20 || (escape_all && !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn staged_and_reference_mask_json_alike(
        value in gen_value(),
        escape_all in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        let mut text = String::new();
        write(&value, escape_all, pretty, &mut text);
        let masker = shared();
        let staged = masker.mask_json(&text).map(|(m, r)| (m.into_owned(), r));
        let reference = masker.mask_json_reference(&text).map(|(m, r)| (m.into_owned(), r));
        prop_assert_eq!(staged, reference, "{}", text);
    }

    #[test]
    fn staged_and_reference_mask_text_alike(text in salted(), more in salted()) {
        let text = format!("{text}\n{more}");
        let masker = shared();
        let (staged, staged_report) = masker.mask_text(&text);
        let (reference, reference_report) = masker.mask_text_reference(&text);
        prop_assert_eq!(&staged, &reference, "{}", text);
        prop_assert_eq!(staged_report, reference_report);
    }
}

/// The corpus itself, every item as free text: the two paths agree there too.
#[test]
fn staged_and_reference_agree_on_the_corpus() {
    let masker = shared();
    for text in pieces() {
        let (staged, _) = masker.mask_text(text);
        let (reference, _) = masker.mask_text_reference(text);
        assert_eq!(staged, reference, "{text:?}");
    }
}
