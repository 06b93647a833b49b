//! An in-process PD + TiKV cluster for tests: the real `tikv-client` talks
//! to it over loopback gRPC. It implements the RPCs the client calls for
//! optimistic transactions and snapshot reads (Percolator MVCC in
//! `mvcc.rs`, regions in `regions.rs`), answers UNIMPLEMENTED for anything
//! else, records every call so tests can pin the set a scenario uses, and
//! injects faults (`faults.rs`): region splits, NotLeader, ServerIsBusy,
//! slow answers, cut connections, non-retryable errors.

// `KeyError` is the wire type TiKV answers with; the MVCC code returns it
// as is, so handlers put it straight into responses.
#![allow(clippy::result_large_err)]

mod conn;
pub mod faults;
mod grpc;
pub mod mvcc;
mod pd;
pub mod proto;
pub mod regions;
mod tikv;

pub use faults::{Fault, FaultAction};

use conn::KillSwitch;
use mvcc::Mvcc;
use regions::Regions;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const CLUSTER_ID: u64 = 7_356_218_411;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the cluster shares between its PD and TiKV endpoints.
#[derive(Debug)]
pub(crate) struct State {
    pub mvcc: Mutex<Mvcc>,
    pub regions: Mutex<Regions>,
    pub store_ids: Vec<u64>,
    pub store_addrs: Mutex<BTreeMap<u64, String>>,
    pub pd_url: Mutex<String>,
    pub keyspaces: BTreeMap<String, u32>,
    clock_skew_ms: AtomicI64,
    /// Added to every call, as network and server time would be.
    latency_us: AtomicU64,
    tso: Mutex<(u64, u64)>,
    faults: Mutex<Vec<Fault>>,
    calls: Mutex<Vec<String>>,
    pub kill_switches: BTreeMap<u64, KillSwitch>,
}

/// The store id PD's own endpoint uses for kill switches and faults.
pub const PD_STORE: u64 = 0;

impl State {
    /// Allocates `count` timestamps; returns the last one's (physical, logical).
    pub fn allocate_ts(&self, count: u64) -> (u64, u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let now = now.saturating_add_signed(self.clock_skew_ms.load(Ordering::SeqCst));
        let mut tso = lock(&self.tso);
        let (physical, logical) = *tso;
        let next = if now > physical {
            (now, count)
        } else if logical + count < (1 << 18) {
            (physical, logical + count)
        } else {
            (physical + 1, count)
        };
        *tso = next;
        next
    }

    /// Waits the injected latency, if any.
    pub async fn delay(&self) {
        let latency = self.latency_us.load(Ordering::Relaxed);
        if latency > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(latency)).await;
        }
    }

    pub fn record(&self, call: String) {
        if std::env::var_os("TIKV_TEST_SERVER_TRACE").is_some() {
            eprintln!("tikv-test-server: {call}");
        }
        lock(&self.calls).push(call);
    }

    /// The fault that fires for this call, if one does.
    pub fn take_fault(&self, method: &str, store: u64, region_id: Option<u64>) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        let regions = lock(&self.regions);
        let index = faults.iter().position(|f| {
            f.method == method
                && f.store.is_none_or(|s| s == store)
                && f.region_of
                    .as_ref()
                    .is_none_or(|key| region_id == Some(regions.for_key(key).id))
        })?;
        let fault = &mut faults[index];
        if fault.skip > 0 {
            fault.skip -= 1;
            return None;
        }
        let action = fault.action.clone();
        fault.times -= 1;
        if fault.times == 0 {
            faults.remove(index);
        }
        Some(action)
    }
}

/// Options for `TestCluster::start`.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub stores: usize,
    /// Keyspace names PD knows, with their ids.
    pub keyspaces: BTreeMap<String, u32>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            stores: 1,
            keyspaces: BTreeMap::from([("rustorium".to_owned(), 1)]),
        }
    }
}

/// A running PD endpoint and `stores` TiKV endpoints on loopback.
#[derive(Debug)]
pub struct TestCluster {
    state: Arc<State>,
    pd_addr: SocketAddr,
    shutdown: Vec<oneshot::Sender<()>>,
}

impl TestCluster {
    /// Starts the cluster on the current tokio runtime.
    pub async fn start(options: ClusterOptions) -> std::io::Result<Self> {
        let store_ids: Vec<u64> = (1..=options.stores.max(1) as u64).collect();
        let kill_switches = std::iter::once(PD_STORE)
            .chain(store_ids.iter().copied())
            .map(|id| (id, KillSwitch::default()))
            .collect();
        let state = Arc::new(State {
            mvcc: Mutex::new(Mvcc::default()),
            regions: Mutex::new(Regions::new(store_ids[0])),
            store_ids: store_ids.clone(),
            store_addrs: Mutex::new(BTreeMap::new()),
            pd_url: Mutex::new(String::new()),
            keyspaces: options.keyspaces,
            clock_skew_ms: AtomicI64::new(0),
            latency_us: AtomicU64::new(0),
            tso: Mutex::new((0, 0)),
            faults: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            kill_switches,
        });
        let mut shutdown = Vec::new();
        let pd_listener = TcpListener::bind("127.0.0.1:0").await?;
        let pd_addr = pd_listener.local_addr()?;
        *lock(&state.pd_url) = format!("http://{pd_addr}");
        shutdown.push(grpc::serve_pd(state.clone(), pd_listener));
        for id in store_ids {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            lock(&state.store_addrs).insert(id, listener.local_addr()?.to_string());
            shutdown.push(grpc::serve_tikv(state.clone(), id, listener));
        }
        Ok(Self {
            state,
            pd_addr,
            shutdown,
        })
    }

    /// The PD endpoint to give the client, e.g. "127.0.0.1:2379".
    pub fn pd_endpoint(&self) -> String {
        self.pd_addr.to_string()
    }

    /// The address of TiKV store `id` (1-based).
    pub fn store_endpoint(&self, id: u64) -> String {
        lock(&self.state.store_addrs).get(&id).cloned().unwrap_or_default()
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.state.faults).push(fault);
    }

    /// Faults armed but not yet fired.
    pub fn pending_faults(&self) -> usize {
        lock(&self.state.faults).len()
    }

    /// Delays every later call (TiKV, PD, each timestamp) by `latency`.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.state
            .latency_us
            .store(latency.as_micros().try_into().unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Moves PD's clock (and so every lock's age) forward.
    pub fn advance_clock(&self, ms: i64) {
        self.state.clock_skew_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Splits the region holding `key` at `key`.
    pub fn split(&self, key: &[u8]) -> bool {
        lock(&self.state.regions).split(key)
    }

    pub fn region_count(&self) -> usize {
        lock(&self.state.regions).regions.len()
    }

    /// Cuts every open connection to a store (`PD_STORE` for PD).
    pub fn drop_connections(&self, store: u64) {
        if let Some(switch) = self.state.kill_switches.get(&store) {
            switch.kill();
        }
    }

    /// Every call so far as "service/Method", in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.state.calls).clone()
    }

    /// The distinct calls so far, and forget them.
    pub fn take_call_set(&self) -> BTreeSet<String> {
        std::mem::take(&mut *lock(&self.state.calls)).into_iter().collect()
    }

    /// Committed pairs visible now, and keys still locked.
    pub fn committed(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        lock(&self.state.mvcc).snapshot(u64::MAX)
    }

    pub fn locked_keys(&self) -> Vec<Vec<u8>> {
        lock(&self.state.mvcc).locked_keys()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for switch in self.state.kill_switches.values() {
            switch.kill();
        }
        for stop in self.shutdown.drain(..) {
            let _ = stop.send(());
        }
    }
}
