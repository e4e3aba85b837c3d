//! One audit row and its Arrow form: the schema every audit Parquet file has, and the
//! conversions both ways (the writer builds batches; `verify` and replay read them back).
//!
//! Schema decisions, each for a reader with DuckDB and no Rust:
//! - `time` is `Timestamp(µs, "UTC")`: DuckDB reads it as `TIMESTAMPTZ`, no unit guessing.
//! - Enumerations (`direction`, `kind`) are plain `Utf8` in snake case, not dictionary
//!   types: Parquet dictionary-encodes repeated strings anyway, and every engine reads text.
//! - `request_id` is the JSON text of the JSON-RPC id (`1` and `"1"` are different ids).
//! - `payload` is masked JSON text: only masked copies ever reach a record.
//! - `prev_hash` and `hash` are `FixedSizeBinary(32)` (raw SHA-256, half the bytes of hex
//!   and the length enforced by the type); `hex(hash)` in DuckDB. File metadata, which can
//!   only hold strings, carries them in lower-case hex.
//! - Lists (`rules`, `mask_rules`, `groups`) are never null, only empty.

use std::{path::Path, sync::Arc, sync::OnceLock};

use arrow_array::{
    Array, ArrayRef, FixedSizeBinaryArray, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, TimestampMicrosecondArray, UInt32Array, UInt64Array,
    builder::{ListBuilder, StringBuilder},
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::principal::Principal;

/// Which way the message went; `gateway` for what the agent itself decided or emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
    #[default]
    Gateway,
}

/// What the row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    Request,
    Response,
    Notification,
    Decision,
    #[default]
    Connection,
}

impl Direction {
    pub const ALL: [Self; 3] = [Self::ClientToServer, Self::ServerToClient, Self::Gateway];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientToServer => "client_to_server",
            Self::ServerToClient => "server_to_client",
            Self::Gateway => "gateway",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

impl Kind {
    pub const ALL: [Self; 5] = [
        Self::Request,
        Self::Response,
        Self::Notification,
        Self::Decision,
        Self::Connection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
            Self::Notification => "notification",
            Self::Decision => "decision",
            Self::Connection => "connection",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Who asked, flattened into columns. Token fields are null without a token, process
/// fields null when the kernel recorded no process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalColumns {
    pub sub: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub issuer: Option<String>,
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    pub user: Option<String>,
    pub comm: Option<String>,
    /// Lossy UTF-8 (U+FFFD for invalid bytes): a column is text; policy matches the real
    /// `Path`, the record is for people.
    pub exe: Option<String>,
    pub cgroup: Option<String>,
}

impl PrincipalColumns {
    pub fn from_principal(principal: &Principal) -> Self {
        let token = principal.token.as_ref();
        Self {
            sub: token.map(|t| t.subject.clone()),
            email: token.and_then(|t| t.email.clone()),
            groups: principal.groups().to_vec(),
            issuer: token.map(|t| t.issuer.clone()),
            pid: principal.process.as_ref().map(|p| p.pid),
            uid: principal.uid(),
            user: principal.user().map(str::to_owned),
            comm: principal.comm().map(str::to_owned),
            exe: principal
                .exe()
                .map(Path::to_string_lossy)
                .map(|s| s.into_owned()),
            cgroup: principal.cgroup().map(str::to_owned),
        }
    }
}

/// One row: one MCP message, decision or connection event. Field order is column order,
/// and column order is the order of the hash chain's canonical encoding (see `chain`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRecord {
    /// Microseconds since the Unix epoch, UTC.
    pub time_us: i64,
    pub host: String,
    /// MCP session id, or the connection id before/without one.
    pub session: String,
    /// JSON text of the JSON-RPC id.
    pub request_id: Option<String>,
    pub direction: Direction,
    pub kind: Kind,
    /// `streamable_http`, `http_sse` (the deprecated transport), `tcp`…
    pub transport: String,
    /// MCP protocol version (era), e.g. `2025-06-18`, when known.
    pub protocol_version: Option<String>,
    pub server_name: Option<String>,
    /// The original destination, `ip:port`.
    pub server_addr: String,
    /// JSON-RPC method (for a response, its request's); null for connection events.
    pub method: Option<String>,
    pub tool: Option<String>,
    /// Masked JSON text of params/result/error.
    pub payload: Option<String>,
    /// HTTP status.
    pub status: Option<i32>,
    /// JSON-RPC error code.
    pub error_code: Option<i64>,
    /// `allow`, `deny`, `approve`, `approval_granted`…
    pub decision: Option<String>,
    /// Policy rule ids that matched.
    pub rules: Vec<String>,
    pub masked_count: u32,
    /// Names of the masking rules that fired.
    pub mask_rules: Vec<String>,
    pub latency_us: Option<u64>,
    pub bytes: u64,
    pub principal: PrincipalColumns,
    pub agent_version: String,
    /// Set by the writer: the previous row's `hash` (32 zero bytes for the first row ever).
    pub prev_hash: [u8; 32],
    /// Set by the writer: see `chain::row_hash`.
    pub hash: [u8; 32],
}

impl AuditRecord {
    /// A row stamped now, on this host, by this agent version; the rest is the caller's.
    pub fn new(session: impl Into<String>, direction: Direction, kind: Kind) -> Self {
        let time_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Self {
            time_us,
            host: local_host().to_owned(),
            session: session.into(),
            direction,
            kind,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..Self::default()
        }
    }
}

/// The kernel's host name, read once (it is what `hostname` prints).
pub fn local_host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default()
    })
}

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// The schema of every audit file, in column (and canonical-encoding) order.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            use DataType::*;
            let f = Field::new;
            Arc::new(Schema::new(vec![
                f(
                    "time",
                    Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                ),
                f("host", Utf8, false),
                f("session", Utf8, false),
                f("request_id", Utf8, true),
                f("direction", Utf8, false),
                f("kind", Utf8, false),
                f("transport", Utf8, false),
                f("protocol_version", Utf8, true),
                f("server_name", Utf8, true),
                f("server_addr", Utf8, false),
                f("method", Utf8, true),
                f("tool", Utf8, true),
                f("payload", Utf8, true),
                f("status", Int32, true),
                f("error_code", Int64, true),
                f("decision", Utf8, true),
                f("rules", list_type(), false),
                f("masked_count", UInt32, false),
                f("mask_rules", list_type(), false),
                f("latency_us", UInt64, true),
                f("bytes", UInt64, false),
                f("sub", Utf8, true),
                f("email", Utf8, true),
                f("groups", list_type(), false),
                f("issuer", Utf8, true),
                f("pid", UInt32, true),
                f("uid", UInt32, true),
                f("user", Utf8, true),
                f("comm", Utf8, true),
                f("exe", Utf8, true),
                f("cgroup", Utf8, true),
                f("agent_version", Utf8, false),
                f("prev_hash", FixedSizeBinary(32), false),
                f("hash", FixedSizeBinary(32), false),
            ]))
        })
        .clone()
}

fn text<'a>(rows: &'a [AuditRecord], get: impl Fn(&'a AuditRecord) -> &'a str) -> ArrayRef {
    Arc::new(rows.iter().map(|r| Some(get(r))).collect::<StringArray>())
}

fn opt_text<'a>(
    rows: &'a [AuditRecord],
    get: impl Fn(&'a AuditRecord) -> &'a Option<String>,
) -> ArrayRef {
    Arc::new(
        rows.iter()
            .map(|r| get(r).as_deref())
            .collect::<StringArray>(),
    )
}

fn list<'a>(rows: &'a [AuditRecord], get: impl Fn(&'a AuditRecord) -> &'a [String]) -> ArrayRef {
    let mut builder = ListBuilder::new(StringBuilder::new());
    for row in rows {
        for item in get(row) {
            builder.values().append_value(item);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

fn hashes(rows: &[AuditRecord], get: impl Fn(&AuditRecord) -> [u8; 32]) -> ArrayRef {
    let array = FixedSizeBinaryArray::try_from_iter(rows.iter().map(get))
        .expect("32-byte values always form a FixedSizeBinary(32) array");
    Arc::new(array)
}

/// Rows (already hashed) as one batch of [`schema`].
pub fn to_batch(rows: &[AuditRecord]) -> Result<RecordBatch, ArrowError> {
    let time: TimestampMicrosecondArray = rows.iter().map(|r| Some(r.time_us)).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(time.with_timezone("UTC")),
        text(rows, |r| &r.host),
        text(rows, |r| &r.session),
        opt_text(rows, |r| &r.request_id),
        text(rows, |r| r.direction.as_str()),
        text(rows, |r| r.kind.as_str()),
        text(rows, |r| &r.transport),
        opt_text(rows, |r| &r.protocol_version),
        opt_text(rows, |r| &r.server_name),
        text(rows, |r| &r.server_addr),
        opt_text(rows, |r| &r.method),
        opt_text(rows, |r| &r.tool),
        opt_text(rows, |r| &r.payload),
        Arc::new(rows.iter().map(|r| r.status).collect::<Int32Array>()),
        Arc::new(rows.iter().map(|r| r.error_code).collect::<Int64Array>()),
        opt_text(rows, |r| &r.decision),
        list(rows, |r| &r.rules),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.masked_count))
                .collect::<UInt32Array>(),
        ),
        list(rows, |r| &r.mask_rules),
        Arc::new(rows.iter().map(|r| r.latency_us).collect::<UInt64Array>()),
        Arc::new(rows.iter().map(|r| Some(r.bytes)).collect::<UInt64Array>()),
        opt_text(rows, |r| &r.principal.sub),
        opt_text(rows, |r| &r.principal.email),
        list(rows, |r| &r.principal.groups),
        opt_text(rows, |r| &r.principal.issuer),
        Arc::new(
            rows.iter()
                .map(|r| r.principal.pid)
                .collect::<UInt32Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| r.principal.uid)
                .collect::<UInt32Array>(),
        ),
        opt_text(rows, |r| &r.principal.user),
        opt_text(rows, |r| &r.principal.comm),
        opt_text(rows, |r| &r.principal.exe),
        opt_text(rows, |r| &r.principal.cgroup),
        text(rows, |r| &r.agent_version),
        hashes(rows, |r| r.prev_hash),
        hashes(rows, |r| r.hash),
    ];
    RecordBatch::try_new(schema(), columns)
}

/// Why a stored batch could not be read back as rows: the file is not one we wrote, or
/// someone edited it into a shape we never write.
#[derive(Debug, thiserror::Error)]
pub enum ColumnError {
    #[error("schema differs from the audit schema: {0}")]
    Schema(String),
    #[error("row {row}: column {column}: {problem}")]
    Value {
        row: usize,
        column: &'static str,
        problem: &'static str,
    },
}

/// A batch read from an audit file, back into rows. The schema must be exactly
/// [`schema`]: a file whose types drifted cannot be hashed the same way.
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<AuditRecord>, ColumnError> {
    if batch.schema().fields() != schema().fields() {
        return Err(ColumnError::Schema(format!(
            "{:?}",
            batch.schema().fields()
        )));
    }
    let c = |i: usize| batch.column(i).as_ref();
    let s = |i: usize| downcast::<StringArray>(c(i));
    let (time, host, session, request_id) = (
        downcast::<TimestampMicrosecondArray>(c(0)),
        s(1),
        s(2),
        s(3),
    );
    let (direction, kind, transport, protocol_version, server_name) =
        (s(4), s(5), s(6), s(7), s(8));
    let (server_addr, method, tool, payload) = (s(9), s(10), s(11), s(12));
    let (status, error_code, decision) = (
        downcast::<Int32Array>(c(13)),
        downcast::<Int64Array>(c(14)),
        s(15),
    );
    let lists = |i: usize| downcast::<ListArray>(c(i));
    let (rules, masked_count, mask_rules) = (lists(16), downcast::<UInt32Array>(c(17)), lists(18));
    let (latency_us, bytes) = (
        downcast::<UInt64Array>(c(19)),
        downcast::<UInt64Array>(c(20)),
    );
    let (sub, email, groups, issuer) = (s(21), s(22), lists(23), s(24));
    let (pid, uid) = (
        downcast::<UInt32Array>(c(25)),
        downcast::<UInt32Array>(c(26)),
    );
    let (user, comm, exe, cgroup, agent_version) = (s(27), s(28), s(29), s(30), s(31));
    let (prev_hash, hash) = (
        downcast::<FixedSizeBinaryArray>(c(32)),
        downcast::<FixedSizeBinaryArray>(c(33)),
    );

    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let bad = |column, problem| ColumnError::Value {
            row,
            column,
            problem,
        };
        let direction = Direction::parse(direction.value(row))
            .ok_or_else(|| bad("direction", "unknown direction"))?;
        let kind = Kind::parse(kind.value(row)).ok_or_else(|| bad("kind", "unknown kind"))?;
        let items = |array: &ListArray, column| -> Result<Vec<String>, ColumnError> {
            let values = array.value(row);
            let values = downcast::<StringArray>(values.as_ref());
            if values.null_count() > 0 {
                return Err(bad(column, "null list item"));
            }
            Ok(values.iter().flatten().map(str::to_owned).collect())
        };
        rows.push(AuditRecord {
            time_us: time.value(row),
            host: host.value(row).to_owned(),
            session: session.value(row).to_owned(),
            request_id: opt(request_id, row),
            direction,
            kind,
            transport: transport.value(row).to_owned(),
            protocol_version: opt(protocol_version, row),
            server_name: opt(server_name, row),
            server_addr: server_addr.value(row).to_owned(),
            method: opt(method, row),
            tool: opt(tool, row),
            payload: opt(payload, row),
            status: status.is_valid(row).then(|| status.value(row)),
            error_code: error_code.is_valid(row).then(|| error_code.value(row)),
            decision: opt(decision, row),
            rules: items(rules, "rules")?,
            masked_count: masked_count.value(row),
            mask_rules: items(mask_rules, "mask_rules")?,
            latency_us: latency_us.is_valid(row).then(|| latency_us.value(row)),
            bytes: bytes.value(row),
            principal: PrincipalColumns {
                sub: opt(sub, row),
                email: opt(email, row),
                groups: items(groups, "groups")?,
                issuer: opt(issuer, row),
                pid: pid.is_valid(row).then(|| pid.value(row)),
                uid: uid.is_valid(row).then(|| uid.value(row)),
                user: opt(user, row),
                comm: opt(comm, row),
                exe: opt(exe, row),
                cgroup: opt(cgroup, row),
            },
            agent_version: agent_version.value(row).to_owned(),
            prev_hash: prev_hash
                .value(row)
                .try_into()
                .expect("schema says 32 bytes"),
            hash: hash.value(row).try_into().expect("schema says 32 bytes"),
        });
    }
    Ok(rows)
}

/// The schema check in [`from_batch`] already fixed every column's type.
fn downcast<T: 'static>(array: &dyn Array) -> &T {
    array
        .as_any()
        .downcast_ref::<T>()
        .expect("type checked against the audit schema")
}

fn opt(array: &StringArray, row: usize) -> Option<String> {
    array.is_valid(row).then(|| array.value(row).to_owned())
}
