//! Limits shared by all sessions: sessions per source address and per user, temporary bans
//! after repeated failed logins, and bandwidth throttles.
//!
//! These are the only state sessions share; each lock is taken on connect, login, disconnect
//! or once per transfer chunk, never per command.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Most addresses the ban list remembers; the oldest entries go first past this.
const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// Counts live sessions by key (source address or user name).
#[derive(Debug)]
pub struct Counter<K: Eq + Hash + Clone> {
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

/// A clone counts the same sessions: a reloaded configuration's context shares the counts of
/// the sessions started before it.
impl<K: Eq + Hash + Clone> Clone for Counter<K> {
    fn clone(&self) -> Self {
        Counter {
            counts: Arc::clone(&self.counts),
        }
    }
}

impl<K: Eq + Hash + Clone> Default for Counter<K> {
    fn default() -> Self {
        Counter {
            counts: Arc::default(),
        }
    }
}

/// A number of things all sessions together may hold (kept passive ports), counted without a
/// lock.
#[derive(Debug)]
pub struct Budget {
    held: Arc<AtomicUsize>,
    limit: usize,
}

/// One unit of a [`Budget`]; dropping it gives it back.
#[derive(Debug)]
pub struct BudgetGuard(Arc<AtomicUsize>);

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            held: Arc::default(),
            limit,
        }
    }

    /// A budget with another limit that shares this one's units (those held stay counted).
    pub fn with_limit(&self, limit: usize) -> Budget {
        Budget {
            held: Arc::clone(&self.held),
            limit,
        }
    }

    /// How many units are held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Takes one unit if fewer than the limit are held.
    pub fn take(&self) -> Option<BudgetGuard> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.limit).then_some(held + 1)
            })
            .ok()
            .map(|_| BudgetGuard(Arc::clone(&self.held)))
    }
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Holds one count; dropping it gives the count back.
#[derive(Debug)]
pub struct CountGuard<K: Eq + Hash + Clone> {
    counts: Arc<Mutex<HashMap<K, usize>>>,
    key: K,
}

impl<K: Eq + Hash + Clone> Counter<K> {
    /// Takes a count for `key` if fewer than `limit` are held (`None` limit: always).
    pub fn acquire(&self, key: &K, limit: Option<usize>) -> Option<CountGuard<K>> {
        let mut counts = lock(&self.counts);
        let count = counts.entry(key.clone()).or_insert(0);
        if limit.is_some_and(|limit| *count >= limit) {
            return None;
        }
        *count += 1;
        Some(CountGuard {
            counts: Arc::clone(&self.counts),
            key: key.clone(),
        })
    }
}

impl<K: Eq + Hash + Clone> Drop for CountGuard<K> {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// When repeated failed logins from one address get it banned.
#[derive(Debug, Clone, Copy)]
pub struct BanRule {
    /// Failed logins within `window` that trigger a ban; 0 turns bans off.
    pub failures: u32,
    pub window: Duration,
    pub ban: Duration,
}

#[derive(Debug)]
struct Record {
    failures: u32,
    first_failure: Instant,
    banned_until: Option<Instant>,
}

/// Failed logins per address, and the addresses banned for them.
#[derive(Debug)]
pub struct BanList {
    rule: BanRule,
    state: Arc<BanState>,
}

/// What a ban list remembers; shared with the ban list of a reloaded configuration.
#[derive(Debug, Default)]
struct BanState {
    records: Mutex<HashMap<IpAddr, Record>>,
    /// Woken at each new ban, so that sessions still logging in from that address end.
    new_ban: tokio::sync::Notify,
}

impl BanList {
    pub fn new(rule: BanRule) -> Self {
        BanList {
            rule,
            state: Arc::default(),
        }
    }

    /// A ban list with another rule that shares this one's records and bans: the bans made
    /// before a reload hold after it, for as long as they were given.
    pub fn with_rule(&self, rule: BanRule) -> BanList {
        BanList {
            rule,
            state: Arc::clone(&self.state),
        }
    }

    /// Resolves at the next ban of any address (then ask [`Self::banned_for`]).
    pub async fn next_ban(&self) {
        self.state.new_ban.notified().await;
    }

    /// The addresses banned now, with the time each ban has left, longest first.
    pub fn active(&self) -> Vec<(IpAddr, Duration)> {
        let now = Instant::now();
        let mut banned: Vec<(IpAddr, Duration)> = lock(&self.state.records)
            .iter()
            .filter_map(|(ip, record)| {
                let until = record.banned_until.filter(|until| *until > now)?;
                Some((*ip, until - now))
            })
            .collect();
        banned.sort_by_key(|(_, left)| std::cmp::Reverse(*left));
        banned
    }

    /// How long `ip` stays banned, if it is.
    pub fn banned_for(&self, ip: IpAddr) -> Option<Duration> {
        let ip = client_network(ip);
        let now = Instant::now();
        let records = lock(&self.state.records);
        let until = records.get(&ip)?.banned_until?;
        (until > now).then(|| until - now)
    }

    /// Records a failed login; returns the ban's length when this failure starts or extends
    /// one. Failures keep counting during a ban: each one past the threshold (from a session
    /// that was already checking a password) bans the address again from now.
    pub fn record_failure(&self, ip: IpAddr) -> Option<Duration> {
        if self.rule.failures == 0 {
            return None;
        }
        let ip = client_network(ip);
        let now = Instant::now();
        let banned = {
            let mut records = lock(&self.state.records);
            if records.len() >= MAX_TRACKED_ADDRESSES && !records.contains_key(&ip) {
                prune(&mut records, now, self.rule.window);
            }
            let record = records.entry(ip).or_insert(Record {
                failures: 0,
                first_failure: now,
                banned_until: None,
            });
            let banned_now = record.banned_until.is_some_and(|until| until > now);
            if !banned_now && now.duration_since(record.first_failure) > self.rule.window {
                *record = Record {
                    failures: 0,
                    first_failure: now,
                    banned_until: None,
                };
            }
            record.failures = record.failures.saturating_add(1);
            if record.failures >= self.rule.failures {
                record.banned_until = Some(now + self.rule.ban);
                record.first_failure = now;
                true
            } else {
                false
            }
        };
        if banned {
            self.state.new_ban.notify_waiters();
        }
        banned.then_some(self.rule.ban)
    }
}

/// What one client is, for bans, failed-login counts and the per-address session limit: its
/// IPv4 address, or the /64 of its IPv6 address (a client given a /64 has as many addresses
/// as it likes; one network is one site). An IPv4-mapped IPv6 address is its IPv4 address.
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// Drops records whose window and ban are over; if that is not enough, the oldest half of
/// those not banned now (a flood of new addresses must not lift the bans in force).
fn prune(records: &mut HashMap<IpAddr, Record>, now: Instant, window: Duration) {
    let banned = |r: &Record| r.banned_until.is_some_and(|u| u > now);
    records.retain(|_, r| banned(r) || now.duration_since(r.first_failure) <= window);
    if records.len() >= MAX_TRACKED_ADDRESSES {
        let mut starts: Vec<Instant> = records
            .values()
            .filter(|r| !banned(r))
            .map(|r| r.first_failure)
            .collect();
        starts.sort();
        if let Some(&cutoff) = starts.get(starts.len() / 2) {
            records.retain(|_, r| banned(r) || r.first_failure > cutoff);
        }
    }
}

/// A token bucket: `rate` bytes per second, with one second of burst.
#[derive(Debug)]
pub struct RateLimiter {
    rate: u64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A limiter for `rate` bytes per second (at least 1).
    pub fn new(rate: u64) -> Self {
        let rate = rate.max(1);
        RateLimiter {
            rate,
            bucket: Mutex::new((rate as f64, Instant::now())),
        }
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Takes `bytes` from the bucket, waiting while it is in debt.
    pub async fn consume(&self, bytes: usize) {
        let wait = {
            let mut bucket = lock(&self.bucket);
            let now = Instant::now();
            let (tokens, last) = &mut *bucket;
            let refill = now.duration_since(*last).as_secs_f64() * self.rate as f64;
            *tokens = (*tokens + refill).min(self.rate as f64) - bytes as f64;
            *last = now;
            (*tokens < 0.0).then(|| Duration::from_secs_f64(-*tokens / self.rate as f64))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The limiters one direction of a transfer goes through (the session's and the user's).
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    limiters: Vec<Arc<RateLimiter>>,
}

impl Throttle {
    pub fn new(limiters: impl IntoIterator<Item = Option<Arc<RateLimiter>>>) -> Self {
        Throttle {
            limiters: limiters.into_iter().flatten().collect(),
        }
    }

    /// Whether no limit applies.
    pub fn is_unlimited(&self) -> bool {
        self.limiters.is_empty()
    }

    /// The largest chunk that keeps the flow smooth: about an eighth of a second's worth.
    pub fn chunk_size(&self, default: usize) -> usize {
        self.limiters
            .iter()
            .map(|l| (l.rate() / 8).clamp(1024, default as u64) as usize)
            .min()
            .unwrap_or(default)
    }

    pub async fn consume(&self, bytes: usize) {
        for limiter in &self.limiters {
            limiter.consume(bytes).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_limits_and_releases() {
        let counter = Counter::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let first = counter.acquire(&ip, Some(2)).unwrap();
        let _second = counter.acquire(&ip, Some(2)).unwrap();
        assert!(counter.acquire(&ip, Some(2)).is_none());
        drop(first);
        assert!(counter.acquire(&ip, Some(2)).is_some());
        let names = Counter::default();
        assert!(names.acquire(&"alice".to_string(), None).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn bans_start_after_repeated_failures_and_expire() {
        let rule = BanRule {
            failures: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(300),
        };
        let bans = BanList::new(rule);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(bans.record_failure(ip), None);
        assert_eq!(bans.record_failure(ip), None);
        assert_eq!(bans.record_failure(ip), Some(Duration::from_secs(300)));
        assert!(bans.banned_for(ip).is_some());
        assert!(bans.banned_for("192.0.2.8".parse().unwrap()).is_none());
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(bans.banned_for(ip).is_none(), "bans expire");
    }

    /// An IPv6 client is its /64: failures from addresses of one /64 add up, and a ban holds
    /// for all of them; other networks and IPv4 are apart.
    #[tokio::test(start_paused = true)]
    async fn an_ipv6_client_is_its_64() {
        let rule = BanRule {
            failures: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(300),
        };
        let bans = BanList::new(rule);
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(bans.record_failure(ip("2001:db8:1:2::1")), None);
        assert_eq!(bans.record_failure(ip("2001:db8:1:2::ff")), None);
        assert!(bans.record_failure(ip("2001:db8:1:2:abcd::9")).is_some());
        assert!(bans
            .banned_for(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
            .is_some());
        assert!(bans.banned_for(ip("2001:db8:1:3::1")).is_none());
        assert_eq!(
            client_network(ip("::ffff:192.0.2.7")),
            ip("192.0.2.7"),
            "IPv4-mapped"
        );
    }

    /// Pruning a full table keeps the bans in force.
    #[test]
    fn pruning_keeps_active_bans() {
        let now = Instant::now();
        let mut records = HashMap::new();
        let banned: IpAddr = "192.0.2.1".parse().unwrap();
        records.insert(
            banned,
            Record {
                failures: 10,
                first_failure: now,
                banned_until: Some(now + Duration::from_secs(600)),
            },
        );
        for i in 0..MAX_TRACKED_ADDRESSES as u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            records.insert(
                ip,
                Record {
                    failures: 1,
                    first_failure: now + Duration::from_millis(u64::from(i)),
                    banned_until: None,
                },
            );
        }
        prune(&mut records, now, Duration::from_secs(3600));
        assert!(records.contains_key(&banned));
        assert!(records.len() < MAX_TRACKED_ADDRESSES);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_during_a_ban_keep_counting_and_extend_it() {
        let rule = BanRule {
            failures: 2,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(100),
        };
        let bans = BanList::new(rule);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        bans.record_failure(ip);
        assert!(bans.record_failure(ip).is_some());
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(
            bans.record_failure(ip),
            Some(Duration::from_secs(100)),
            "a failure during the ban bans again"
        );
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(
            bans.banned_for(ip).is_some(),
            "extended from the last failure"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_ban_list_with_a_new_rule_keeps_the_bans() {
        let rule = BanRule {
            failures: 1,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(100),
        };
        let bans = BanList::new(rule);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(bans.record_failure(ip).is_some());
        let reloaded = bans.with_rule(BanRule {
            failures: 5,
            ..rule
        });
        assert!(reloaded.banned_for(ip).is_some(), "the ban survives");
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(
            reloaded.record_failure(other).is_none(),
            "the new rule counts"
        );
        let budget = Budget::new(1);
        let _held = budget.take().unwrap();
        let larger = budget.with_limit(2);
        assert_eq!(larger.held(), 1);
        let second = larger.take();
        assert!(second.is_some(), "the new limit applies");
        assert!(larger.take().is_none(), "the unit held before counts");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_outside_the_window_do_not_add_up() {
        let rule = BanRule {
            failures: 2,
            window: Duration::from_secs(10),
            ban: Duration::from_secs(60),
        };
        let bans = BanList::new(rule);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        bans.record_failure(ip);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(bans.record_failure(ip), None);
        assert!(bans.record_failure(ip).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_paces_bytes() {
        let limiter = RateLimiter::new(1000);
        let start = Instant::now();
        for _ in 0..10 {
            limiter.consume(500).await;
        }
        // 5000 bytes at 1000 B/s with 1000 bytes of burst: 4 seconds.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((3.9..4.2).contains(&elapsed), "{elapsed}");
    }
}
