//! What `mask.stream_holdback` adds per SSE event, next to what masking the event costs
//! anyway (both measured in the same run): telling whether the event is a notification
//! (a JSON parse) and joining it with the previous one ([`Masker::mask_seam`]).
//!
//! Events are MCP log notifications whose text is ordinary tool output: short (~200 B,
//! a log line) and long (~4 KiB, a chunk of build output), without secrets (the common
//! case) and with a token cut across the two events.
//!
//! `cargo bench -p gateway-agent --bench seam -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gateway_agent::mask::{Doc, MAX_DEPTH, MaskConfig, Masker, seam::DEFAULT_WINDOW};
use serde_json::json;

const LINE: &str = "step build: compiling crate gateway-agent v0.1.0 (profile dev) in 2.1s, \
                    cache warm, 312 units, retrying after backoff when the registry times out; ";

fn event(text: &str) -> String {
    json!({
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {"level": "info", "logger": "build", "data": text}
    })
    .to_string()
}

fn text_of(len: usize) -> String {
    LINE.repeat(len / LINE.len() + 1)[..len].to_owned()
}

fn bench(c: &mut Criterion) {
    let masker = Masker::new(&MaskConfig::default()).expect("rules compile");
    let token = "ghp_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8";
    for (name, len) in [("200B", 200), ("4KiB", 4096)] {
        let clean = (event(&text_of(len)), event(&text_of(len)));
        let split = (
            event(&format!("{} {}", text_of(len), &token[..17])),
            event(&format!("{} {}", &token[17..], text_of(len))),
        );
        for (kind, (earlier, later)) in [("clean", clean), ("split", split)] {
            let mut group = c.benchmark_group(format!("seam/{name}/{kind}"));
            group.throughput(Throughput::Bytes(later.len() as u64));
            group.bench_function("mask_json (every event, holdback or not)", |b| {
                b.iter(|| {
                    masker
                        .mask_json(black_box(&later))
                        .map(|(masked, _)| masked.len())
                })
            });
            group.bench_function("holdback (notification check + seam)", |b| {
                b.iter(|| {
                    // The notification check parses the event with the masker's parser.
                    let doc = Doc::parse(black_box(&later), MAX_DEPTH).expect("json");
                    let seam = masker.mask_seam(black_box(&earlier), &later, DEFAULT_WINDOW);
                    (
                        doc.member(doc.root(), "id").is_none(),
                        seam.earlier.is_some(),
                    )
                })
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
