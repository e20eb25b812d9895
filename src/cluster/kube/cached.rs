//! `kube.listFromCache: true`: each collection in one unchunked list served from the API
//! server's watch cache (`resourceVersion=0`, `resourceVersionMatch=NotOlderThan`), the
//! cheapest list for the server, decoded as it streams in so that the client never holds the
//! whole body (tens of MB at 20,000 objects).
//!
//! The price is staleness: such a list may be any version the serving API server's cache
//! holds, normally within a second of etcd but older after that server restarted or lost its
//! watch of etcd. A later tick reads the newer state; a status posted from a stale read is
//! corrected then.

use std::io::Read;
use std::time::Instant;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;

use super::failure::{ListTarget, ReadFailure, refusal, status_failure};
use super::page::{PageMeta, decode_page_from_reader};
use super::{KubeReader, KubeRequest, Listed};
use crate::cluster::Snapshot;
use crate::flux::FluxKind;

/// Body chunks in flight between the connection and the decoder: the memory bound.
const CHUNKS_IN_FLIGHT: usize = 8;

/// A list body that did not arrive whole, or is not a list.
enum StreamFailure {
    /// The connection failed mid-body: worth retrying.
    Body(String),
    /// The body is not a Kubernetes list.
    Invalid(String),
}

/// Reads the chunks a task forwards from the connection, blocking (it runs on a blocking
/// thread): the bridge from the async body to serde_json's reader.
struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(problem)) => return Err(std::io::Error::other(problem)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

impl KubeReader {
    /// The URI of an unchunked list of `target` from the watch cache.
    fn cache_list_uri(&self, target: &ListTarget) -> String {
        self.with_selector(format!(
            "{}?resourceVersion=0&resourceVersionMatch=NotOlderThan",
            target.path()
        ))
    }

    /// Reads `target` in one list from the watch cache, retrying as a paged list's pages are.
    pub(super) async fn read_list_from_cache(
        &self,
        target: &ListTarget,
        requests: &mut Vec<KubeRequest>,
    ) -> Result<Listed, ReadFailure> {
        let uri = self.cache_list_uri(target);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let started = Instant::now();
            let request = http::Request::get(&uri)
                .header(http::header::ACCEPT, "application/json")
                .body(kube::client::Body::empty())
                .map_err(|e| ReadFailure::Transport {
                    target: target.clone(),
                    attempts,
                    message: e.to_string(),
                })?;
            let sent = tokio::time::timeout(self.request_timeout, self.client.send(request)).await;
            let code = match &sent {
                Ok(Ok(response)) => Some(response.status().as_u16()),
                _ => None,
            };
            requests.push(KubeRequest::list(target, code, started));
            let failure = match sent {
                Ok(Ok(response)) if response.status().is_success() => {
                    match decode_streamed(response.into_body(), target.kind).await {
                        Ok((objects, meta)) => {
                            return Ok(Listed::Objects {
                                objects: Box::new(objects),
                                resource_version: meta.resource_version.unwrap_or_default(),
                            });
                        }
                        Err(StreamFailure::Invalid(problem)) => {
                            return Err(ReadFailure::InvalidResponse {
                                target: target.clone(),
                                problem,
                            });
                        }
                        Err(StreamFailure::Body(message)) => ReadFailure::Transport {
                            target: target.clone(),
                            attempts,
                            message,
                        },
                    }
                }
                Ok(Ok(response)) => {
                    let (status, message) = refusal(response).await;
                    match status {
                        404 => return Ok(Listed::NotServed),
                        429 => ReadFailure::TooManyRequests {
                            target: target.clone(),
                            attempts,
                            message,
                        },
                        500..=599 => ReadFailure::ServerError {
                            target: target.clone(),
                            code: status,
                            attempts,
                            message,
                        },
                        _ => return Err(status_failure(target, status, message)),
                    }
                }
                Ok(Err(error)) => ReadFailure::Transport {
                    target: target.clone(),
                    attempts,
                    message: crate::forge::text::error_chain(&error),
                },
                Err(_) => ReadFailure::Timeout {
                    target: target.clone(),
                    attempts,
                    timeout: self.request_timeout,
                },
            };
            if attempts > self.retry.max_retries {
                return Err(failure);
            }
            let wait = self.retry.backoff(attempts - 1, None);
            tracing::info!("retrying in {wait:?}: {failure}");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Decodes a list body as it arrives: a task forwards its chunks (at most
/// [`CHUNKS_IN_FLIGHT`] waiting) to a decoder that blocks. On a multi-threaded runtime the
/// decoder runs on this worker thread (its other tasks move away meanwhile), so the objects are
/// allocated where a paged list would allocate them, not in a blocking thread's own allocator
/// arena that would keep the memory after the objects are freed elsewhere.
async fn decode_streamed(
    body: kube::client::Body,
    kind: FluxKind,
) -> Result<(Snapshot, PageMeta), StreamFailure> {
    let (sender, chunks) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
    let forward = async move {
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.frame().await {
            let chunk = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => Ok(data),
                    Err(_) => continue,
                },
                Err(e) => Err(crate::forge::text::error_chain(&e)),
            };
            let failed = chunk.as_ref().err().cloned();
            // The decoder stopped (it failed): the rest of the body is not needed.
            if sender.send(chunk).await.is_err() {
                return None;
            }
            if failed.is_some() {
                return failed;
            }
        }
        None
    };
    let forwarding = tokio::spawn(forward);
    let decode = move || {
        let reader = ChunkReader {
            chunks,
            current: Bytes::new(),
        };
        let mut snapshot = Snapshot::default();
        decode_page_from_reader(std::io::BufReader::new(reader), kind, &mut snapshot)
            .map(|meta| (snapshot, meta))
            .map_err(|e| e.to_string())
    };
    let multi_threaded = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    let decoded = if multi_threaded {
        Ok(tokio::task::block_in_place(decode))
    } else {
        tokio::task::spawn_blocking(decode).await
    };
    let body_failure = forwarding.await.unwrap_or_else(|e| Some(e.to_string()));
    if let Some(problem) = body_failure {
        return Err(StreamFailure::Body(problem));
    }
    match decoded {
        Ok(Ok(decoded)) => Ok(decoded),
        Ok(Err(problem)) => Err(StreamFailure::Invalid(problem)),
        Err(join) => Err(StreamFailure::Invalid(format!(
            "the decoder stopped: {join}"
        ))),
    }
}
