//! Rug-pull detection: every tool a server lists is fingerprinted
//! (`fingerprint.rs`) and compared with its pin — the first definition seen (trust on
//! first use), a shipped pinned set, or one an operator accepted after review
//! (`store.rs`). A changed or added tool, and a definition carrying hidden-text markers
//! (`markers.rs`), is handled per `on_tool_change` / `on_injection_marker`:
//!
//! - `warn`: logged and audited with the diff, the tool stays usable;
//! - `hide`: removed from `tools/list` (the policy's own cut, `mcp::filter`) and its
//!   calls refused, since a client can call a tool by name without listing it;
//! - `deny`: listed, but calls are refused with a reason naming the change;
//! - `approve`: calls go through the approval workflow (rule `pins-tool-change`); without
//!   `[approval]` that refuses, as every `approve` rule does.
//!
//! The state is shared with `gateway-agent pins` through the state file: the agent
//! re-reads it when its modification time changes, so `pins accept` takes effect on the
//! next message without a restart.

pub mod cli;
pub mod fingerprint;
mod hooks;
pub mod markers;
pub mod store;
mod watch;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::{Path, PathBuf},
    sync::Mutex,
    time::SystemTime,
};

use serde::Deserialize;
use serde_json::Value;
use tracing::{error, warn};

use fingerprint::Fingerprint;
pub use hooks::{listed_tools, overrule, server_key};
use store::{Record, Source, State, ToolState};

/// The policy rule id calls refused or held by pinning carry (logs, audit, and
/// `[approval.rule.pins-tool-change]` for its own approvers).
pub const RULE: &str = "pins-tool-change";
/// How long a server's first, paginated listing may take to read (µs).
const FIRST_LISTING_US: i64 = 10 * 60 * 1_000_000;

/// The rule id of definitions refused for injection markers.
pub const MARKER_RULE: &str = "pins-injection-marker";

/// What to do about a tool whose definition is not the pinned one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Warn,
    Approve,
    Deny,
    Hide,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Warn => "warn",
            Action::Approve => "approve",
            Action::Deny => "deny",
            Action::Hide => "hide",
        }
    }
}

/// `[pins]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PinsConfig {
    pub enabled: bool,
    /// The state file. Default: `pins.json` next to the audit directory.
    pub file: Option<PathBuf>,
    /// Shipped pinned sets (`*.toml` from `gateway-agent pins export`). Their servers get
    /// no trust on first use: a tool they do not list is an added tool.
    pub dir: Option<PathBuf>,
    /// Default for servers without their own `[[server]] on_tool_change`.
    pub on_tool_change: Action,
    /// For definitions with hidden-text markers nobody reviewed (`pins accept` reviews).
    pub on_injection_marker: Action,
}

impl Default for PinsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            file: None,
            dir: None,
            on_tool_change: Action::Warn,
            on_injection_marker: Action::Hide,
        }
    }
}

impl PinsConfig {
    /// The state file, given the audit directory it defaults next to.
    pub fn state_file(&self, audit_dir: &Path) -> PathBuf {
        self.file
            .clone()
            .unwrap_or_else(|| audit_dir.with_file_name("pins.json"))
    }
}

/// Why a tool is not simply trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub tool: String,
    pub action: Action,
    pub rule: &'static str,
    /// `changed`, `added` or `markers`.
    pub change: &'static str,
    /// One sentence for the caller and the log.
    pub reason: String,
    /// For the audit row: pinned and seen digests, the member diff, the markers.
    pub detail: Value,
}

/// The pinned-definition checks of one agent.
pub struct Pins {
    file: PathBuf,
    default_action: Action,
    marker_action: Action,
    per_server: HashMap<String, Action>,
    shipped: BTreeMap<String, BTreeMap<String, Record>>,
    inner: Mutex<Loaded>,
}

#[derive(Default)]
struct Loaded {
    state: State,
    /// The state file's modification time when last read or written.
    stamp: Option<SystemTime>,
    /// Says when the file cannot have changed, so the time need not be looked up.
    watch: Option<watch::StateWatch>,
}

#[derive(Debug, thiserror::Error)]
pub enum PinsError {
    #[error("pins: {0}")]
    Store(#[from] store::StoreError),
}

pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn stamp(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Pins {
    /// `per_server`: each configured server's own `on_tool_change`.
    pub fn load(
        config: &PinsConfig,
        audit_dir: &Path,
        per_server: HashMap<String, Action>,
    ) -> Result<Self, PinsError> {
        let file = config.state_file(audit_dir);
        let shipped = match &config.dir {
            Some(dir) => store::read_shipped(dir)?,
            None => BTreeMap::new(),
        };
        let watch = watch::StateWatch::new(&file);
        let state = State::read(&file)?;
        let pins = Self::assemble(file, config, per_server, shipped, state);
        let now = stamp(&pins.file);
        let mut loaded = pins.inner.lock().unwrap_or_else(|p| p.into_inner());
        loaded.stamp = now;
        loaded.watch = Some(watch);
        drop(loaded);
        Ok(pins)
    }

    fn assemble(
        file: PathBuf,
        config: &PinsConfig,
        per_server: HashMap<String, Action>,
        shipped: BTreeMap<String, BTreeMap<String, Record>>,
        state: State,
    ) -> Self {
        Self {
            file,
            default_action: config.on_tool_change,
            marker_action: config.on_injection_marker,
            per_server,
            shipped,
            inner: Mutex::new(Loaded {
                state,
                ..Loaded::default()
            }),
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    fn action(&self, server: &str) -> Action {
        self.per_server
            .get(server)
            .copied()
            .unwrap_or(self.default_action)
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, Loaded> {
        let mut loaded = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !loaded
            .watch
            .as_mut()
            .is_none_or(watch::StateWatch::maybe_changed)
        {
            return loaded;
        }
        // `pins accept` rewrote the file: take its word.
        let now = stamp(&self.file);
        if now.is_some() && now != loaded.stamp {
            match State::read(&self.file) {
                Ok(state) => {
                    loaded.state = state;
                    loaded.stamp = now;
                }
                Err(err) => {
                    error!(error = %err, "pins state file unreadable; keeping the last state")
                }
            }
        }
        loaded
    }

    /// The pin `tool` of `server` is held to: an accepted re-pin, else a shipped one,
    /// else the first definition seen.
    fn effective<'a>(
        &'a self,
        server: &str,
        tool: &str,
        state: Option<&'a ToolState>,
    ) -> Option<(&'a Record, Source)> {
        let accepted = state.filter(|s| s.source == Some(Source::Accepted));
        if let Some(st) = accepted {
            return st.pinned.as_ref().map(|r| (r, Source::Accepted));
        }
        if let Some(record) = self.shipped.get(server).and_then(|tools| tools.get(tool)) {
            return Some((record, Source::Shipped));
        }
        state.and_then(|s| {
            s.pinned
                .as_ref()
                .map(|r| (r, s.source.unwrap_or(Source::Tofu)))
        })
    }

    /// Checks every tool of one `tools/list` result of `server` against its pin, pins
    /// the tools of a server seen for the first time, remembers changed definitions (for
    /// `pins accept` and later calls), and returns what is not simply trusted.
    /// `more`: the result has a `nextCursor` (more pages follow).
    pub fn observe(&self, server: &str, tools: &[Value], more: bool) -> Vec<Finding> {
        let prints: Vec<Fingerprint> = tools.iter().filter_map(Fingerprint::of).collect();
        let mut loaded = self.locked();
        let at = now_us();
        let known = loaded.state.servers.contains_key(server) || self.shipped.contains_key(server);
        // A first listing stays open for its later pages, within a bound: a client that
        // never reads the last page must not leave trust on first use open for good.
        let opened = loaded.state.first_listing.get(server).copied();
        let tofu =
            !known || opened.is_some_and(|start| at.saturating_sub(start) < FIRST_LISTING_US);
        let mut dirty = false;
        let mut findings = Vec::new();
        for fp in &prints {
            let existing = loaded
                .state
                .servers
                .get(server)
                .and_then(|t| t.get(&fp.name))
                .cloned();
            let mut pin = self
                .effective(server, &fp.name, existing.as_ref())
                .map(|(r, s)| (r.clone(), s));
            let mut next = existing.clone().unwrap_or_default();
            match &pin {
                None if tofu => {
                    let record = Record::from_fingerprint(fp, at);
                    next.pinned = Some(record.clone());
                    next.source = Some(Source::Tofu);
                    next.seen = None;
                    pin = Some((record, Source::Tofu));
                }
                Some((record, _)) if record.sha256 == fp.sha256 => next.seen = None,
                _ => {
                    if next.seen.as_ref().is_none_or(|s| s.sha256 != fp.sha256) {
                        next.seen = Some(Record::from_fingerprint(fp, at));
                    }
                }
            }
            if let Some(finding) = self.judge(server, &fp.name, &next, pin.as_ref()) {
                findings.push(finding);
            }
            if existing.as_ref() != Some(&next) {
                loaded
                    .state
                    .servers
                    .entry(server.to_owned())
                    .or_default()
                    .insert(fp.name.clone(), next);
                dirty = true;
            }
        }
        if tofu && more {
            dirty |= opened.is_none();
            loaded
                .state
                .first_listing
                .insert(server.to_owned(), opened.unwrap_or(at));
        } else if opened.is_some() {
            loaded.state.first_listing.remove(server);
            dirty = true;
        }
        if dirty {
            self.persist(&mut loaded);
        }
        findings
    }

    /// Writes the state file under its lock, merging what `pins accept` wrote meanwhile
    /// (its accepted pins win).
    fn persist(&self, loaded: &mut Loaded) {
        let result = (|| -> Result<(), store::StoreError> {
            let _lock = store::lock(&self.file)?;
            let on_disk = State::read(&self.file)?;
            for (server, tools) in on_disk.servers {
                for (tool, st) in tools {
                    if st.source == Some(Source::Accepted) {
                        let mine = loaded
                            .state
                            .servers
                            .entry(server.clone())
                            .or_default()
                            .entry(tool)
                            .or_default();
                        if mine.source != Some(Source::Accepted) || mine.pinned != st.pinned {
                            *mine = st;
                        }
                    }
                }
            }
            loaded.state.write(&self.file)?;
            loaded.stamp = stamp(&self.file);
            Ok(())
        })();
        if let Err(err) = result {
            error!(error = %err, "pins state not saved; pins live in memory until it can be");
        }
    }

    /// The finding for one tool whose state is `st`, if any.
    fn judge(
        &self,
        server: &str,
        tool: &str,
        st: &ToolState,
        pin: Option<&(Record, Source)>,
    ) -> Option<Finding> {
        let current = st.current()?;
        let mut findings = Vec::new();
        match pin {
            Some((record, _)) if record.sha256 != current.sha256 => {
                let diff = fingerprint::diff(&record.definition, &current.definition);
                let members: Vec<&str> = diff.keys().map(String::as_str).collect();
                findings.push(Finding {
                    tool: tool.to_owned(),
                    action: self.action(server),
                    rule: RULE,
                    change: "changed",
                    reason: format!(
                        "tool {tool:?} of server {server:?} changed since it was pinned ({} changed); an operator must review it (`gateway-agent pins accept {server} {tool}`)",
                        members.join(", ")
                    ),
                    detail: serde_json::json!({
                        "pinned_sha256": record.sha256, "seen_sha256": current.sha256, "diff": diff,
                    }),
                });
            }
            None => findings.push(Finding {
                tool: tool.to_owned(),
                action: self.action(server),
                rule: RULE,
                change: "added",
                reason: format!(
                    "tool {tool:?} was added to server {server:?} after its tools were pinned; an operator must review it (`gateway-agent pins accept {server} {tool}`)"
                ),
                detail: serde_json::json!({ "seen_sha256": current.sha256, "definition": current.definition }),
            }),
            _ => {}
        }
        let reviewed = pin.is_some_and(|(r, s)| s.reviewed() && r.sha256 == current.sha256);
        let found = markers::scan(&current.definition);
        if !found.is_empty() && !reviewed {
            findings.push(Finding {
                tool: tool.to_owned(),
                action: self.marker_action,
                rule: MARKER_RULE,
                change: "markers",
                reason: format!(
                    "tool {tool:?} of server {server:?} carries hidden-text markers ({}); an operator must review it",
                    found.join("; ")
                ),
                detail: serde_json::json!({ "markers": found, "seen_sha256": current.sha256 }),
            });
        }
        // The strictest finding decides; the others' details travel with it.
        findings.sort_by_key(|f| std::cmp::Reverse(f.action));
        let mut iter = findings.into_iter();
        let mut first = iter.next()?;
        for other in iter {
            first.reason = format!("{}; {}", first.reason, other.reason);
            if let (Value::Object(into), Value::Object(from)) = (&mut first.detail, other.detail) {
                for (k, v) in from {
                    into.entry(k).or_insert(v);
                }
            }
        }
        Some(first)
    }

    /// What to do about a call to `tool` of `server`, judged from what the agent last
    /// saw that server list; `None`: nothing to do (unknown tools are policy's business).
    pub fn check_call(&self, server: &str, tool: &str) -> Option<Finding> {
        let loaded = self.locked();
        let st = loaded.state.servers.get(server).and_then(|t| t.get(tool));
        let st = st?;
        let pin = self
            .effective(server, tool, Some(st))
            .map(|(r, s)| (r.clone(), s));
        self.judge(server, tool, st, pin.as_ref())
    }

    /// Logs findings of one `tools/list` and returns the tools to hide.
    pub fn to_hide(findings: &[Finding]) -> HashSet<String> {
        for finding in findings {
            warn!(tool = %finding.tool, action = finding.action.as_str(), change = finding.change, reason = %finding.reason, "tool definition differs from its pin");
        }
        findings
            .iter()
            .filter(|f| f.action == Action::Hide)
            .map(|f| f.tool.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests;
