//! Prometheus metrics: requests and their latency per endpoint, syncs in flight, RocksDB sizes
//! and block cache hits, process memory. Served at `/metrics` on a listener of its own when
//! `metrics.enabled` is set (see `api::metrics`); when it is not, nothing is recorded.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::storage::{Cf, Db};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route's template (`/_matrix/client/v3/rooms/{room_id}/send/...`), never the
    /// concrete path, so ids do not multiply the series.
    pub endpoint: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub method: String,
    pub endpoint: String,
}

pub struct Metrics {
    pub enabled: bool,
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<EndpointLabels, Histogram>,
    pub syncs_in_flight: Gauge,
}

impl Metrics {
    pub fn new(enabled: bool, db: Db) -> Metrics {
        let mut registry = Registry::with_prefix("myelin");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by endpoint and status",
            requests.clone(),
        );
        // 0.25 ms to ~8 s.
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by endpoint (long polls included)",
            latency.clone(),
        );
        let syncs_in_flight = Gauge::default();
        registry.register(
            "sync_requests_in_flight",
            "/sync requests being answered or waiting (long polls) right now",
            syncs_in_flight.clone(),
        );
        registry.register_collector(Box::new(StorageCollector { db }));
        Metrics {
            enabled,
            registry,
            requests,
            latency,
            syncs_in_flight,
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Counts a sync as in flight until the guard is dropped.
    pub fn sync_started(&self) -> SyncGuard<'_> {
        if self.enabled {
            self.syncs_in_flight.inc();
        }
        SyncGuard(self)
    }
}

pub struct SyncGuard<'a>(&'a Metrics);

impl Drop for SyncGuard<'_> {
    fn drop(&mut self) {
        if self.0.enabled {
            self.0.syncs_in_flight.dec();
        }
    }
}

/// Reads what RocksDB and the kernel know at scrape time.
struct StorageCollector {
    db: Db,
}

impl std::fmt::Debug for StorageCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageCollector")
    }
}

impl Collector for StorageCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut sizes = encoder.encode_descriptor(
            "rocksdb_size_bytes",
            "Bytes per column family (SST files and memtables, as RocksDB estimates them)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for &cf in Cf::ALL {
            let size = self.db.size_of(cf).unwrap_or(0);
            let labels = [("cf", cf.name())];
            ConstGauge::new(i64::try_from(size).unwrap_or(i64::MAX))
                .encode(sizes.encode_family(&labels)?)?;
        }
        if let Some((hits, misses)) = self.db.cache_hits_and_misses() {
            for (name, help, value) in [
                ("rocksdb_block_cache_hits", "Block cache hits", hits),
                ("rocksdb_block_cache_misses", "Block cache misses", misses),
            ] {
                let counter = ConstCounter::new(value);
                let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
                counter.encode(metric)?;
            }
        }
        if let Some(rss) = resident_bytes() {
            let gauge = ConstGauge::new(i64::try_from(rss).unwrap_or(i64::MAX));
            let metric = encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory of the server process",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// The process's resident set size, from `/proc/self/statm` (Linux only).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page_size).ok()?)
}
