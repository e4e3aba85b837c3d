//! The pinned tool definitions on disk: one JSON state file the agent and the `pins`
//! command share (trust-on-first-use pins, accepted re-pins, and the latest definition a
//! server showed when it differs), and the shipped pinned sets `policies/pins/*.toml`
//! that `gateway-agent pins export` writes.
//!
//! The agent and the command both read-modify-write the state file under an exclusive
//! lock on `<file>.lock` and replace it by rename, so neither loses the other's update
//! and a reader never sees half a file.

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fingerprint::{Fingerprint, digest};

/// The state file over this size is refused (a corrupted or hostile file must not be
/// read whole into memory).
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where a pin came from: how much review it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The first definition the agent saw (trust on first use): nobody reviewed it.
    Tofu,
    /// Re-pinned by `gateway-agent pins accept` after review.
    Accepted,
    /// From a shipped pinned set (`policies/pins/*.toml`).
    Shipped,
}

impl Source {
    /// Whether a person vouched for this definition (markers in it are then accepted).
    pub fn reviewed(self) -> bool {
        self != Source::Tofu
    }
}

/// One definition of a tool, as pinned or as seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub sha256: String,
    /// The pinned members only (`fingerprint::PINNED_MEMBERS`).
    pub definition: Value,
    /// When it was pinned or first seen, microseconds since the epoch.
    pub at_us: i64,
}

impl Record {
    pub fn from_fingerprint(fp: &Fingerprint, at_us: i64) -> Self {
        Self {
            sha256: fp.sha256.clone(),
            definition: fp.definition.clone(),
            at_us,
        }
    }
}

/// What is known of one tool of one server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolState {
    pub pinned: Option<Record>,
    pub source: Option<Source>,
    /// The latest definition seen, when it differs from `pinned` (or nothing is pinned
    /// although the server has pins: an added tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Record>,
}

impl ToolState {
    /// The definition the server shows now, as far as the agent knows.
    pub fn current(&self) -> Option<&Record> {
        self.seen.as_ref().or(self.pinned.as_ref())
    }
}

/// The whole state file: server key (configured name, else `ip:port`) → tool → state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub servers: BTreeMap<String, BTreeMap<String, ToolState>>,
    /// Servers whose first, paginated listing is still being read (when it began, µs):
    /// the tools of its later pages are pinned on first use too, not taken for added.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub first_listing: BTreeMap<String, i64>,
}

impl State {
    /// Reads `path`; a missing file is an empty state.
    pub fn read(path: &Path) -> Result<Self, StoreError> {
        let text = match fs::metadata(path) {
            Ok(meta) if meta.len() > MAX_STATE_BYTES => {
                return Err(StoreError::Invalid {
                    path: path.to_owned(),
                    problem: format!("larger than {MAX_STATE_BYTES} bytes"),
                });
            }
            Ok(_) => fs::read_to_string(path).map_err(io(path))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(err) => return Err(io(path)(err)),
        };
        serde_json::from_str(&text).map_err(|err| StoreError::Invalid {
            path: path.to_owned(),
            problem: err.to_string(),
        })
    }

    /// Replaces `path` atomically (temporary file, fsync, rename).
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|err| StoreError::Invalid {
            path: path.to_owned(),
            problem: err.to_string(),
        })?;
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(text.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, path).map_err(io(path))
    }

    /// Re-pins `tool` of `server` to the definition last seen (or confirms the pinned one
    /// as reviewed). Errors when nothing is known of it.
    pub fn accept(&mut self, server: &str, tool: &str, at_us: i64) -> Result<Record, String> {
        let state = self
            .servers
            .get_mut(server)
            .and_then(|tools| tools.get_mut(tool))
            .ok_or_else(|| format!("no tool {tool:?} of server {server:?} has been seen"))?;
        let record = state
            .seen
            .take()
            .or_else(|| state.pinned.clone())
            .ok_or_else(|| format!("tool {tool:?} of server {server:?} has no definition"))?;
        let pinned = Record { at_us, ..record };
        state.pinned = Some(pinned.clone());
        state.source = Some(Source::Accepted);
        Ok(pinned)
    }
}

/// An exclusive lock on `<file>.lock`, released on drop.
pub struct Locked {
    _file: File,
}

pub fn lock(path: &Path) -> Result<Locked, StoreError> {
    let lock_path = path.with_extension("json.lock");
    if let Some(dir) = lock_path.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    file.lock().map_err(io(&lock_path))?;
    Ok(Locked { _file: file })
}

/// One entry of a shipped pinned set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippedPin {
    pub server: String,
    pub tool: String,
    pub sha256: String,
    /// The pinned members as canonical JSON, so a diff can show what changed.
    pub definition: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippedFile {
    #[serde(default, rename = "pin")]
    pub pins: Vec<ShippedPin>,
}

/// Every `*.toml` in `dir`, in name order: server → tool → record. A pin whose digest
/// does not match its definition is an error (an edited file must be re-exported).
pub fn read_shipped(dir: &Path) -> Result<BTreeMap<String, BTreeMap<String, Record>>, StoreError> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    let mut out: BTreeMap<String, BTreeMap<String, Record>> = BTreeMap::new();
    for path in files {
        let text = fs::read_to_string(&path).map_err(io(&path))?;
        let invalid = |problem: String| StoreError::Invalid {
            path: path.clone(),
            problem,
        };
        let file: ShippedFile = toml::from_str(&text).map_err(|err| invalid(err.to_string()))?;
        for pin in file.pins {
            let definition: Value = serde_json::from_str(&pin.definition).map_err(|err| {
                invalid(format!("{}/{}: definition: {err}", pin.server, pin.tool))
            })?;
            if digest(&definition) != pin.sha256 {
                return Err(invalid(format!(
                    "{}/{}: sha256 does not match the definition",
                    pin.server, pin.tool
                )));
            }
            out.entry(pin.server).or_default().insert(
                pin.tool,
                Record {
                    sha256: pin.sha256,
                    definition,
                    at_us: 0,
                },
            );
        }
    }
    Ok(out)
}

/// The pinned set of `state` (every pinned tool, or `server`'s only) as a shipped file.
pub fn export(state: &State, server: Option<&str>) -> String {
    let pins = state
        .servers
        .iter()
        .filter(|(name, _)| server.is_none_or(|s| s == name.as_str()))
        .flat_map(|(name, tools)| {
            tools.iter().filter_map(move |(tool, st)| {
                let pinned = st.pinned.as_ref()?;
                Some(ShippedPin {
                    server: name.clone(),
                    tool: tool.clone(),
                    sha256: pinned.sha256.clone(),
                    definition: crate::approval::binding::canonical(&pinned.definition),
                })
            })
        })
        .collect();
    let body = toml::to_string(&ShippedFile { pins }).unwrap_or_default();
    format!(
        "# Pinned MCP tool definitions, written by `gateway-agent pins export`.\n\
         # A tool whose definition differs from its pin here is handled per `on_tool_change`.\n\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn export_then_read_shipped_round_trips_and_edits_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        let fp =
            Fingerprint::of(&json!({"name": "echo", "description": "Echoes \"x\"\n"})).unwrap();
        let mut state = State::default();
        state.servers.entry("srv".into()).or_default().insert(
            "echo".into(),
            ToolState {
                pinned: Some(Record::from_fingerprint(&fp, 1)),
                source: Some(Source::Tofu),
                seen: None,
            },
        );
        let text = export(&state, None);
        fs::write(dir.path().join("srv.toml"), &text).unwrap();
        let shipped = read_shipped(dir.path()).unwrap();
        assert_eq!(shipped["srv"]["echo"].sha256, fp.sha256);
        assert_eq!(shipped["srv"]["echo"].definition, fp.definition);

        fs::write(
            dir.path().join("srv.toml"),
            text.replace("Echoes", "Exfiltrates"),
        )
        .unwrap();
        let err = read_shipped(dir.path()).unwrap_err().to_string();
        assert!(err.contains("sha256 does not match"), "{err}");
    }

    #[test]
    fn accept_pins_what_was_seen() {
        let old = Fingerprint::of(&json!({"name": "t", "description": "a"})).unwrap();
        let new = Fingerprint::of(&json!({"name": "t", "description": "b"})).unwrap();
        let mut state = State::default();
        state.servers.entry("s".into()).or_default().insert(
            "t".into(),
            ToolState {
                pinned: Some(Record::from_fingerprint(&old, 1)),
                source: Some(Source::Tofu),
                seen: Some(Record::from_fingerprint(&new, 2)),
            },
        );
        let pinned = state.accept("s", "t", 3).unwrap();
        assert_eq!(pinned.sha256, new.sha256);
        let st = &state.servers["s"]["t"];
        assert_eq!(st.source, Some(Source::Accepted));
        assert!(st.seen.is_none());
        assert!(state.accept("s", "other", 4).is_err());
    }

    #[test]
    fn state_file_round_trips_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins.json");
        assert_eq!(State::read(&path).unwrap(), State::default());
        let mut state = State::default();
        state
            .servers
            .entry("s".into())
            .or_default()
            .insert("t".into(), ToolState::default());
        let _lock = lock(&path).unwrap();
        state.write(&path).unwrap();
        assert_eq!(State::read(&path).unwrap(), state);
    }
}
