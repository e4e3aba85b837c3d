//! Announcing new approvals to the people who decide, through the channels they use.
//!
//! - `kind = "webhook"`: the approval as JSON, POSTed with `X-Gateway-Timestamp` (Unix
//!   seconds) and `X-Gateway-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`,
//!   so a receiver can check it came from this agent and refuse replays of old bodies.
//! - `kind = "slack"`: a Slack incoming-webhook message (`{"text": …}`) saying who asked
//!   for what, where, the masked arguments and the command that decides.
//!
//! A channel never holds anything up: each has its own worker behind a bounded queue
//! (a full queue drops the notification, logged), and each POST is retried with backoff a
//! bounded number of times. A failure is logged and audited (`approval_notify_failed`); the
//! approval stays open and listed whatever the channels do. Delivery is audited as
//! `approval_notified`.

use std::{path::PathBuf, time::Duration};

use hmac::{KeyInit as _, Mac as _};
use openidconnect::reqwest;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{rows, store::Approval};
use crate::audit::AuditSink;

/// Notifications waiting per channel; beyond this new ones are dropped (and logged).
const QUEUE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Webhook,
    Slack,
}

/// `[[approval.channel]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub kind: ChannelKind,
    /// http(s) URL to POST to.
    pub url: String,
    /// A file holding the HMAC key (webhook: required; slack: optional).
    pub secret_file: Option<PathBuf>,
    /// Per attempt. Default 5000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts before giving up. Default 5 (backoff 0.5 s, 1 s, 2 s, 4 s).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_timeout_ms() -> u64 {
    5_000
}

fn default_attempts() -> u32 {
    5
}

impl ChannelConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!("{}: url must be http(s)", self.url));
        }
        if self.kind == ChannelKind::Webhook && self.secret_file.is_none() {
            return Err(format!(
                "{}: a webhook needs secret_file (its HMAC key)",
                self.url
            ));
        }
        if self.max_attempts == 0 || self.max_attempts > 20 {
            return Err(format!("{}: max_attempts must be 1..=20", self.url));
        }
        Ok(())
    }
}

/// The channels' queues.
pub struct Notifier {
    queues: Vec<(String, mpsc::Sender<Approval>)>,
}

impl Notifier {
    /// Starts one worker per channel (on the current runtime; none outside one).
    pub fn start(channels: &[ChannelConfig], sink: Option<AuditSink>) -> Self {
        let mut queues = Vec::new();
        if tokio::runtime::Handle::try_current().is_err() {
            return Self { queues };
        }
        for config in channels {
            let secret = match &config.secret_file {
                Some(path) => match std::fs::read(path) {
                    Ok(key) => Some(trim(key)),
                    Err(err) => {
                        warn!(url = %config.url, error = %err, "cannot read the channel's secret_file; channel disabled");
                        continue;
                    }
                },
                None => None,
            };
            let client = match reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_millis(config.timeout_ms))
                .build()
            {
                Ok(client) => client,
                Err(err) => {
                    warn!(url = %config.url, error = %err, "cannot build the channel's HTTP client; channel disabled");
                    continue;
                }
            };
            let (send, receive) = mpsc::channel(QUEUE);
            let channel = Channel {
                config: config.clone(),
                secret,
                client,
                sink: sink.clone(),
            };
            tokio::spawn(channel.run(receive));
            queues.push((config.url.clone(), send));
        }
        Self { queues }
    }

    /// Queues `approval` on every channel; never waits.
    pub fn announce(&self, approval: &Approval) {
        for (url, queue) in &self.queues {
            if queue.try_send(approval.clone()).is_err() {
                warn!(%url, id = %approval.id, "notification queue full; this approval is not announced on the channel (it is still listed)");
            }
        }
    }
}

/// Secret files usually end with a newline that is not part of the key.
fn trim(mut key: Vec<u8>) -> Vec<u8> {
    while key.last().is_some_and(|b| b.is_ascii_whitespace()) {
        key.pop();
    }
    key
}

struct Channel {
    config: ChannelConfig,
    secret: Option<Vec<u8>>,
    client: reqwest::Client,
    sink: Option<AuditSink>,
}

impl Channel {
    async fn run(self, mut queue: mpsc::Receiver<Approval>) {
        while let Some(approval) = queue.recv().await {
            let body = match self.config.kind {
                ChannelKind::Webhook => webhook_body(&approval),
                ChannelKind::Slack => slack_body(&approval),
            };
            let outcome = self.deliver(body.to_string()).await;
            let kind = format!("{:?}", self.config.kind).to_lowercase();
            let row = match &outcome {
                Ok(attempts) => {
                    info!(id = %approval.id, url = %self.config.url, attempts, "approval notified");
                    rows::event(
                        &approval,
                        "approval_notified",
                        json!({ "channel": kind, "url": self.config.url, "attempts": attempts }),
                    )
                }
                Err(problem) => {
                    warn!(id = %approval.id, url = %self.config.url, %problem, "approval notification failed; the approval stays open");
                    rows::event(
                        &approval,
                        "approval_notify_failed",
                        json!({ "channel": kind, "url": self.config.url, "error": problem }),
                    )
                }
            };
            if let Some(sink) = &self.sink
                && let Err(err) = sink.record(vec![row]).await
            {
                warn!(error = %err, "audit trail unavailable for a notification row");
            }
        }
    }

    /// POSTs `body`, retrying with backoff; the number of attempts on success.
    async fn deliver(&self, body: String) -> Result<u32, String> {
        let mut backoff = Duration::from_millis(500);
        let mut last = String::new();
        for attempt in 1..=self.config.max_attempts {
            let mut request = self
                .client
                .post(&self.config.url)
                .header("content-type", "application/json");
            if let Some(secret) = &self.secret {
                let timestamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                request = request
                    .header("x-gateway-timestamp", timestamp.to_string())
                    .header("x-gateway-signature", signature(secret, timestamp, &body));
            }
            match request.body(body.clone()).send().await {
                Ok(response) if response.status().is_success() => return Ok(attempt),
                Ok(response) => last = format!("HTTP {}", response.status()),
                Err(err) => last = crate::identity::error_chain(&err),
            }
            if attempt < self.config.max_attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        Err(format!(
            "{last} (after {} attempts)",
            self.config.max_attempts
        ))
    }
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &[u8], timestamp: u64, body: &str) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this cannot happen.
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn decide_commands(approval: &Approval) -> (String, String) {
    (
        format!("gateway-agent approvals approve {}", approval.id),
        format!(
            "gateway-agent approvals deny {} --reason \"…\"",
            approval.id
        ),
    )
}

pub fn webhook_body(approval: &Approval) -> Value {
    let (approve, deny) = decide_commands(approval);
    json!({
        "type": "approval.requested",
        "approval": approval,
        "decide": { "approve": approve, "deny": deny },
    })
}

pub fn slack_body(approval: &Approval) -> Value {
    let (approve, deny) = decide_commands(approval);
    let r = &approval.requester;
    let who = match (&r.email, &r.sub, &r.user) {
        (Some(email), _, _) => email.clone(),
        (None, Some(sub), _) => sub.clone(),
        (None, None, Some(user)) => user.clone(),
        _ => r
            .uid
            .map_or("an unidentified caller".into(), |u| format!("uid {u}")),
    };
    let process = match (&r.comm, r.uid) {
        (Some(comm), Some(uid)) => format!(" ({comm}, uid {uid})"),
        _ => String::new(),
    };
    let what = match &approval.key.tool {
        Some(tool) => format!("`{}` `{tool}`", approval.key.method),
        None => format!("`{}`", approval.key.method),
    };
    let server = match &approval.origin.server_name {
        Some(name) => format!("{name} ({})", approval.key.server_addr),
        None => approval.key.server_addr.clone(),
    };
    let text = format!(
        "*MCP approval needed* `{id}`\n*Who:* {who}{process}\n*What:* {what} on {server}\n*Why:* rule `{rule}`: {reason}\n*Arguments (masked):*\n```{args}```\n*Decide:* `{approve}` or `{deny}`",
        id = approval.id,
        rule = approval.key.rule,
        reason = approval.reason,
        args = approval.arguments.replace("```", "'''"),
    );
    json!({ "text": text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231-style check against an independent computation (python hmac).
        let sig = signature(b"key", 1700000000, "{}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert_ne!(sig, signature(b"key", 1700000001, "{}"));
        assert_ne!(sig, signature(b"other", 1700000000, "{}"));
        // HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog") (Wikipedia).
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
