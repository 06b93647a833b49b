//! What an owner measures about its shards for placement: writes per
//! second and the regions the writes came from, decayed so old traffic
//! fades.

use crate::cluster::placement::ShardLoad;
use std::collections::BTreeMap;
use std::time::Instant;

/// Writes counted since the last `sample`.
#[derive(Debug)]
pub struct LoadMeter {
    since: Instant,
    writes: u64,
    by_region: BTreeMap<String, u64>,
    rate: f64,
}

impl Default for LoadMeter {
    fn default() -> Self {
        Self {
            since: Instant::now(),
            writes: 0,
            by_region: BTreeMap::new(),
            rate: 0.0,
        }
    }
}

impl LoadMeter {
    pub fn record(&mut self, ops: u64, region: &str) {
        self.writes += ops;
        *self.by_region.entry(region.to_owned()).or_default() += ops;
    }

    /// The load since the last sample; region counts halve each sample so
    /// a shard follows where its writes come from now.
    pub fn sample(&mut self) -> ShardLoad {
        let elapsed = self.since.elapsed().as_secs_f64().max(1e-3);
        self.rate = self.writes as f64 / elapsed;
        self.writes = 0;
        self.since = Instant::now();
        let load = ShardLoad {
            write_rate: self.rate,
            writes_by_region: self.by_region.clone(),
        };
        self.by_region.retain(|_, n| {
            *n /= 2;
            *n > 0
        });
        load
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_fade_and_rates_reset() {
        let mut meter = LoadMeter::default();
        meter.record(8, "eu");
        meter.record(2, "us");
        let load = meter.sample();
        assert!(load.write_rate > 0.0);
        assert_eq!(load.writes_by_region["eu"], 8);
        let load = meter.sample();
        assert_eq!(load.write_rate, 0.0);
        assert_eq!(load.writes_by_region["eu"], 4);
        assert_eq!(load.writes_by_region["us"], 1);
    }
}
