//! Reading the trail back for people: `audit sessions` lists who talked to which server
//! and how it went, `audit replay` shows one session's conversation row by row.
//!
//! Closed files are read ([`writer::closed_files`]), then the rows that are durable in the
//! write-ahead log but not yet in a closed file ([`super::tail`]): a session shows up as
//! soon as its rows are recorded, not when the open file is closed (up to an hour later).
//! Rows come back in chain order (files by name, rows as written, then the log's);
//! replay orders by time, stably, so rows with the same timestamp keep that order.

use std::{fs::File, path::Path, path::PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

use super::{
    chain,
    record::{self, AuditRecord},
    writer,
};

const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read audit directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{dir}: no audit rows (is this the `[audit] dir`? nothing recorded yet, or no access \
         to its files)"
    )]
    Empty { dir: PathBuf },
    #[error(
        "{file}: unreadable (truncated or corrupt): {problem} (run `gateway-agent audit verify`)"
    )]
    Unreadable { file: PathBuf, problem: String },
    #[error(
        "session {session:?} not found in {dir} (list sessions with \
         `gateway-agent audit sessions --dir {dir}`)"
    )]
    UnknownSession { session: String, dir: PathBuf },
    #[error(
        "--since {text:?}: expected RFC 3339 (2026-11-26T10:00:00Z) or an age such as 30m, \
         2h, 7d"
    )]
    Since { text: String },
}

/// Which sessions `sessions` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Matches the `user`, `sub` or `email` column of any row of the session.
    pub user: Option<String>,
    /// Only rows at or after this time (µs since the epoch, UTC) are read and counted.
    pub since_us: Option<i64>,
}

/// One session as `audit sessions` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSummary {
    pub session: String,
    pub first_us: i64,
    pub last_us: i64,
    /// First non-null value of each column in the session.
    pub user: Option<String>,
    pub uid: Option<u32>,
    pub sub: Option<String>,
    pub email: Option<String>,
    pub comm: Option<String>,
    pub exe: Option<String>,
    /// `server_name`, or `server_addr` for an unnamed server.
    pub server: String,
    pub messages: u64,
    /// Rows with `decision = 'deny'`.
    pub denied: u64,
    /// Sum of `masked_count`: secrets masked in the session.
    pub masked: u64,
}

/// Sessions matching `filter`, newest (by last row) last.
pub fn sessions(dir: &Path, filter: &SessionFilter) -> Result<Vec<SessionSummary>, ReplayError> {
    let rows = read_rows(dir, filter.since_us)?;
    let mut out: Vec<SessionSummary> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let mut matched = std::collections::HashSet::new();
    for row in rows {
        if filter.since_us.is_some_and(|since| row.time_us < since) {
            continue;
        }
        let p = &row.principal;
        if let Some(user) = &filter.user
            && [&p.user, &p.sub, &p.email]
                .iter()
                .any(|c| c.as_deref() == Some(user.as_str()))
        {
            matched.insert(row.session.clone());
        }
        let i = *index.entry(row.session.clone()).or_insert_with(|| {
            out.push(SessionSummary {
                session: row.session.clone(),
                first_us: row.time_us,
                last_us: row.time_us,
                ..SessionSummary::default()
            });
            out.len() - 1
        });
        let s = &mut out[i];
        s.first_us = s.first_us.min(row.time_us);
        s.last_us = s.last_us.max(row.time_us);
        s.user = s.user.take().or_else(|| p.user.clone());
        s.uid = s.uid.or(p.uid);
        s.sub = s.sub.take().or_else(|| p.sub.clone());
        s.email = s.email.take().or_else(|| p.email.clone());
        s.comm = s.comm.take().or_else(|| p.comm.clone());
        s.exe = s.exe.take().or_else(|| p.exe.clone());
        if s.server.is_empty() {
            s.server = row.server_name.clone().unwrap_or(row.server_addr.clone());
        }
        s.messages += 1;
        s.denied += u64::from(row.decision.as_deref() == Some("deny"));
        s.masked += u64::from(row.masked_count);
    }
    if filter.user.is_some() {
        out.retain(|s| matched.contains(&s.session));
    }
    out.sort_by_key(|s| s.last_us);
    Ok(out)
}

/// Every row of `session`, in chain order.
pub fn replay(dir: &Path, session: &str) -> Result<Vec<AuditRecord>, ReplayError> {
    let mut rows: Vec<AuditRecord> = read_rows(dir, None)?
        .into_iter()
        .filter(|r| r.session == session)
        .collect();
    if rows.is_empty() {
        return Err(ReplayError::UnknownSession {
            session: session.to_owned(),
            dir: dir.to_owned(),
        });
    }
    rows.sort_by_key(|r| r.time_us);
    Ok(rows)
}

/// Rows of every closed file, skipping `dt=` partitions wholly before `since_us` (a file
/// lives in the partition of the UTC day it was opened, and is closed at midnight).
fn read_rows(dir: &Path, since_us: Option<i64>) -> Result<Vec<AuditRecord>, ReplayError> {
    let files = writer::closed_files(dir).map_err(|source| ReplayError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let since_day = since_us.map(date_of);
    let mut rows = Vec::new();
    // Rows after the newest file read are still only in the write-ahead log.
    let closed_seq = match files.last() {
        Some(newest) => std::panic::catch_unwind(|| writer::wal_seq_in(&newest.path))
            .unwrap_or(Ok(None))
            .map_err(|e| ReplayError::Unreadable {
                file: newest.path.clone(),
                problem: e.to_string(),
            })?
            .unwrap_or(0),
        None => 0,
    };
    for file in files {
        let partition = file
            .path
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str()?.strip_prefix("dt="));
        if let (Some(since), Some(day)) = (&since_day, partition)
            && day < since.as_str()
        {
            continue;
        }
        rows.extend(read_file(&file.path)?);
    }
    let tail = super::tail::wal_tail(dir, closed_seq).map_err(|e| ReplayError::Unreadable {
        file: super::wal::wal_dir(dir),
        problem: e.to_string(),
    })?;
    rows.extend(tail);
    if rows.is_empty() {
        return Err(ReplayError::Empty {
            dir: dir.to_owned(),
        });
    }
    Ok(rows)
}

fn read_file(path: &Path) -> Result<Vec<AuditRecord>, ReplayError> {
    let unreadable = |problem: String| ReplayError::Unreadable {
        file: path.to_owned(),
        problem,
    };
    // The Parquet reader can panic on a damaged file (see `verify::guarded`).
    std::panic::catch_unwind(|| {
        let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| unreadable(e.to_string()))?;
        let mut rows = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| unreadable(e.to_string()))?;
            rows.extend(record::from_batch(&batch).map_err(|e| unreadable(e.to_string()))?);
        }
        Ok(rows)
    })
    .unwrap_or_else(|_| Err(unreadable("the Parquet reader panicked".into())))
}

/// `--since`: RFC 3339, or an age (`30s`, `30m`, `2h`, `7d`) before `now_us`.
pub fn parse_since(text: &str, now_us: i64) -> Result<i64, ReplayError> {
    let bad = || ReplayError::Since {
        text: text.to_owned(),
    };
    if let Some(unit) = text.chars().last().filter(char::is_ascii_alphabetic)
        && let Ok(n) = text[..text.len() - 1].parse::<i64>()
    {
        let secs = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        return Ok(now_us - n * secs * 1_000_000);
    }
    parse_rfc3339(text).ok_or_else(bad)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then_some(())?;
        s.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d, h, mi, s) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut frac_us = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<6}", &frac[..digits.min(6)]);
        frac_us = padded.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest.get(1..)?.split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    Some(secs * 1_000_000 + frac_us)
}

/// Howard Hinnant's days_from_civil.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's civil_from_days.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn date_of(us: i64) -> String {
    let (y, m, d) = civil(us.div_euclid(DAY_US));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2026-11-26T10:00:00.123Z`: UTC, milliseconds.
pub fn format_time(us: i64) -> String {
    let in_day = us.rem_euclid(DAY_US);
    let secs = in_day / 1_000_000;
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        date_of(us),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        in_day % 1_000_000 / 1000
    )
}

fn or_dash(value: Option<&str>) -> &str {
    value.filter(|v| !v.is_empty()).unwrap_or("-")
}

/// Who, for a listing: `user (uid)`, then the token's subject or email.
fn who(user: Option<&str>, uid: Option<u32>, sub: Option<&str>, email: Option<&str>) -> String {
    let mut parts = Vec::new();
    match (user, uid) {
        (Some(user), Some(uid)) => parts.push(format!("{user}({uid})")),
        (Some(user), None) => parts.push(user.to_owned()),
        (None, Some(uid)) => parts.push(format!("uid {uid}")),
        (None, None) => {}
    }
    if let Some(id) = email.or(sub) {
        parts.push(id.to_owned());
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

/// `audit sessions` as a table, one line per session, with a header.
pub fn render_sessions(sessions: &[SessionSummary]) -> String {
    let header = [
        "SESSION", "FIRST", "LAST", "WHO", "PROCESS", "SERVER", "MESSAGES", "DENIED", "MASKED",
    ]
    .map(str::to_owned);
    let mut lines = vec![header];
    for s in sessions {
        lines.push([
            s.session.clone(),
            format_time(s.first_us),
            format_time(s.last_us),
            who(
                s.user.as_deref(),
                s.uid,
                s.sub.as_deref(),
                s.email.as_deref(),
            ),
            or_dash(s.comm.as_deref().or(s.exe.as_deref())).to_owned(),
            s.server.clone(),
            s.messages.to_string(),
            s.denied.to_string(),
            s.masked.to_string(),
        ]);
    }
    let mut widths = [0; 9];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `audit sessions --json`: one object.
pub fn session_json(s: &SessionSummary) -> Value {
    json!({
        "session": s.session,
        "first": format_time(s.first_us),
        "last": format_time(s.last_us),
        "user": s.user,
        "uid": s.uid,
        "sub": s.sub,
        "email": s.email,
        "comm": s.comm,
        "exe": s.exe,
        "server": s.server,
        "messages": s.messages,
        "denied": s.denied,
        "masked": s.masked,
    })
}

/// `audit replay` for people: a header per row, then its details and payload.
pub fn render_replay(rows: &[AuditRecord]) -> String {
    let mut out = String::new();
    for r in rows {
        let p = &r.principal;
        let mut head = format!(
            "{}  {} {}",
            format_time(r.time_us),
            r.direction.as_str(),
            r.kind.as_str()
        );
        if let Some(method) = &r.method {
            head.push_str(&format!("  {method}"));
        }
        if let Some(tool) = &r.tool {
            head.push_str(&format!("  tool={tool}"));
        }
        if let Some(id) = &r.request_id {
            head.push_str(&format!("  id={id}"));
        }
        out.push_str(&head);
        out.push('\n');
        let mut who_line = format!(
            "    who: {}",
            who(
                p.user.as_deref(),
                p.uid,
                p.sub.as_deref(),
                p.email.as_deref()
            )
        );
        if let Some(comm) = &p.comm {
            who_line.push_str(&format!("  comm={comm}"));
        }
        if let Some(pid) = p.pid {
            who_line.push_str(&format!("  pid={pid}"));
        }
        let server = r.server_name.as_deref().unwrap_or(&r.server_addr);
        who_line.push_str(&format!("  server={server}"));
        out.push_str(&who_line);
        out.push('\n');
        let mut outcome = Vec::new();
        if let Some(status) = r.status {
            outcome.push(format!("status={status}"));
        }
        if let Some(code) = r.error_code {
            outcome.push(format!("error_code={code}"));
        }
        if let Some(decision) = &r.decision {
            if r.rules.is_empty() {
                outcome.push(format!("decision={decision}"));
            } else {
                outcome.push(format!(
                    "decision={decision} (rules: {})",
                    r.rules.join(", ")
                ));
            }
        }
        if r.masked_count > 0 || !r.mask_rules.is_empty() {
            let mut names = r.mask_rules.clone();
            names.dedup();
            outcome.push(format!("masked={} ({})", r.masked_count, names.join(", ")));
        }
        if !outcome.is_empty() {
            out.push_str(&format!("    {}\n", outcome.join("  ")));
        }
        if let Some(payload) = &r.payload {
            let pretty = serde_json::from_str::<Value>(payload)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| payload.clone());
            for line in pretty.lines() {
                out.push_str("      ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

/// `audit replay --json`: one object per row, columns by name, hashes in hex.
pub fn record_json(r: &AuditRecord) -> Value {
    let p = &r.principal;
    json!({
        "time": format_time(r.time_us),
        "time_us": r.time_us,
        "host": r.host,
        "session": r.session,
        "request_id": r.request_id,
        "direction": r.direction.as_str(),
        "kind": r.kind.as_str(),
        "transport": r.transport,
        "protocol_version": r.protocol_version,
        "server_name": r.server_name,
        "server_addr": r.server_addr,
        "method": r.method,
        "tool": r.tool,
        "payload": r.payload,
        "status": r.status,
        "error_code": r.error_code,
        "decision": r.decision,
        "rules": r.rules,
        "masked_count": r.masked_count,
        "mask_rules": r.mask_rules,
        "latency_us": r.latency_us,
        "bytes": r.bytes,
        "sub": p.sub,
        "email": p.email,
        "groups": p.groups,
        "issuer": p.issuer,
        "pid": p.pid,
        "uid": p.uid,
        "user": p.user,
        "comm": p.comm,
        "exe": p.exe,
        "cgroup": p.cgroup,
        "agent_version": r.agent_version,
        "prev_hash": chain::to_hex(&r.prev_hash),
        "hash": chain::to_hex(&r.hash),
    })
}

#[cfg(test)]
mod tests;
