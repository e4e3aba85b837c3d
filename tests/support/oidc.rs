//! A real OpenID provider (npm `oidc-provider`, tests/oidc/provider.mjs) on a loopback
//! port, killed by PID on drop, and tests/oidc/mint.mjs for hand-made tokens.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
};

use super::{WAIT, free_port, workspace};

pub const CLIENT_ID: &str = "gateway-test";
pub const CLIENT_SECRET: &str = "gateway-test-secret";

/// Node 22 from tests/mcp/node's `node` package when installed, else the system's.
pub fn node() -> PathBuf {
    let pinned = workspace().join("tests/mcp/node/node_modules/.bin/node");
    if pinned.exists() {
        pinned
    } else {
        PathBuf::from("node")
    }
}

fn require_packages() {
    let package = workspace().join("tests/mcp/node/node_modules/oidc-provider");
    assert!(
        package.exists(),
        "{} is missing: run `npm ci` in tests/mcp/node (or `cargo xtask setup`)",
        package.display()
    );
}

pub struct OidcProvider {
    child: Option<Child>,
    port: u16,
    key_file: PathBuf,
    rotations: usize,
}

impl OidcProvider {
    /// Starts the provider with the signing keys in `key_file` (created if missing).
    pub fn start(key_file: &Path) -> Self {
        require_packages();
        let mut provider = Self {
            child: None,
            port: free_port("127.0.0.1"),
            key_file: key_file.to_owned(),
            rotations: 0,
        };
        provider.spawn();
        provider
    }

    fn spawn(&mut self) {
        let mut child = Command::new(node())
            .arg(workspace().join("tests/oidc/provider.mjs"))
            .arg(self.port.to_string())
            .arg(&self.key_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node tests/oidc/provider.mjs");
        let stdout = child.stdout.take().expect("provider stdout");
        // Store the child first: if the wait below panics, Drop still kills it.
        self.child = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("READY ") {
                    let _ = tx.send(issuer.to_owned());
                }
            }
        });
        let issuer = rx.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!(
                "OpenID provider on port {} not READY within {WAIT:?} (see its stderr above)",
                self.port
            )
        });
        assert_eq!(issuer, self.issuer());
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The key id of the provider's key for `alg` (RS256 or ES256).
    pub fn kid(&self, alg: &str) -> String {
        let jwks: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&self.key_file).expect("read key file"))
                .expect("key file is JSON");
        jwks["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| k["alg"] == alg)
            .and_then(|k| k["kid"].as_str())
            .unwrap_or_else(|| panic!("no {alg} key in {}", self.key_file.display()))
            .to_owned()
    }

    /// A real client_credentials grant: a JWT access token for `audience` with `scope`.
    pub fn token(&self, audience: &str, scope: &str) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-u"])
            .arg(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
            .args(["-d", "grant_type=client_credentials", "--data-urlencode"])
            .arg(format!("resource={audience}"))
            .arg("--data-urlencode")
            .arg(format!("scope={scope}"))
            .arg(format!("{}/token", self.issuer()))
            .stdin(Stdio::null())
            .output()
            .expect("run curl");
        let body = String::from_utf8_lossy(&out.stdout);
        let response: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| {
            panic!(
                "token endpoint answered {body:?} ({})",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {response}"))
            .to_owned()
    }

    /// A token with exactly this header and these claims, signed by tests/oidc/mint.mjs
    /// with this provider's keys (see there for `none`, `HS*` and `"kid": null`).
    pub fn mint(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
        mint_with(&self.key_file, header, claims)
    }

    /// Stops the provider and starts it on the same port with a fresh key file: a key
    /// rotation as relying parties see it.
    pub fn restart_with_new_keys(&mut self) {
        self.stop();
        self.rotations += 1;
        let name = format!(
            "{}.rotated-{}",
            self.key_file
                .file_name()
                .expect("key file name")
                .to_string_lossy(),
            self.rotations
        );
        self.key_file = self.key_file.with_file_name(name);
        self.spawn();
    }

    /// Kills the provider (an IdP outage). Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Like [`OidcProvider::mint`] with any key file (a new file: keys nobody trusts).
pub fn mint_with(key_file: &Path, header: serde_json::Value, claims: serde_json::Value) -> String {
    mint_many(key_file, header, claims, None)
        .pop()
        .expect("mint.mjs printed a token")
}

/// `count` distinct tokens (each its own `jti`), or one with `None`.
pub fn mint_many(
    key_file: &Path,
    header: serde_json::Value,
    claims: serde_json::Value,
    count: Option<usize>,
) -> Vec<String> {
    require_packages();
    let out = Command::new(node())
        .arg(workspace().join("tests/oidc/mint.mjs"))
        .arg(key_file)
        .arg(header.to_string())
        .arg(claims.to_string())
        .args(count.map(|n| n.to_string()))
        .stdin(Stdio::null())
        .output()
        .expect("run node tests/oidc/mint.mjs");
    assert!(
        out.status.success(),
        "mint.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("tokens are UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}
