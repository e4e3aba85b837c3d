//! Log lines written to stdout by a thread of their own, in batches.
//!
//! Each line used to cost the data-path thread that logged it a `write` to stdout under
//! stdout's process-wide lock: 10% of the agent's CPU per new connection (`perf`), and a
//! log reader that stopped reading stalled the traffic. Here a line is appended to a
//! shared buffer, which the writer thread writes out every [`FLUSH_EVERY`] in one `write`,
//! or sooner once [`WAKE_AT`] bytes wait. Nobody is woken per line: a channel to a
//! blocked writer would wake it for every one (measured: +12% CPU per connection at c=1).
//! Nothing is dropped: past [`MAX_QUEUED`] bytes, a logging thread waits for room, as it
//! waited on a full pipe before.

use std::{
    io::Write,
    sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock},
    thread::{JoinHandle, Thread},
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait for the writer when few are logged.
const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// Queued bytes past which the line that crosses it wakes the writer.
const WAKE_AT: usize = 64 * 1024;
/// Queued bytes past which logging threads wait for the writer.
const MAX_QUEUED: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when the writer has taken the queue.
    room: Condvar,
    writer: OnceLock<Thread>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake_writer(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }
}

/// The `MakeWriter` the fmt layer writes each formatted event to (in one `write`).
#[derive(Clone)]
pub struct Batched {
    shared: Arc<Shared>,
}

/// Stops the writer thread once everything queued is written: held until the process
/// ends.
pub struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread; its lines go to `out`.
pub fn start(out: impl Write + Send + 'static) -> std::io::Result<(Batched, WriterGuard)> {
    let shared = Arc::new(Shared::default());
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn({
            let shared = Arc::clone(&shared);
            move || write_out(&shared, out)
        })?;
    let _ = shared.writer.set(thread.thread().clone());
    Ok((
        Batched {
            shared: Arc::clone(&shared),
        },
        WriterGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_out(shared: &Shared, mut out: impl Write) {
    let mut taken = Vec::new();
    loop {
        std::thread::park_timeout(FLUSH_EVERY);
        let closed = {
            let mut queue = shared.lock();
            std::mem::swap(&mut queue.bytes, &mut taken);
            queue.closed
        };
        shared.room.notify_all();
        if !taken.is_empty() {
            // Nowhere to report a failed write but the log itself: the lines are lost,
            // as they were when stdout failed before.
            let _ = out.write_all(&taken).and_then(|()| out.flush());
            taken.clear();
        }
        if closed {
            return;
        }
    }
}

impl Write for &Batched {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = &self.shared;
        let mut queue = shared.lock();
        while queue.bytes.len() >= MAX_QUEUED && !queue.closed {
            shared.wake_writer();
            queue = shared.room.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
        let before = queue.bytes.len();
        queue.bytes.extend_from_slice(line);
        let crossed = before < WAKE_AT && queue.bytes.len() >= WAKE_AT;
        drop(queue);
        if crossed {
            shared.wake_writer();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = &'a Batched;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake_writer();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_is_dropped() {
        let sink = Sink::default();
        let (batched, guard) = start(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let batched = batched.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        let line = format!("thread {t} line {i}\n");
                        (&batched).write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let written = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), 80_000);
        for t in 0..4 {
            let prefix = format!("thread {t} line ");
            let numbers: Vec<usize> = written
                .lines()
                .filter_map(|l| l.strip_prefix(&prefix))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(numbers, (0..20_000).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_line_is_written_within_the_flush_interval_without_a_wake_up() {
        let sink = Sink::default();
        let (batched, _guard) = start(sink.clone()).unwrap();
        (&batched).write_all(b"one line\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "line never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(sink.0.lock().unwrap().as_slice(), b"one line\n");
    }
}
