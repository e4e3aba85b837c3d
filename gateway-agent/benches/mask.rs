//! Masking throughput on realistic MCP tool results.
//!
//! A tool result carries its data twice — serialised into a `text` block and as
//! `structuredContent` — so the JSON-in-string path is exercised as much as the tree
//! walk. Sizes: ~4 KiB (a typical call) and ~256 KiB (a large listing), and one ~120-byte
//! answer (`clean/small`: what per-message costs are). "clean" holds no
//! secret (the common case, which should run at keyword-prefilter speed); "secrets" has a
//! handful planted by key and by pattern (tool results) or by context (log text: dotenv,
//! YAML, a header, a command line).
//!
//! Times are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time:
//! the machines this runs on are shared, and CPU time is what another tenant's load
//! changes least (it still shares caches and, with SMT, a core).
//!
//! `cargo bench -p gateway-agent --bench mask -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use std::time::Duration;

use criterion::{
    BatchSize, Criterion, Throughput, criterion_group, criterion_main,
    measurement::{Measurement, ValueFormatter},
};
use gateway_agent::mask::{MaskConfig, Masker};
use serde_json::{Value, json};

const WORDS: &[&str] = &[
    "the",
    "request",
    "handler",
    "returns",
    "a",
    "paginated",
    "list",
    "of",
    "issues",
    "for",
    "repository",
    "with",
    "labels",
    "and",
    "milestones",
    "when",
    "cache",
    "is",
    "warm",
    "deploy",
    "pipeline",
    "failed",
    "on",
    "step",
    "build",
    "because",
    "timeout",
    "exceeded",
    "retry",
    "after",
    "backoff",
    "user",
    "reported",
    "that",
    "search",
    "results",
    "missing",
    "max_tokens",
    "tokenizer",
    "password",
    "policy",
    "requires",
    "rotation",
    "every",
    "days",
];

/// Deterministic filler (a linear congruential generator: no dependency, same bytes on
/// every run so figures compare across runs).
struct Filler(u64);

impl Filler {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    fn sentence(&mut self, words: usize) -> String {
        (0..words)
            .map(|_| WORDS[self.next() % WORDS.len()])
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.next() % 16]))
            .collect()
    }
}

/// One issue-like record, ~430 bytes serialised.
fn record(filler: &mut Filler, id: usize) -> Value {
    json!({
        "id": id,
        "number": 1000 + id,
        "title": filler.sentence(8),
        "state": if id.is_multiple_of(3) { "closed" } else { "open" },
        "body": filler.sentence(30),
        "url": format!("https://git.example.com/org/app/issues/{}", 1000 + id),
        "head_sha": filler.hex(40),
        "labels": ["bug", "triage"],
        "author": {"login": format!("user{id}"), "id": 5000 + id},
        "created_at": "2024-05-01T12:30:45Z",
        "usage": {"max_tokens": 4096, "input_tokens": 812},
    })
}

/// A `tools/call` result of about `target` bytes; with `secrets`, one record in eight
/// carries a credential (by key, in free text, or in a URL).
fn tool_result(target: usize, secrets: bool) -> Value {
    let mut filler = Filler(42);
    let mut items = Vec::new();
    let mut size = 0;
    let mut id = 0;
    while size * 2 < target {
        let mut item = record(&mut filler, id);
        if secrets && id.is_multiple_of(8) {
            match id / 8 % 3 {
                0 => {
                    item["deploy_token"] =
                        json!(format!("ghp_{}", "FAKEfake0123456789EXAMPLEexample0123"))
                }
                1 => {
                    item["body"] = json!(format!(
                        "set AWS key AKIAIOSFODNN7EXAMPLE then {}",
                        filler.sentence(10)
                    ))
                }
                _ => item["url"] = json!("postgres://app:FAKEpassw0rd@db.internal:5432/prod"),
            }
        }
        size += item.to_string().len();
        items.push(item);
        id += 1;
    }
    let structured = json!({"items": items, "total": id, "next_cursor": null});
    json!({
        "content": [{"type": "text", "text": structured.to_string()}],
        "structuredContent": structured,
        "isError": false,
    })
}

/// Log-like free text of about `target` bytes; with `secrets`, one line in twenty is a
/// credential as tools print them (dotenv, YAML, a header, a command line).
fn log_text(target: usize, secrets: bool) -> String {
    const PLANTED: &[&str] = &[
        "DB_PASSWORD=FAKEpassw0rd&x#1",
        "  smtp_pass: FAKEsmtp-pass-99",
        "X-Api-Key: FAKEfake0123456789EXAMPLEexample",
        "mysql -h db -u root -p'FAKEpassw0rd' app",
    ];
    let mut filler = Filler(7);
    let mut text = String::with_capacity(target + 256);
    let mut line = 0;
    while text.len() < target {
        if secrets && line % 20 == 19 {
            text.push_str(PLANTED[line / 20 % PLANTED.len()]);
            text.push('\n');
            line += 1;
            continue;
        }
        text.push_str(&format!(
            "2024-05-01T12:{:02}:{:02}Z INFO req={} {}\n",
            line / 60 % 60,
            line % 60,
            filler.hex(16),
            filler.sentence(14)
        ));
        line += 1;
    }
    text
}

/// The calling thread's CPU time.
struct ThreadCpu;

fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu()
    }

    fn end(&self, start: Duration) -> Duration {
        thread_cpu().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Nanoseconds of CPU shown as µs, and bytes per CPU second as MiB/s.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e3);
        "µs cpu"
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let amount = match throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Elements(n) => {
                *n as f64
            }
        };
        values
            .iter_mut()
            .for_each(|ns| *ns = amount / (*ns / 1e9) / (1 << 20) as f64);
        match throughput {
            Throughput::Elements(_) => "Melem/s cpu",
            _ => "MiB/s cpu",
        }
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn bench(c: &mut Criterion<ThreadCpu>) {
    let masker = Masker::new(&MaskConfig::default()).expect("built-in rules compile");
    let sizes = [("4KiB", 4 << 10), ("256KiB", 256 << 10)];

    let mut group = c.benchmark_group("mask_value");
    for (label, target) in sizes {
        for (kind, secrets) in [("clean", false), ("secrets", true)] {
            let value = tool_result(target, secrets);
            let bytes = value.to_string().len() as u64;
            let found = masker.mask_value(&mut value.clone()).masked;
            assert_eq!(found > 0, secrets, "{kind}/{label}: {found} masked");
            group.throughput(Throughput::Bytes(bytes));
            group.bench_function(format!("{kind}/{label}"), |b| {
                b.iter_batched_ref(
                    || value.clone(),
                    |value| black_box(masker.mask_value(value)),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();

    // What the gateway runs on a response body: the wire text in, the masked text out
    // (borrowed when clean). `serde_parse` is the same text parsed into a Value and
    // serialised back: the floor of any masker that re-serialises, for a ratio in one run.
    let mut group = c.benchmark_group("mask_json");
    for (label, target) in sizes {
        for (kind, secrets) in [("clean", false), ("secrets", true)] {
            let text = tool_result(target, secrets).to_string();
            let found = masker.mask_json(&text).expect("JSON").1.masked;
            assert_eq!(found > 0, secrets, "{kind}/{label}: {found} masked");
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_function(format!("{kind}/{label}"), |b| {
                b.iter(|| black_box(masker.mask_json(black_box(&text)).map(|(m, _)| m.len())))
            });
            group.bench_function(format!("serde_parse/{kind}/{label}"), |b| {
                b.iter(|| {
                    let value: Value = serde_json::from_str(black_box(&text)).unwrap();
                    black_box(value.to_string().len())
                })
            });
        }
    }
    // The answer most tool calls get, about 120 bytes: per-message costs, not bytes.
    let small = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"pong from the bench backend"}],"isError":false}}"#;
    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_function("clean/small", |b| {
        b.iter(|| black_box(masker.mask_json(black_box(small)).map(|(m, _)| m.len())))
    });
    group.finish();

    let mut group = c.benchmark_group("mask_text");
    for (label, target) in sizes {
        for (kind, secrets) in [("clean", false), ("secrets", true)] {
            let text = log_text(target, secrets);
            let found = masker.mask_text(&text).1.masked;
            assert_eq!(found > 0, secrets, "{kind}/{label}: {found} masked");
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_function(format!("{kind}/{label}"), |b| {
                b.iter(|| black_box(masker.mask_text(black_box(&text))))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench
}
criterion_main!(benches);
