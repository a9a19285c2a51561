//! `Idempotency-Key`: a retry with the same key and body gets the first
//! answer and appends nothing; the same key with another body is a 422; the
//! same key while the first request is still running is a 409.
//!
//! The key also fixes the command id (and, for a new order, the order id), so
//! even a retry that reaches another instance, or this one after a restart,
//! is recognised by the log: the projector judges it a duplicate, or already
//! knows its outcome and nothing is appended.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

/// The namespace of ids derived from idempotency keys.
const NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7273_2d69_6465_6d70_6f74_656e);
/// Answers remembered per instance; older ones are forgotten first.
const CAPACITY: usize = 100_000;

/// A finished answer, replayed to retries.
#[derive(Clone, Debug)]
pub struct StoredResponse {
    /// The status code.
    pub status: u16,
    /// The `ETag` and `Location` headers, if any.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

enum Entry {
    InFlight {
        fingerprint: u64,
    },
    Done {
        fingerprint: u64,
        response: StoredResponse,
    },
}

/// What to do with a request that carries a key.
pub enum Claim {
    /// First time: run it, then [`Ticket::finish`].
    Run(Ticket),
    /// Seen and finished: answer this.
    Replay(StoredResponse),
    /// Seen with another request body.
    Mismatch,
    /// Seen and still running.
    InFlight,
}

/// The remembered answers of this instance.
#[derive(Clone, Default)]
pub struct IdempotencyCache {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
}

/// The right to run a claimed request; dropping it unfinished releases the key.
pub struct Ticket {
    cache: IdempotencyCache,
    key: String,
    fingerprint: u64,
    finished: bool,
}

/// Ids derived from a key, stable across retries and instances.
pub fn derived_id(scope: &str, key: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{scope}\n{key}").as_bytes())
}

/// A fingerprint of what the key is bound to: the route and the body.
pub fn fingerprint(route: &str, body: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    route.hash(&mut hasher);
    body.hash(&mut hasher);
    hasher.finish()
}

impl IdempotencyCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims `key` for a request with this fingerprint.
    pub fn claim(&self, key: &str, fingerprint: u64) -> Claim {
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some(Entry::InFlight { fingerprint: f } | Entry::Done { fingerprint: f, .. })
                if *f != fingerprint =>
            {
                Claim::Mismatch
            }
            Some(Entry::InFlight { .. }) => Claim::InFlight,
            Some(Entry::Done { response, .. }) => Claim::Replay(response.clone()),
            None => {
                inner
                    .entries
                    .insert(key.to_owned(), Entry::InFlight { fingerprint });
                inner.order.push_back(key.to_owned());
                while inner.order.len() > CAPACITY {
                    if let Some(oldest) = inner.order.pop_front() {
                        inner.entries.remove(&oldest);
                    }
                }
                Claim::Run(Ticket {
                    cache: self.clone(),
                    key: key.to_owned(),
                    fingerprint,
                    finished: false,
                })
            }
        }
    }
}

impl Ticket {
    /// Remembers the answer for retries.
    pub fn finish(mut self, response: StoredResponse) {
        self.finished = true;
        let mut inner = self.cache.lock();
        inner.entries.insert(
            self.key.clone(),
            Entry::Done {
                fingerprint: self.fingerprint,
                response,
            },
        );
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished {
            // Not finished (an error the client should retry): forget the key.
            self.cache.lock().entries.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16) -> StoredResponse {
        StoredResponse {
            status,
            headers: Vec::new(),
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn a_finished_key_replays_its_answer_to_the_same_request_only() {
        let cache = IdempotencyCache::default();
        let Claim::Run(ticket) = cache.claim("k", 1) else {
            panic!("first claim runs")
        };
        assert!(matches!(cache.claim("k", 1), Claim::InFlight));
        assert!(matches!(cache.claim("k", 2), Claim::Mismatch));
        ticket.finish(response(201));
        assert!(matches!(cache.claim("k", 1), Claim::Replay(r) if r.status == 201));
        assert!(matches!(cache.claim("k", 2), Claim::Mismatch));
    }

    #[test]
    fn an_unfinished_ticket_releases_its_key() {
        let cache = IdempotencyCache::default();
        let Claim::Run(ticket) = cache.claim("k", 1) else {
            panic!("first claim runs")
        };
        drop(ticket);
        assert!(matches!(cache.claim("k", 2), Claim::Run(_)));
    }

    #[test]
    fn derived_ids_are_stable_and_scoped() {
        assert_eq!(
            derived_id("POST /orders", "abc"),
            derived_id("POST /orders", "abc")
        );
        assert_ne!(
            derived_id("POST /orders", "abc"),
            derived_id("POST /orders/1/confirm", "abc")
        );
    }
}
