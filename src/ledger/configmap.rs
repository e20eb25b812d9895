//! A ledger in ConfigMaps in the exporter's own namespace: the default in a cluster.
//!
//! The head ConfigMap `<name>` holds a manifest (format, generation, shard count, checksum) and,
//! while the compressed ledger is small, the ledger itself. A larger ledger is split over
//! `<name>-<generation>-<i>` shards written *before* the head is switched to them, so a crash at
//! any point leaves the head pointing at a complete ledger. Writes use the head's
//! `resourceVersion`: on a conflict the other writer's ledger is read and merged, then the write
//! is retried.

use std::io::{Read, Write};
use std::sync::Mutex;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use ring::digest;

use super::{FORMAT_VERSION, Ledger, LedgerError, Loaded, decode, encode};

/// Largest compressed ledger kept inline in the head ConfigMap, and the size of each shard;
/// well under the API server's 1 MiB limit on a ConfigMap.
pub const SHARD_BYTES: usize = 768 * 1024;
/// Largest ledger accepted after decompression, so a damaged or hostile ConfigMap cannot
/// exhaust memory.
pub const MAX_LEDGER_BYTES: u64 = 256 * 1024 * 1024;
/// Conflicting writes are merged and retried this many times.
const MAX_ATTEMPTS: usize = 5;
const PAYLOAD_KEY: &str = "ledger.json.gz";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
const INSTANCE_LABEL: &str = "flux-status-exporter.io/ledger";

#[derive(Debug, Clone, Default)]
struct Head {
    resource_version: Option<String>,
    generation: u64,
}

/// A ledger stored in ConfigMaps.
pub struct ConfigMapStore {
    api: Api<ConfigMap>,
    name: String,
    namespace: String,
    head: Mutex<Head>,
}

/// A stored ledger with its compressed size, or why it cannot be used.
type ReadLedger = Result<(Ledger, usize), String>;

/// What one read of the head and its shards found.
enum Stored {
    Absent,
    /// The ledger and its compressed size, or why it is unusable.
    Found(Head, ReadLedger),
    /// A shard the head names is gone (the head may have moved on meanwhile).
    ShardMissing(Head, String),
}

/// Whether a shard was created, or its name was taken already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShardWrite {
    Created,
    Taken,
}

/// What the last save wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    /// Compressed size of the ledger.
    pub bytes: usize,
    /// Shard ConfigMaps used (0: inline in the head).
    pub shards: u32,
    /// Conflicts merged before the write succeeded.
    pub conflicts: usize,
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_LEDGER_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress: {e}"))?;
    if out.len() as u64 > MAX_LEDGER_BYTES {
        return Err(format!(
            "decompresses to more than {MAX_LEDGER_BYTES} bytes"
        ));
    }
    Ok(out)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes).as_ref())
}

impl ConfigMapStore {
    /// A store named `name` in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> ConfigMapStore {
        ConfigMapStore {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            namespace: namespace.to_string(),
            head: Mutex::new(Head::default()),
        }
    }

    fn source_name(&self) -> String {
        format!("ConfigMap {}/{}", self.namespace, self.name)
    }

    fn kube_error(&self, action: &'static str, object: &str, err: &kube::Error) -> LedgerError {
        LedgerError::Kube {
            action,
            object: format!("ConfigMap {}/{object}", self.namespace),
            message: describe(err),
        }
    }

    fn shard_name(&self, generation: u64, index: u32) -> String {
        format!("{}-{generation}-{index}", self.name)
    }

    /// The generation in a shard's name `<name>-<generation>-<index>`.
    fn shard_generation(&self, shard: &str) -> Option<u64> {
        let rest = shard.strip_prefix(&self.name)?.strip_prefix('-')?;
        let (generation, index) = rest.split_once('-')?;
        index.parse::<u32>().ok()?;
        generation.parse().ok()
    }

    fn labels(&self, component: &str) -> std::collections::BTreeMap<String, String> {
        std::collections::BTreeMap::from([
            (
                "app.kubernetes.io/name".to_string(),
                "flux-status-exporter".to_string(),
            ),
            (COMPONENT_LABEL.to_string(), component.to_string()),
            (INSTANCE_LABEL.to_string(), self.name.clone()),
        ])
    }

    fn set_head(&self, head: Head) {
        *self.head.lock().unwrap_or_else(|p| p.into_inner()) = head;
    }

    fn current_head(&self) -> Head {
        self.head.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the ledger. No head ConfigMap is an empty ledger; an unreadable one gives a fresh
    /// ledger and says why in `discarded` (the next save replaces it).
    pub async fn load(&self) -> Result<Loaded, LedgerError> {
        match self.read_current().await? {
            None => {
                self.set_head(Head::default());
                Ok(Loaded {
                    ledger: Ledger::new(),
                    discarded: None,
                    bytes: None,
                })
            }
            Some((head, Ok((ledger, bytes)))) => {
                self.set_head(head);
                Ok(Loaded {
                    ledger,
                    discarded: None,
                    bytes: Some(bytes),
                })
            }
            Some((head, Err(problem))) => {
                self.set_head(head);
                Ok(Loaded {
                    ledger: Ledger::new(),
                    discarded: Some(format!("{problem}; starting fresh")),
                    bytes: None,
                })
            }
        }
    }

    /// The head and the ledger it points at with its compressed size, or why that ledger is
    /// unusable.
    async fn read_current(&self) -> Result<Option<(Head, ReadLedger)>, LedgerError> {
        let mut attempts = 1;
        loop {
            match self.read_once().await? {
                Stored::Absent => return Ok(None),
                Stored::Found(head, ledger) => return Ok(Some((head, ledger))),
                Stored::ShardMissing(head, problem) => {
                    // A writer switches the head to its new generation and then deletes the old
                    // generation's shards, so a reader holding the old head can find them gone.
                    // Only a head that has not moved points at a ledger that is really damaged.
                    let now = self
                        .api
                        .get_opt(&self.name)
                        .await
                        .map_err(|e| self.kube_error("cannot read", &self.name, &e))?
                        .and_then(|cm| cm.metadata.resource_version);
                    if now == head.resource_version || attempts >= MAX_ATTEMPTS {
                        return Ok(Some((head, Err(problem))));
                    }
                    attempts += 1;
                }
            }
        }
    }

    async fn read_once(&self) -> Result<Stored, LedgerError> {
        let Some(cm) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.kube_error("cannot read", &self.name, &e))?
        else {
            return Ok(Stored::Absent);
        };
        let data = cm.data.clone().unwrap_or_default();
        let field = |key: &str| data.get(key).map(String::as_str).unwrap_or("");
        let generation: u64 = field("generation").parse().unwrap_or(0);
        let shards: u32 = field("shards").parse().unwrap_or(0);
        let head = Head {
            resource_version: cm.metadata.resource_version.clone(),
            generation,
        };
        if field("format") != FORMAT_VERSION.to_string() {
            let problem = format!(
                "ledger {}: format `{}` is not {FORMAT_VERSION}",
                self.source_name(),
                field("format")
            );
            return Ok(Stored::Found(head, Err(problem)));
        }
        let payload = if shards == 0 {
            match cm.binary_data.as_ref().and_then(|b| b.get(PAYLOAD_KEY)) {
                Some(ByteString(bytes)) => bytes.clone(),
                None => {
                    return Ok(Stored::Found(
                        head,
                        Err(format!("ledger {}: no `{PAYLOAD_KEY}`", self.source_name())),
                    ));
                }
            }
        } else {
            let mut payload = Vec::new();
            for index in 0..shards {
                let name = self.shard_name(generation, index);
                let shard = self
                    .api
                    .get_opt(&name)
                    .await
                    .map_err(|e| self.kube_error("cannot read", &name, &e))?;
                match shard
                    .and_then(|s| s.binary_data)
                    .and_then(|mut b| b.remove(PAYLOAD_KEY))
                {
                    Some(ByteString(bytes)) => payload.extend(bytes),
                    None => {
                        return Ok(Stored::ShardMissing(
                            head,
                            format!("ledger {}: shard {name} is missing", self.source_name()),
                        ));
                    }
                }
            }
            payload
        };
        if sha256_hex(&payload) != field("sha256") {
            return Ok(Stored::Found(
                head,
                Err(format!("ledger {}: checksum mismatch", self.source_name())),
            ));
        }
        let ledger = gunzip(&payload)
            .map_err(|e| format!("ledger {}: {e}", self.source_name()))
            .and_then(|json| decode(&json, &self.source_name()).map_err(|e| e.to_string()))
            .map(|ledger| (ledger, payload.len()));
        Ok(Stored::Found(head, ledger))
    }

    /// Creates one shard. A shard that already exists is never overwritten: another writer's
    /// head may point at it (two writers that read the same head pick the same generation),
    /// so the caller moves on to a later generation instead.
    async fn write_shard(
        &self,
        name: &str,
        generation: u64,
        chunk: &[u8],
    ) -> Result<ShardWrite, LedgerError> {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(self.labels("ledger-shard")),
                annotations: Some(std::collections::BTreeMap::from([(
                    "flux-status-exporter.io/generation".to_string(),
                    generation.to_string(),
                )])),
                ..Default::default()
            },
            binary_data: Some(std::collections::BTreeMap::from([(
                PAYLOAD_KEY.to_string(),
                ByteString(chunk.to_vec()),
            )])),
            ..Default::default()
        };
        match self.api.create(&PostParams::default(), &cm).await {
            Ok(_) => Ok(ShardWrite::Created),
            Err(e) if is_status(&e, 409) => Ok(ShardWrite::Taken),
            Err(e) => Err(self.kube_error("cannot write", name, &e)),
        }
    }

    /// Writes the ledger, merging in what a concurrent writer saved, and marks it saved.
    pub async fn save(&self, ledger: &mut Ledger) -> Result<Saved, LedgerError> {
        let mut conflicts = 0;
        for _ in 0..MAX_ATTEMPTS {
            let head = self.current_head();
            let payload = gzip(&encode(ledger));
            let checksum = sha256_hex(&payload);
            let generation = head.generation + 1;
            let chunks: Vec<&[u8]> = if payload.len() <= SHARD_BYTES {
                Vec::new()
            } else {
                payload.chunks(SHARD_BYTES).collect()
            };
            let mut taken = false;
            for (index, chunk) in chunks.iter().enumerate() {
                let name = self.shard_name(generation, index as u32);
                if self.write_shard(&name, generation, chunk).await? == ShardWrite::Taken {
                    taken = true;
                    break;
                }
            }
            if taken {
                // This generation's shard names are in use (by a concurrent writer, or left by
                // an interrupted save): try the next generation. The head write then tells
                // whether someone else wrote meanwhile.
                conflicts += 1;
                tracing::info!(configmap = %self.name, generation, "ledger shards of this generation exist already; using the next generation");
                self.set_head(Head { generation, ..head });
                continue;
            }
            let shards = chunks.len() as u32;
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    labels: Some(self.labels("ledger")),
                    resource_version: head.resource_version.clone(),
                    ..Default::default()
                },
                data: Some(std::collections::BTreeMap::from([
                    ("format".to_string(), FORMAT_VERSION.to_string()),
                    ("generation".to_string(), generation.to_string()),
                    ("shards".to_string(), shards.to_string()),
                    ("sha256".to_string(), checksum),
                ])),
                binary_data: (shards == 0).then(|| {
                    std::collections::BTreeMap::from([(
                        PAYLOAD_KEY.to_string(),
                        ByteString(payload.clone()),
                    )])
                }),
                ..Default::default()
            };
            let written = match &head.resource_version {
                Some(_) => {
                    self.api
                        .replace(&self.name, &PostParams::default(), &cm)
                        .await
                }
                None => self.api.create(&PostParams::default(), &cm).await,
            };
            match written {
                Ok(stored) => {
                    self.set_head(Head {
                        resource_version: stored.metadata.resource_version,
                        generation,
                    });
                    ledger.mark_saved();
                    self.collect_garbage(generation).await;
                    return Ok(Saved {
                        bytes: payload.len(),
                        shards,
                        conflicts,
                    });
                }
                // Someone else wrote (409), or the head was deleted under us (404): take in what
                // is there now and try again.
                Err(e) if is_status(&e, 409) || is_status(&e, 404) => {
                    conflicts += 1;
                    tracing::info!(configmap = %self.name, "ledger changed concurrently ({}); merging and retrying", describe(&e));
                    match self.read_current().await? {
                        None => self.set_head(Head {
                            resource_version: None,
                            generation,
                        }),
                        Some((theirs, contents)) => {
                            if let Ok((other, _)) = contents {
                                ledger.merge(other);
                            }
                            let generation = theirs.generation.max(generation);
                            self.set_head(Head {
                                generation,
                                ..theirs
                            });
                        }
                    }
                }
                Err(e) => return Err(self.kube_error("cannot write", &self.name, &e)),
            }
        }
        Err(LedgerError::Kube {
            action: "cannot write",
            object: format!("ConfigMap {}/{}", self.namespace, self.name),
            message: format!("still conflicting after {MAX_ATTEMPTS} attempts"),
        })
    }

    /// Deletes shards of older generations (left by earlier saves or interrupted ones).
    /// Failures only leave garbage behind, so they are logged, not returned.
    async fn collect_garbage(&self, keep: u64) {
        let selector = format!(
            "{COMPONENT_LABEL}=ledger-shard,{INSTANCE_LABEL}={}",
            self.name
        );
        let list = match self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
        {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(configmap = %self.name, "cannot list old ledger shards: {}", describe(&e));
                return;
            }
        };
        for shard in list.items {
            let Some(name) = shard.metadata.name else {
                continue;
            };
            // Only older generations: a later one may be a concurrent writer's save in progress
            // (its shards are written before its head).
            if self.shard_generation(&name).is_none_or(|g| g >= keep) {
                continue;
            }
            if let Err(e) = self.api.delete(&name, &DeleteParams::default()).await
                && !is_status(&e, 404)
            {
                tracing::warn!(configmap = %name, "cannot delete an old ledger shard: {}", describe(&e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_round_trips_and_refuses_bombs() {
        let data = vec![b'x'; 10_000];
        assert_eq!(gunzip(&gzip(&data)).unwrap(), data);
        assert!(
            gunzip(b"not gzip")
                .unwrap_err()
                .starts_with("cannot decompress")
        );
    }

    #[test]
    fn checksums_are_hex_sha256() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
