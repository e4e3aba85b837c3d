//! Just-in-time human approval of high-risk MCP calls.
//!
//! An `approve` policy rule does not refuse the call outright: the gateway opens an
//! approval naming exactly that call and holds the HTTP exchange while people other than
//! the caller decide. Approved in time, the call is forwarded and its response flows as
//! usual; otherwise the caller is told the approval is pending and to retry the same
//! call, which then matches the approval (a new JSON-RPC id does not matter, a changed
//! argument or another caller does). Each approval is single-use unless its rule grants
//! more, expires into a denial, and every step is an audit row.
//!
//! Why this shape: the decision must be bound to what was actually asked (an approval for
//! "read /tmp/x" must not release "read /etc/shadow"), must come from someone other than
//! the requester, and must survive the agent restarting — otherwise the control is either
//! bypassable or so annoying that operators switch it off.
//!
//! - [`config`]: `[approval]`, per-rule overrides (`[approval.rule.<id>]`).
//! - [`binding`]: the exact-call key: principal, server, method, tool, argument digest
//!   over canonical JSON.
//! - [`store`]: approvals, their states and the caps on open ones.
//! - [`journal`]: the fsynced JSON-lines journal approvals survive restarts in.
//! - [`hold`]: what the exchange calls: use an approval, or open one and wait.
//! - [`comeback`]: 2026-07-28 `input_required` answers that make a held client come back.
//! - [`decide`]: approve/deny with authorisation, no self-approval, quorum.
//! - [`admin`]: the Unix-socket admin API (peer credentials are the approver's identity).
//! - [`http_admin`]: the same over HTTP for remote approvers, identified by OIDC token.
//! - [`client`]: `gateway-agent approvals …`, the CLI side of the socket.
//! - [`notify`]: webhooks (HMAC-signed JSON, Slack format) announcing new approvals.
//! - [`response_hold`]: answers carrying too many secrets, held before release.
//! - [`rows`]: the audit rows of each event.

pub mod admin;
pub mod binding;
pub mod client;
pub mod comeback;
pub mod config;
pub mod decide;
pub mod hold;
pub mod http_admin;
pub mod journal;
pub mod notify;
mod requester_gone;
pub mod response_hold;
pub mod rows;
pub mod store;

use std::{path::Path, sync::Arc, time::Duration};

use tokio::sync::{Mutex, watch};
use tracing::{info, warn};

pub use config::ApprovalConfig;
pub use hold::{Call, Held};
pub use response_hold::ResponseHeld;
pub use store::{Approval, Origin, State};

use crate::audit::AuditSink;

/// The approval workflow's shared state.
pub struct Approvals {
    config: ApprovalConfig,
    store: Mutex<store::Store>,
    /// Bumped on every state change; held exchanges wait on it.
    changed: watch::Sender<u64>,
    /// Set when the agent stops: held exchanges answer "pending" at once.
    stopping: watch::Sender<bool>,
    sink: Option<AuditSink>,
    notifier: notify::Notifier,
    /// Exchanges being held right now.
    held: std::sync::atomic::AtomicUsize,
    /// Masked answers held at the response stage, for the caller's retry.
    kept: std::sync::Mutex<response_hold::Kept>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
}

impl Approvals {
    /// Opens the journal (next to `audit_dir` unless configured) and reloads what is open.
    pub fn open(
        config: ApprovalConfig,
        audit_dir: &Path,
        sink: Option<AuditSink>,
    ) -> Result<Arc<Self>, ApprovalError> {
        let store = store::Store::open(
            &config.journal_path(audit_dir),
            store::Caps {
                overall: config.max_pending,
                per_principal: config.max_pending_per_principal,
            },
        )?;
        let notifier = notify::Notifier::start(&config.channels, sink.clone());
        Ok(Arc::new(Self {
            config,
            store: Mutex::new(store),
            changed: watch::channel(0).0,
            stopping: watch::channel(false).0,
            sink,
            notifier,
            held: std::sync::atomic::AtomicUsize::new(0),
            kept: std::sync::Mutex::default(),
        }))
    }

    pub fn config(&self) -> &ApprovalConfig {
        &self.config
    }

    /// Open approvals, oldest first, then recently closed ones.
    pub async fn list(&self) -> Vec<Approval> {
        self.store.lock().await.list()
    }

    pub async fn get(&self, id: &str) -> Option<Approval> {
        self.store.lock().await.get(id).cloned()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Held exchanges stop waiting and answer "pending" (the approval stays open in the
    /// journal for the retry after the restart).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Waits (at most `within`) until no exchange is held.
    pub async fn drained(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let mut changed = self.changed.subscribe();
        while self.held.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// Makes `rows` durable; `false` (logged) when the trail cannot take them.
    async fn record(&self, rows: Vec<crate::audit::AuditRecord>) -> bool {
        match &self.sink {
            Some(sink) => match sink.record(rows).await {
                Ok(()) => true,
                Err(err) => {
                    warn!(error = %err, "audit trail unavailable for an approval event");
                    false
                }
            },
            None => true,
        }
    }

    /// Expires what is due (a denial, audited), then again every second until the agent
    /// stops.
    pub fn spawn_expiry(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut stopping = this.stopping.subscribe();
            loop {
                tokio::select! {
                    _ = tick.tick() => this.expire_due().await,
                    _ = stopping.changed() => return,
                }
            }
        });
    }

    async fn expire_due(&self) {
        let mut store = self.store.lock().await;
        let now = store::now_us();
        let due = store.due(now);
        if due.is_empty() {
            return;
        }
        let mut rows = Vec::new();
        for mut approval in due {
            let was = approval.state;
            approval.state = State::Expired;
            if let Err(err) = store.save(approval.clone()) {
                warn!(error = %err, id = %approval.id, "cannot journal an expiry; retrying");
                continue;
            }
            info!(id = %approval.id, was = was.as_str(), "approval expired");
            rows.push(rows::event(
                &approval,
                "approval_expired",
                serde_json::json!({ "was": was.as_str() }),
            ));
        }
        drop(store);
        self.record(rows).await;
        self.bump();
    }
}
