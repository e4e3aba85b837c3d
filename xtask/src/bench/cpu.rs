//! The proxy's own CPU time and scheduler wake-ups per call.
//!
//! Rates and latencies on a shared 2-vCPU machine move ±20% with other tenants' load; the
//! CPU a proxy spends per call, and how often it is put to sleep and woken, move far less,
//! so they tell two builds (or two proxies) apart when the rates cannot. Read from
//! `/proc/<pid>/task/<tid>/schedstat` (time on a CPU in ns, times scheduled onto one),
//! summed over every thread of every process given, before and after a client's run.

use serde::Serialize;

/// Summed over the threads of a set of processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    cpu_ns: u64,
    runs: u64,
}

/// What a proxy spent per call answered during one client run (warm-up included).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PerCall {
    /// CPU time (user and kernel), µs.
    pub cpu_us: f64,
    /// Times a thread of the proxy was scheduled onto a CPU: wake-ups after sleeping,
    /// plus returns after preemption.
    pub runs: f64,
}

/// Threads that end between two samples take their time with them; the proxies measured
/// keep theirs for the whole run.
pub fn sample(pids: &[u32]) -> Sample {
    let mut total = Sample::default();
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            let mut fields = text.split_ascii_whitespace().map(str::parse::<u64>);
            if let (Some(Ok(cpu_ns)), Some(Ok(_waiting_ns)), Some(Ok(runs))) =
                (fields.next(), fields.next(), fields.next())
            {
                total.cpu_ns += cpu_ns;
                total.runs += runs;
            }
        }
    }
    total
}

impl Sample {
    /// `None` when nothing was answered or nothing could be read.
    pub fn per_call(self, after: Sample, calls: u64) -> Option<PerCall> {
        let cpu_ns = after.cpu_ns.checked_sub(self.cpu_ns)?;
        let runs = after.runs.checked_sub(self.runs)?;
        (calls > 0 && cpu_ns > 0).then(|| PerCall {
            cpu_us: cpu_ns as f64 / 1_000.0 / calls as f64,
            runs: runs as f64 / calls as f64,
        })
    }
}
