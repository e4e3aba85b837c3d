//! Detection quality on `corpus/detection.jsonl`: secrets as real tools print them and
//! look-alikes that must survive byte for byte.
//!
//! Each line is one item: `cat` (category), `kind` (`plain`, `adversarial` or
//! `negative`), `text`, for positives `secrets` (every one must disappear), optionally
//! `json` (the same content as a JSON document) and `needs = "json_walk"` for items that
//! depend on the JSON walk (name/value pair objects, arrays under sensitive keys, schema
//! positions): their results are printed apart and not asserted here. Every secret is
//! fake, generated for the corpus.
//!
//! Every item is run four ways: as free text (`mask_text`); as the `text` block of a
//! tool result (`mask_value`, which parses JSON-looking text); JSON-escaped inside a log
//! line (`output: "…\n…"`, not parsed); and, where given, as a JSON object.
//!
//! Items may name the `batch` they were written in: each blind batch (written before
//! reading the detectors, then tuned against) gets its own figures printed, as runs and
//! as whole items, so a batch's first-run result can be compared with later runs.
//!
//! `cargo test -p gateway-agent --lib detection -- --nocapture` prints the figures.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Masker, masker};

const CORPUS: &str = include_str!("corpus/detection.jsonl");

#[derive(Deserialize)]
struct Item {
    cat: String,
    kind: String,
    text: String,
    #[serde(default)]
    secrets: Vec<String>,
    json: Option<Value>,
    needs: Option<String>,
    batch: Option<String>,
}

fn items() -> Vec<Item> {
    CORPUS
        .lines()
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("corpus line {}: {err}", n + 1))
        })
        .collect()
}

/// Did any part of `secret` survive in `output` (masked from `input`)? The whole, or for
/// long secrets either end (a mask that stopped short or started late) — more often than
/// that end occurs in `input` outside the secret.
fn leaks(input: &str, output: &str, secret: &str) -> bool {
    if output.contains(secret) {
        return true;
    }
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 16 {
        return false;
    }
    let head: String = chars[..12].iter().collect();
    let tail: String = chars[chars.len() - 12..].iter().collect();
    let outside = |part: &str| input.matches(part).count() - input.matches(secret).count();
    output.matches(&head).count() > outside(&head) || output.matches(&tail).count() > outside(&tail)
}

/// `secret` as it reads inside a JSON string.
fn escaped(secret: &str) -> String {
    let quoted = serde_json::to_string(secret).unwrap();
    quoted[1..quoted.len() - 1].to_owned()
}

#[derive(Default, Clone, Copy)]
struct Tally {
    hit: usize,
    total: usize,
}

impl Tally {
    fn add(&mut self, ok: bool) {
        self.hit += usize::from(ok);
        self.total += 1;
    }

    fn rate(self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.hit as f64 / self.total as f64
        }
    }
}

/// One run of one item: `true` when the item behaved (positives: every secret gone;
/// negatives: unchanged).
fn runs(masker: &Masker, item: &Item) -> Vec<(&'static str, bool)> {
    let positive = item.kind != "negative";
    let hidden = |out: &str, escape: bool| {
        let input = if escape {
            escaped(&item.text)
        } else {
            item.text.clone()
        };
        item.secrets.iter().all(|secret| {
            let secret = if escape {
                escaped(secret)
            } else {
                secret.clone()
            };
            !leaks(&input, out, &secret)
        })
    };
    let mut out = Vec::new();

    let (text, _) = masker.mask_text(&item.text);
    out.push((
        "text",
        if positive {
            hidden(&text, false)
        } else {
            text == item.text
        },
    ));

    let original = json!({"content": [{"type": "text", "text": item.text}], "isError": false});
    let mut result = original.clone();
    masker.mask_value(&mut result);
    let block = result["content"][0]["text"].as_str().unwrap_or("");
    out.push((
        "tool_result",
        if positive {
            // The walker may re-serialise JSON text: compare both spellings.
            hidden(block, false) && hidden(block, true)
        } else {
            result == original
        },
    ));

    let line = format!("output: {}", serde_json::to_string(&item.text).unwrap());
    let (masked, _) = masker.mask_text(&line);
    out.push((
        "escaped",
        if positive {
            hidden(&masked, true)
        } else {
            masked == line
        },
    ));

    if let Some(document) = &item.json {
        let mut value = document.clone();
        masker.mask_value(&mut value);
        let serialised = value.to_string();
        out.push((
            "object",
            if positive {
                hidden(&serialised, true)
            } else {
                &value == document
            },
        ));
    }
    out
}

#[test]
fn corpus_is_large_and_well_formed() {
    let items = items();
    assert!(items.len() >= 300, "{} items", items.len());
    for item in &items {
        assert!(
            ["plain", "adversarial", "negative"].contains(&item.kind.as_str()),
            "{}",
            item.kind
        );
        assert_eq!(
            item.secrets.is_empty(),
            item.kind == "negative",
            "{}",
            item.text
        );
        for secret in &item.secrets {
            assert!(
                item.text.contains(secret.as_str()),
                "{secret} not in its text"
            );
        }
        if let Some(needs) = &item.needs {
            assert_eq!(needs, "json_walk");
        }
    }
}

#[test]
fn detection_meets_its_targets_on_the_corpus() {
    let items = items();
    // (kind, category) and (kind, run) tallies; the walker-dependent ones apart.
    let mut by_cat: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut by_run: BTreeMap<(String, &'static str), Tally> = BTreeMap::new();
    let mut total: BTreeMap<String, Tally> = BTreeMap::new();
    let mut walk: BTreeMap<String, Tally> = BTreeMap::new();
    // (batch, kind) tallies of runs and of whole items (every run behaved).
    let mut batch_runs: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut batch_items: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let masker = masker();
    for item in &items {
        let results = runs(&masker, item);
        if let Some(batch) = &item.batch {
            let key = (batch.clone(), item.kind.clone());
            for (_, ok) in &results {
                batch_runs.entry(key.clone()).or_default().add(*ok);
            }
            batch_items
                .entry(key)
                .or_default()
                .add(results.iter().all(|(_, ok)| *ok));
        }
        for (run, ok) in results {
            if item.needs.is_some() && !(run == "text" || run == "escaped") {
                walk.entry(item.kind.clone()).or_default().add(ok);
                if !ok {
                    eprintln!("json_walk pending [{run}] {}: {:?}", item.cat, item.text);
                }
                continue;
            }
            by_cat
                .entry((item.kind.clone(), item.cat.clone()))
                .or_default()
                .add(ok);
            by_run.entry((item.kind.clone(), run)).or_default().add(ok);
            total.entry(item.kind.clone()).or_default().add(ok);
            if !ok {
                failures.push(format!(
                    "[{} {} {run}] {:?}",
                    item.kind, item.cat, item.text
                ));
            }
        }
    }
    eprintln!("\nkind         category          ok/total");
    for ((kind, cat), tally) in &by_cat {
        eprintln!("{kind:<12} {cat:<17} {:>3}/{:<3}", tally.hit, tally.total);
    }
    eprintln!("\nkind         run           ok/total");
    for ((kind, run), tally) in &by_run {
        eprintln!("{kind:<12} {run:<13} {:>3}/{:<3}", tally.hit, tally.total);
    }
    let plain = total.get("plain").copied().unwrap_or_default();
    let adversarial = total.get("adversarial").copied().unwrap_or_default();
    let negative = total.get("negative").copied().unwrap_or_default();
    eprintln!(
        "\nrecall plain {}/{} ({:.1}%), adversarial {}/{} ({:.1}%); false positives {}/{} ({:.1}%)",
        plain.hit,
        plain.total,
        100.0 * plain.rate(),
        adversarial.hit,
        adversarial.total,
        100.0 * adversarial.rate(),
        negative.total - negative.hit,
        negative.total,
        100.0 * (1.0 - negative.rate()),
    );
    for (kind, tally) in &walk {
        eprintln!(
            "needs json_walk ({kind}): {}/{} runs behave today",
            tally.hit, tally.total
        );
    }
    eprintln!("\nbatch  kind         runs ok/total  items ok/total");
    for (key, runs) in &batch_runs {
        let items = batch_items[key];
        eprintln!(
            "{:<6} {:<12} {:>4}/{:<4} ({:>5.1}%)  {:>3}/{:<3} ({:>5.1}%)",
            key.0,
            key.1,
            runs.hit,
            runs.total,
            100.0 * runs.rate(),
            items.hit,
            items.total,
            100.0 * items.rate(),
        );
    }
    for failure in &failures {
        eprintln!("FAIL {failure}");
    }
    assert!(plain.rate() >= 0.98, "plain recall {:.3}", plain.rate());
    assert!(
        adversarial.rate() >= 0.90,
        "adversarial recall {:.3}",
        adversarial.rate()
    );
    assert!(
        1.0 - negative.rate() <= 0.02,
        "false positives {:.3}",
        1.0 - negative.rate()
    );
}
