//! The derived signing-key cache: `kSigning` per (access key id, date, region, service).
//!
//! `kSigning` is valid for one day, one region and one service; caching it means the device
//! holding the root key is asked once per scope per day instead of once per request.

use std::sync::{Arc, Mutex};

use crate::hmac256::HmacKey;
use crate::key::DateStamp;
use crate::locked::Locked;
use crate::stages::Scope;

/// Whether the signer caches derived keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CachePolicy {
    /// One root-key call per (access key id, date, region, service); the default.
    #[default]
    PerScope,
    /// Every signature calls the root key (for auditing, or devices that count uses).
    Off,
}

/// `kSigning` for its scope, as its HMAC pad states: zeroized on drop (including eviction),
/// never printed. Cloning shares the pad states and the scope's names (no allocation).
#[derive(Clone)]
pub(crate) struct SigningKey {
    pub(crate) key: SigningPads,
    pub(crate) scope: Scope,
}

/// Where `kSigning`'s pad states live.
#[derive(Clone)]
pub(crate) enum SigningPads {
    /// Kept for the day (cached): on a locked page of their own, out of swap where the
    /// system allows.
    Kept(Arc<Locked<HmacKey>>),
    /// Used for one signature and dropped (no cache): locking a page for it would cost
    /// more than the signature (8.0 us a signature against 1.6 us, get-vanilla).
    Once(HmacKey),
}

impl std::ops::Deref for SigningPads {
    type Target = HmacKey;

    fn deref(&self) -> &HmacKey {
        match self {
            SigningPads::Kept(locked) => locked,
            SigningPads::Once(pads) => pads,
        }
    }
}

struct Entry {
    access_key_id: String,
    key: SigningKey,
    last_used: u64,
}

impl Entry {
    fn matches(&self, access_key_id: &str, date: &DateStamp, region: &str, service: &str) -> bool {
        let scope = &self.key.scope;
        scope.date() == date
            && scope.region() == region
            && scope.service() == service
            && self.access_key_id == access_key_id
    }
}

/// A bounded cache of derived signing keys; the least recently used entry is evicted (and
/// zeroized) when it is full.
pub struct DerivedKeyCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    clock: u64,
    /// The latest date asked for; entries of earlier dates have been dropped.
    newest: Option<DateStamp>,
}

impl State {
    /// Drops (and zeroizes) the keys of days before `date` when `date` is a new day: a
    /// signer that has moved on to a day does not keep the keys of the days before it
    /// (a `kSigning` still signs requests, presigned URLs among them, dated its day).
    fn move_to(&mut self, date: &DateStamp) {
        if self.newest.is_none_or(|newest| *date > newest) {
            self.entries.retain(|e| e.key.scope.date() >= date);
            self.newest = Some(*date);
        }
    }
}

impl DerivedKeyCache {
    /// Default number of scopes kept: enough for a process talking to many services in a few
    /// regions, across a date change.
    pub const DEFAULT_CAPACITY: usize = 64;

    /// A cache holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// How many keys are cached now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops (and zeroizes) every cached key.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock can't leave the Vec inconsistent: recover it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn get(
        &self,
        access_key_id: &str,
        date: &DateStamp,
        region: &str,
        service: &str,
    ) -> Option<SigningKey> {
        let mut state = self.lock();
        state.move_to(date);
        state.clock += 1;
        let now = state.clock;
        let entry = state
            .entries
            .iter_mut()
            .find(|e| e.matches(access_key_id, date, region, service))?;
        entry.last_used = now;
        Some(entry.key.clone())
    }

    pub(crate) fn insert(&self, access_key_id: &str, key: &SigningKey) {
        let scope = &key.scope;
        let (date, region, service) = (scope.date(), scope.region(), scope.service());
        let mut state = self.lock();
        state.move_to(date);
        state.clock += 1;
        let now = state.clock;
        if let Some(entry) = state
            .entries
            .iter_mut()
            .find(|e| e.matches(access_key_id, date, region, service))
        {
            entry.last_used = now;
            return;
        }
        if state.entries.len() >= self.capacity
            && let Some(oldest) =
                (0..state.entries.len()).min_by_key(|&i| state.entries[i].last_used)
        {
            state.entries.swap_remove(oldest);
        }
        state.entries.push(Entry {
            access_key_id: access_key_id.to_owned(),
            key: key.clone(),
            last_used: now,
        });
    }
}

impl Default for DerivedKeyCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for DerivedKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DerivedKeyCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> HmacKey {
        HmacKey::new(&[byte; 32])
    }

    fn same(a: &SigningKey, b: &HmacKey) -> bool {
        a.key.mac(&[b"x"]) == b.mac(&[b"x"])
    }

    /// `DerivedKeyCache::insert` of `key` for a scope.
    fn put(
        cache: &DerivedKeyCache,
        akid: &str,
        date: &DateStamp,
        region: &str,
        service: &str,
        key: HmacKey,
    ) {
        let scope = Scope::new(*date, region, service);
        let key = SigningPads::Kept(Arc::new(Locked::new(key)));
        cache.insert(akid, &SigningKey { key, scope });
    }

    fn stamp(day: u8) -> DateStamp {
        DateStamp::from_date(time::Date::from_calendar_date(2024, time::Month::May, day).unwrap())
    }

    #[test]
    fn evicts_least_recently_used_when_full() {
        let cache = DerivedKeyCache::new(2);
        let day = stamp(1);
        put(&cache, "AKID", &day, "r", "a", key(1));
        put(&cache, "AKID", &day, "r", "b", key(2));
        assert!(cache.get("AKID", &day, "r", "a").is_some()); // b is now the oldest
        put(&cache, "AKID", &day, "r", "c", key(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.get("AKID", &day, "r", "b").is_none());
        assert!(same(&cache.get("AKID", &day, "r", "a").unwrap(), &key(1)));
        assert!(same(&cache.get("AKID", &day, "r", "c").unwrap(), &key(3)));
    }

    /// Each cached `kSigning` sits on a locked page of its own, unlocked when it leaves the
    /// cache and no signature holds it. (nextest runs each test in a process of its own, so
    /// the process's locked memory is this test's.)
    #[test]
    fn cached_keys_are_locked_in_ram_until_they_leave() {
        let before = crate::locked::locked_kib();
        let cache = DerivedKeyCache::new(2);
        let day = stamp(1);
        put(&cache, "AKID", &day, "r", "a", key(1));
        put(&cache, "AKID", &day, "r", "b", key(2));
        assert_eq!(crate::locked::locked_kib(), before + 8);
        let held = cache.get("AKID", &day, "r", "a").unwrap();
        assert!(matches!(&held.key, SigningPads::Kept(pads) if pads.is_locked()));
        put(&cache, "AKID", &day, "r", "c", key(3)); // evicts b
        assert_eq!(crate::locked::locked_kib(), before + 8);
        cache.clear();
        assert_eq!(crate::locked::locked_kib(), before + 4, "a is still held");
        drop(held);
        assert_eq!(crate::locked::locked_kib(), before);
    }

    #[test]
    fn scope_is_the_whole_key() {
        let cache = DerivedKeyCache::new(8);
        put(&cache, "AKID", &stamp(1), "us-east-1", "sts", key(1));
        assert!(cache.get("AKID", &stamp(1), "us-east-1", "sts").is_some());
        assert!(cache.get("OTHER", &stamp(1), "us-east-1", "sts").is_none());
        assert!(cache.get("AKID", &stamp(2), "us-east-1", "sts").is_none());
        assert!(cache.get("AKID", &stamp(1), "eu-west-1", "sts").is_none());
        assert!(cache.get("AKID", &stamp(1), "us-east-1", "s3").is_none());
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn keys_of_past_days_are_dropped_once_a_later_day_is_signed() {
        let cache = DerivedKeyCache::new(8);
        put(&cache, "AKID", &stamp(1), "r", "s", key(1));
        put(&cache, "AKID", &stamp(1), "r", "t", key(2));
        put(&cache, "AKID", &stamp(2), "r", "s", key(3));
        assert_eq!(cache.len(), 1, "day 1's keys stay after day 2 began");
        assert!(cache.get("AKID", &stamp(1), "r", "s").is_none());
        // Asking for a later day drops the earlier days too, before any insert.
        assert!(cache.get("AKID", &stamp(3), "r", "s").is_none());
        assert!(cache.is_empty());
        // A signature back-dated to an earlier day keeps the later days' keys.
        put(&cache, "AKID", &stamp(3), "r", "s", key(4));
        put(&cache, "AKID", &stamp(1), "r", "s", key(5));
        assert_eq!(cache.len(), 2);
    }
}
