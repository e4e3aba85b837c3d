//! The two S3 requests shipping needs: HEAD (is this exact file already there?) and a
//! signed PUT that carries the integrity checksum and, optionally, object-lock retention.
//!
//! `object_store` (the Arrow project's client) supplies the AWS credential chain and
//! SigV4 signing ([`AwsAuthorizer`]). Its `put` cannot send the object-lock headers
//! (`PutOptions` has no such attribute, and client default headers would go out
//! unsigned, which AWS rejects), so the PUT is built here, signed with object_store's
//! authorizer over every header it carries, and sent with reqwest (the same 0.12 client
//! object_store uses).
//!
//! A refusal is named by its S3 error code (see [`Refusal`]), so the log says what to fix
//! (credentials, bucket, clock) rather than only an HTTP status.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use base64::Engine as _;
use bytes::Bytes;
use object_store::{
    CredentialProvider,
    aws::{AmazonS3Builder, AwsAuthorizer, AwsCredential},
    client::HttpRequestBody,
};
use openidconnect::reqwest;
use sha2::{Digest, Sha256};

use super::ShipConfig;

/// User metadata key (`x-amz-meta-…`) holding the file's SHA-256, hex.
pub const META_SHA256: &str = "gateway-sha256";

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("S3 configuration: {0}")]
    Config(String),
    #[error("S3 credentials: {0}")]
    Credentials(String),
    #[error("S3 {method} {key}: {}", transport_detail(.source))]
    Transport {
        method: &'static str,
        key: String,
        source: reqwest::Error,
    },
    #[error("S3 {method} {key}: HTTP {status}{}: {}", code_suffix(.code), detail(*.status, .code, .body))]
    Status {
        method: &'static str,
        key: String,
        status: u16,
        /// The error document's `<Code>` (none for a HEAD, which has no body).
        code: Option<String>,
        /// The error document, cut to [`BODY_LIMIT`] characters.
        body: String,
    },
}

/// reqwest's own message names only the URL; the cause (refused, timed out, reset) is
/// further down its source chain.
fn transport_detail(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "no answer within timeout_secs (a slow or stalled endpoint)"
    } else if error.is_connect() {
        "cannot connect (endpoint down or unreachable)"
    } else {
        "the connection failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {}", causes.join(": "))
    }
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
}

/// The hint, and the service's own words when the code is not one we explain.
fn detail(status: u16, code: &Option<String>, body: &str) -> String {
    match classify(status, code.as_deref()) {
        Refusal::Other if !body.is_empty() => format!("{}: {body}", Refusal::Other.hint()),
        refusal => refusal.hint().to_owned(),
    }
}

/// What S3's status and error code mean.
fn classify(status: u16, code: Option<&str>) -> Refusal {
    match (code, status) {
        (
            Some(
                "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "TokenRefreshRequired",
            ),
            _,
        ) => Refusal::Credentials,
        (Some("RequestTimeTooSkewed" | "RequestExpired"), _) => Refusal::ClockSkew,
        (Some("NoSuchBucket"), _) => Refusal::NoBucket,
        (Some("AccessDenied" | "AllAccessDisabled"), _) => Refusal::AccessDenied,
        (Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout"), _) => {
            Refusal::Service
        }
        (_, 500..=599 | 429) => Refusal::Service,
        _ => Refusal::Other,
    }
}

/// What a failed S3 request says the operator must fix: one word for the log's `kind`
/// field and alerting, and a sentence for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown key id, bad secret or expired session token.
    Credentials,
    /// The credentials are valid but may not write here.
    AccessDenied,
    /// The bucket does not exist (or not in this region/endpoint).
    NoBucket,
    /// The request's signing time is too far from the service's clock.
    ClockSkew,
    /// 5xx or throttling: the service's problem, retried.
    Service,
    /// Anything else the service refused.
    Other,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credentials => "credentials_refused",
            Self::AccessDenied => "access_denied",
            Self::NoBucket => "no_such_bucket",
            Self::ClockSkew => "clock_skew",
            Self::Service => "service_unavailable",
            Self::Other => "refused",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Self::Credentials => {
                "the service does not accept these credentials (unknown key id, wrong \
                 secret or expired session token); fix credentials_file (re-read when it \
                 changes) or the AWS environment"
            }
            Self::AccessDenied => {
                "the credentials may not write here; grant s3:PutObject (and \
                 s3:PutObjectRetention with retain_days) on the prefix"
            }
            Self::NoBucket => "the bucket does not exist at this endpoint/region; create it",
            Self::ClockSkew => {
                "the service refused this host's clock (more than 15 minutes off); fix time \
                 sync (chrony, systemd-timesyncd)"
            }
            Self::Service => "the service failed or throttled the request; retried with backoff",
            Self::Other => "the service refused the request",
        }
    }
}

impl S3Error {
    /// The one-word class of this failure for the log's `kind` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Credentials(_) => "credentials_unreadable",
            Self::Transport { source, .. } if source.is_timeout() => "timeout",
            Self::Transport { .. } => "unreachable",
            Self::Status { .. } => self.refusal().as_str(),
        }
    }

    /// What the service's answer means (only for [`S3Error::Status`]).
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::Status { status, code, .. } => classify(*status, code.as_deref()),
            _ => Refusal::Other,
        }
    }
}

/// The `<Code>` of an S3 XML error document.
pub(crate) fn error_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    let code = body[start..start + len].trim();
    (!code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| code.to_owned())
}

type Provider = Arc<dyn CredentialProvider<Credential = AwsCredential>>;

/// Where signing credentials come from.
enum Credentials {
    /// object_store's AWS chain (environment, web identity, instance metadata).
    Chain(Provider),
    /// A TOML file, re-read whenever its modification time changes, so rotating keys or
    /// fixing wrong ones needs no restart.
    File {
        path: PathBuf,
        loaded: Mutex<Option<(SystemTime, Arc<AwsCredential>)>>,
    },
}

impl Credentials {
    async fn get(&self) -> Result<Arc<AwsCredential>, S3Error> {
        match self {
            Self::Chain(provider) => provider
                .get_credential()
                .await
                .map_err(|e| S3Error::Credentials(e.to_string())),
            Self::File { path, loaded } => {
                let modified = std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .map_err(|e| S3Error::Credentials(format!("{}: {e}", path.display())))?;
                let mut loaded = loaded.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((when, credential)) = loaded.as_ref()
                    && *when == modified
                {
                    return Ok(credential.clone());
                }
                let file = CredentialsFile::read(path)?;
                let credential = Arc::new(AwsCredential {
                    key_id: file.access_key_id,
                    secret_key: file.secret_access_key,
                    token: file.session_token,
                });
                *loaded = Some((modified, credential.clone()));
                Ok(credential)
            }
        }
    }
}

/// A bucket to upload into.
pub struct Bucket {
    base: String,
    region: String,
    credentials: Credentials,
    http: reqwest::Client,
}

/// Longest error body kept for a log line.
const BODY_LIMIT: usize = 512;

impl Bucket {
    pub fn new(config: &ShipConfig) -> Result<Self, S3Error> {
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&region);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let credentials_file = config.credentials_path().map_err(S3Error::Credentials)?;
        if let Some(path) = &credentials_file {
            // Checked now so that a missing or malformed file stops the start, not the
            // first upload; object_store still wants some key to build.
            let file = CredentialsFile::read(path)?;
            builder = builder
                .with_access_key_id(file.access_key_id)
                .with_secret_access_key(file.secret_access_key);
        }
        let store = builder
            .build()
            .map_err(|e| S3Error::Config(e.to_string()))?;
        let credentials = match credentials_file {
            Some(path) => Credentials::File {
                path,
                loaded: Mutex::new(None),
            },
            None => Credentials::Chain(store.credentials().clone()),
        };
        let base = match &config.endpoint {
            Some(endpoint) => format!("{}/{}", endpoint.trim_end_matches('/'), config.bucket),
            None => format!("https://{}.s3.{region}.amazonaws.com", config.bucket),
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .build()
            .map_err(|e| S3Error::Config(e.to_string()))?;
        Ok(Self {
            base,
            region,
            credentials,
            http,
        })
    }

    fn url(&self, key: &str) -> String {
        // '=' percent-encoded as SigV4's canonical URI has it, so both sides agree.
        format!("{}/{}", self.base, key.replace('=', "%3D"))
    }

    async fn signed(
        &self,
        method: http::Method,
        key: &str,
        headers: http::HeaderMap,
        payload_sha256: &[u8],
    ) -> Result<http::HeaderMap, S3Error> {
        let credential = self.credentials.get().await?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(self.url(key))
            .body(HttpRequestBody::empty())
            .map_err(|e| S3Error::Config(e.to_string()))?;
        *request.headers_mut() = headers;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .authorize(&mut request, Some(payload_sha256));
        Ok(request.headers().clone())
    }

    /// The `gateway-sha256` metadata of `key`, `None` when there is no such object. A
    /// 403 also counts as none: S3 answers 403 for a missing object to a principal without
    /// `s3:ListBucket`, which a put-only shipping role need not have (the PUT then says
    /// whether the credentials are really refused).
    pub async fn head_sha256(&self, key: &str) -> Result<Option<String>, S3Error> {
        let empty = Sha256::digest(b"");
        let headers = self
            .signed(http::Method::HEAD, key, http::HeaderMap::new(), &empty)
            .await?;
        let response = self
            .http
            .head(self.url(key))
            .headers(headers)
            .send()
            .await
            .map_err(|source| S3Error::Transport {
                method: "HEAD",
                key: key.to_owned(),
                source,
            })?;
        match response.status().as_u16() {
            403 | 404 => Ok(None),
            200 => Ok(Some(
                response
                    .headers()
                    .get(format!("x-amz-meta-{META_SHA256}"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
            )),
            status => Err(S3Error::Status {
                method: "HEAD",
                key: key.to_owned(),
                status,
                code: None,
                body: String::new(),
            }),
        }
    }

    /// Uploads `body` under `key` with its SHA-256 as `x-amz-checksum-sha256` (the
    /// service rejects a body that does not match) and as metadata, and with object-lock
    /// retention until `retain_until` (RFC 3339) in `mode` when given.
    pub async fn put(
        &self,
        key: &str,
        body: Bytes,
        sha256: &[u8; 32],
        retain: Option<(&str, String)>,
    ) -> Result<(), S3Error> {
        let mut headers = http::HeaderMap::new();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        set(
            "x-amz-checksum-sha256",
            base64::engine::general_purpose::STANDARD.encode(sha256),
        );
        set("x-amz-sdk-checksum-algorithm", "SHA256".into());
        set("x-amz-meta-gateway-sha256", hex(sha256));
        set("content-type", "application/vnd.apache.parquet".into());
        if let Some((mode, until)) = retain {
            set("x-amz-object-lock-mode", mode.to_owned());
            set("x-amz-object-lock-retain-until-date", until);
        }
        let headers = self.signed(http::Method::PUT, key, headers, sha256).await?;
        let response = self
            .http
            .put(self.url(key))
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|source| S3Error::Transport {
                method: "PUT",
                key: key.to_owned(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(S3Error::Status {
            method: "PUT",
            key: key.to_owned(),
            status: status.as_u16(),
            code: error_code(&body),
            body: body.chars().take(BODY_LIMIT).collect(),
        })
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl CredentialsFile {
    fn read(path: &Path) -> Result<Self, S3Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| S3Error::Credentials(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| S3Error::Credentials(format!("{}: {e}", path.display())))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
