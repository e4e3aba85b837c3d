//! Copies a fleet's trail out of a bucket (`s3://BUCKET/PREFIX`) into a local directory
//! with the same `host=…/dt=…/file` layout, so [`super::fleet::verify_dir`] checks exactly
//! what a query over the bucket would read. Credentials: the standard AWS environment
//! (`AWS_ACCESS_KEY_ID`, …) and chain.

use std::path::Path;

use object_store::{ObjectStore, aws::AmazonS3Builder, path::Path as ObjectPath};

use super::fleet::FleetError;

/// Largest object copied (S3's single-PUT limit; the shipper never writes larger ones).
const MAX_OBJECT: u64 = 5 << 30;

/// Downloads every `*.parquet` object under `url`'s prefix into `dest`; returns how many.
pub async fn download(
    url: &str,
    endpoint: Option<&str>,
    region: Option<&str>,
    dest: &Path,
) -> Result<usize, FleetError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| FleetError::S3(format!("{url}: expected s3://BUCKET/PREFIX")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(region) = region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    let store = builder.build().map_err(|e| FleetError::S3(e.to_string()))?;
    let prefix = prefix.trim_matches('/');
    let mut pending = vec![ObjectPath::from(prefix)];
    let mut count = 0;
    // host=… then dt=… then files: three levels, each listed with a delimiter.
    while let Some(dir) = pending.pop() {
        let listing = store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| FleetError::S3(format!("listing s3://{bucket}/{dir}: {e}")))?;
        pending.extend(listing.common_prefixes);
        for object in listing.objects {
            let key = object.location.as_ref();
            if !key.ends_with(".parquet") || object.size > MAX_OBJECT {
                continue;
            }
            let relative = key
                .strip_prefix(prefix)
                .unwrap_or(key)
                .trim_start_matches('/');
            // Keys come from the bucket: only plain relative paths are written.
            if relative
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
            {
                continue;
            }
            let failed =
                |e: object_store::Error| FleetError::S3(format!("s3://{bucket}/{key}: {e}"));
            let bytes = store
                .get(&object.location)
                .await
                .map_err(failed)?
                .bytes()
                .await
                .map_err(failed)?;
            let path = dest.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| FleetError::Io {
                    path: parent.to_owned(),
                    source,
                })?;
            }
            std::fs::write(&path, &bytes).map_err(|source| FleetError::Io {
                path: path.clone(),
                source,
            })?;
            count += 1;
        }
    }
    Ok(count)
}
