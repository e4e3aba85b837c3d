use std::time::Duration;

use super::*;
use crate::mask::MaskConfig;

fn masker() -> Masker {
    Masker::new(&MaskConfig::default()).expect("built-in rules compile")
}

fn log(data: &str) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "logger": "deploy", "data": data}
    })
    .to_string()
}

fn data_of(message: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(message).expect("still JSON");
    value["params"]["data"].as_str().expect("data").to_owned()
}

const PAT: &str = "ghp_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8";

#[test]
fn a_token_cut_between_two_log_notifications_is_masked_in_both() {
    let (first, second) = PAT.split_at(17);
    let masker = masker();
    let (a, b) = (
        log(&format!("pushing with {first}")),
        log(&format!("{second} done")),
    );
    // Neither half is a secret on its own: this is what leaked before.
    assert_eq!(masker.mask_json(&a).expect("json").0, a);
    assert_eq!(masker.mask_json(&b).expect("json").0, b);

    let seam = masker.mask_seam(&a, &b, DEFAULT_WINDOW);
    let (a2, b2) = (
        seam.earlier.expect("earlier part"),
        seam.later.expect("later part"),
    );
    assert_eq!(data_of(&a2), "pushing with [MASKED:github_pat]");
    assert_eq!(data_of(&b2), "[MASKED:github_pat] done");
    assert_eq!(seam.earlier_report.masked, 1);
    assert_eq!(seam.later_report.masked, 1);
    // Only the string changed: the other members are as the server wrote them.
    assert!(a2.starts_with(r#"{"jsonrpc":"2.0","method":"notifications/message""#));
}

#[test]
fn a_value_whose_name_is_in_the_previous_message_is_masked() {
    let masker = masker();
    let a = log("connecting with DB_PASSWORD=");
    let b = log("Zq8#rT2!vLp0wX\nconnected");
    let seam = masker.mask_seam(&a, &b, DEFAULT_WINDOW);
    let later = seam.later.expect("the value is masked");
    let data = data_of(&later);
    assert!(!data.contains("Zq8#rT2!vLp0wX"), "{data}");
    assert!(data.ends_with("\nconnected"), "{data}");
}

#[test]
fn a_secret_whole_on_one_side_is_left_to_that_side_s_own_masking() {
    let masker = masker();
    let a = log(&format!("token {PAT}"));
    // The rule reads a token glued to more token characters as one token: joined, the
    // whole token would run on into "and".
    let b = log("and the next line");
    let seam = masker.mask_seam(&a, &b, DEFAULT_WINDOW);
    assert!(seam.earlier.is_none() && seam.later.is_none());
    assert_eq!(seam.earlier_report.masked + seam.later_report.masked, 0);
}

#[test]
fn strings_at_different_paths_are_not_joined() {
    let (first, second) = PAT.split_at(17);
    let a = log(&format!("pushing with {first}"));
    let b = serde_json::json!({
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": 1, "progress": 2, "message": second}
    })
    .to_string();
    let seam = masker().mask_seam(&a, &b, DEFAULT_WINDOW);
    assert!(seam.earlier.is_none() && seam.later.is_none());
}

#[test]
fn plain_text_messages_are_joined_as_text() {
    let (first, second) = PAT.split_at(30);
    let seam = masker().mask_seam(&format!("key: {first}"), &format!("{second}\n"), 64);
    assert_eq!(seam.earlier.as_deref(), Some("key: [MASKED:github_pat]"));
    assert_eq!(seam.later.as_deref(), Some("[MASKED:github_pat]\n"));
}

#[test]
fn clean_neighbours_and_code_are_left_alone() {
    let masker = masker();
    for (a, b) in [
        ("max_tokens=", "4096 and the"),
        ("api_key = os.environ[", "\"OPENAI_API_KEY\"]"),
        ("password: ", "${DB_PASSWORD}"),
        ("compiling 3 crates", " finished in 2.1s"),
    ] {
        let seam = masker.mask_seam(&log(a), &log(b), DEFAULT_WINDOW);
        assert!(
            seam.earlier.is_none() && seam.later.is_none(),
            "{a:?} + {b:?} changed"
        );
    }
}

#[test]
fn the_window_bounds_what_is_joined() {
    let (first, second) = PAT.split_at(17);
    let padding = " ".repeat(100);
    let a = log(&format!("pushing with {first}"));
    let b = log(&format!("{padding}{second}"));
    // The second half starts 100 bytes in: a 64-byte window never sees it.
    let seam = masker().mask_seam(&a, &b, 64);
    assert!(seam.earlier.is_none() && seam.later.is_none());
}

#[test]
fn an_escaped_string_keeps_its_writer_s_escapes() {
    let (first, second) = PAT.split_at(17);
    // Python's json.dumps: every non-ASCII character escaped.
    let a = format!(
        r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"level":"info","data":"caf\u00e9 {first}"}}}}"#
    );
    let b = log(&format!("{second} ok"));
    let seam = masker().mask_seam(&a, &b, DEFAULT_WINDOW);
    let earlier = seam.earlier.expect("masked");
    assert!(
        earlier.contains(r#""caf\u00e9 [MASKED:github_pat]""#),
        "{earlier}"
    );
}

#[test]
fn a_disabled_masker_joins_nothing() {
    let (first, second) = PAT.split_at(17);
    let masker = masker().disabled_twin();
    let seam = masker.mask_seam(&log(first), &log(second), DEFAULT_WINDOW);
    assert!(seam.earlier.is_none() && seam.later.is_none());
}

#[test]
fn holdback_reads_a_wait_or_a_size() {
    let parse = |text: &str| StreamHoldback::parse(text);
    assert_eq!(
        parse("250ms"),
        Ok(StreamHoldback {
            wait: Duration::from_millis(250),
            window: DEFAULT_WINDOW
        })
    );
    assert_eq!(parse("2s").map(|h| h.wait), Ok(Duration::from_secs(2)));
    assert_eq!(
        parse("8KiB"),
        Ok(StreamHoldback {
            wait: DEFAULT_WAIT,
            window: 8192
        })
    );
    assert_eq!(parse("512B").map(|h| h.window), Ok(512));
    for bad in ["0ms", "5m", "ms", "20s", "-1ms", "1.5s"] {
        assert!(parse(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn holdback_is_read_from_toml_as_text_or_milliseconds() {
    #[derive(serde::Deserialize)]
    struct Holder {
        stream_holdback: StreamHoldback,
    }
    let read =
        |toml_text: &str| toml::from_str::<Holder>(toml_text).map(|holder| holder.stream_holdback);
    assert_eq!(
        read("stream_holdback = 300").map(|h| h.wait).ok(),
        Some(Duration::from_millis(300))
    );
    assert_eq!(
        read("stream_holdback = \"4KiB\"").map(|h| h.window).ok(),
        Some(4096)
    );
    let err = read("stream_holdback = \"1 hour\"").expect_err("refused");
    assert!(err.to_string().contains("unknown unit"), "{err}");
}

mod split_anywhere {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;

    fn shared() -> &'static Masker {
        static MASKER: OnceLock<Masker> = OnceLock::new();
        MASKER.get_or_init(super::masker)
    }

    /// Vendor-format secrets with nothing around them to give them away.
    const SECRETS: [&str; 4] = [
        PAT,
        "AKIAQ7ZK3M2XW4PL9T8R",
        "xoxb-2209853428-1634251097718-kWcP3oqVnQyZbJtLmR8s4TdE",
        "sk_live_51HcQ8vKz3Xb9Tq2Lm4Np6Rs8Uw0Yc",
    ];

    /// Words around the secret: letters, digits and the separators log lines use.
    fn words() -> impl Strategy<Value = String> {
        "[a-z0-9 :=,./-]{0,40}"
    }

    /// What a client sees of one message's `data` after the seam and its own masking.
    fn delivered(message: &str) -> String {
        let masked = shared().mask_json(message).expect("JSON").0.into_owned();
        data_of(&masked)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Wherever a secret is cut between two messages, what the client reads of the two,
        /// put back together, never holds it.
        #[test]
        fn a_secret_cut_anywhere_never_reaches_the_client_whole(
            which in 0..SECRETS.len(),
            cut in 1usize..20,
            before in words(),
            after in words(),
        ) {
            let secret = SECRETS[which];
            let cut = cut.min(secret.len() - 1);
            let (a, b) = (
                log(&format!("{before} {}", &secret[..cut])),
                log(&format!("{} {after}", &secret[cut..])),
            );
            let seam = shared().mask_seam(&a, &b, DEFAULT_WINDOW);
            let a = seam.earlier.unwrap_or(a);
            let b = seam.later.unwrap_or(b);
            let joined = format!("{}{}", delivered(&a), delivered(&b));
            prop_assert!(!joined.contains(secret), "{}", joined);
        }
    }
}
