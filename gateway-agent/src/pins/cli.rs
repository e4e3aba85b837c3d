//! What `gateway-agent pins list|accept|export` do with the state file. The running agent
//! picks up an accepted pin on its next message (it re-reads the file when it changes).

use std::path::Path;

use super::store::{self, State, StoreError};

/// One line per pinned or seen tool: server, tool, status, source, digests.
pub fn list(file: &Path, json: bool) -> Result<String, StoreError> {
    let state = State::read(file)?;
    let mut rows = Vec::new();
    for (server, tools) in &state.servers {
        for (tool, st) in tools {
            let status = match (&st.pinned, &st.seen) {
                (None, Some(_)) => "added",
                (Some(_), Some(_)) => "changed",
                (Some(_), None) => "pinned",
                (None, None) => "unknown",
            };
            let markers = st
                .current()
                .map(|r| super::markers::scan(&r.definition))
                .unwrap_or_default();
            rows.push(serde_json::json!({
                "server": server,
                "tool": tool,
                "status": status,
                "source": st.source,
                "pinned_sha256": st.pinned.as_ref().map(|r| &r.sha256),
                "seen_sha256": st.seen.as_ref().map(|r| &r.sha256),
                "diff": match (&st.pinned, &st.seen) {
                    (Some(p), Some(s)) => serde_json::Value::Object(super::fingerprint::diff(&p.definition, &s.definition)),
                    _ => serde_json::Value::Null,
                },
                "markers": markers,
            }));
        }
    }
    if json {
        return Ok(serde_json::Value::Array(rows).to_string() + "\n");
    }
    let mut out = String::from("SERVER\tTOOL\tSTATUS\tSOURCE\tPINNED\tSEEN\tMARKERS\n");
    for row in &rows {
        let short = |key: &str| {
            row[key]
                .as_str()
                .map_or("-".to_owned(), |s| s.chars().take(12).collect())
        };
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            row["server"].as_str().unwrap_or(""),
            row["tool"].as_str().unwrap_or(""),
            row["status"].as_str().unwrap_or(""),
            row["source"].as_str().unwrap_or("-"),
            short("pinned_sha256"),
            short("seen_sha256"),
            row["markers"].as_array().map_or(0, Vec::len),
        ));
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unknown(String),
}

/// Re-pins `tool` of `server` to the definition the agent last saw; returns its digest.
pub fn accept(file: &Path, server: &str, tool: &str) -> Result<String, AcceptError> {
    let _lock = store::lock(file)?;
    let mut state = State::read(file)?;
    let pinned = state
        .accept(server, tool, super::now_us())
        .map_err(AcceptError::Unknown)?;
    state.write(file)?;
    Ok(pinned.sha256)
}

/// The pinned set (of `server`, or all) as a `policies/pins/*.toml` file.
pub fn export(file: &Path, server: Option<&str>) -> Result<String, StoreError> {
    Ok(store::export(&State::read(file)?, server))
}
