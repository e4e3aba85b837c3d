//! The two S3 requests shipping needs: HEAD (is this exact file already there?) and a
//! signed PUT that carries the integrity checksum and, optionally, object-lock retention.
//!
//! `object_store` (the Arrow project's client) supplies the AWS credential chain and
//! SigV4 signing ([`AwsAuthorizer`]). Its `put` cannot send the object-lock headers
//! (`PutOptions` has no such attribute, and client default headers would go out
//! unsigned, which AWS rejects), so the PUT is built here, signed with object_store's
//! authorizer over every header it carries, and sent with reqwest (the same 0.12 client
//! object_store uses).

use std::{sync::Arc, time::Duration};

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
    #[error("S3 {method} {key}: {source}")]
    Transport {
        method: &'static str,
        key: String,
        source: reqwest::Error,
    },
    #[error("S3 {method} {key}: HTTP {status}: {body}")]
    Status {
        method: &'static str,
        key: String,
        status: u16,
        body: String,
    },
}

type Provider = Arc<dyn CredentialProvider<Credential = AwsCredential>>;

/// A bucket to upload into.
pub struct Bucket {
    base: String,
    region: String,
    credentials: Provider,
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
        if let Some(path) = &config.credentials_file {
            let file = CredentialsFile::read(path)?;
            builder = builder
                .with_access_key_id(file.access_key_id)
                .with_secret_access_key(file.secret_access_key);
            if let Some(token) = file.session_token {
                builder = builder.with_token(token);
            }
        }
        let store = builder
            .build()
            .map_err(|e| S3Error::Config(e.to_string()))?;
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
            credentials: store.credentials().clone(),
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
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| S3Error::Credentials(e.to_string()))?;
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
    fn read(path: &std::path::Path) -> Result<Self, S3Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| S3Error::Credentials(format!("{}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| S3Error::Credentials(format!("{}: {e}", path.display())))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
