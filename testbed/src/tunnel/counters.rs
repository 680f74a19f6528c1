//! Counters of a tunnel endpoint: shared atomics so a test or a supervisor can
//! read them while the endpoint runs, one per outcome, printed as JSON at exit
//! (keys sorted: the JSON map is ordered by name).
//! Relaxed increments: each counter is written by the one packet loop only.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

/// A fixed set of named counters (names given at construction, in print order).
#[derive(Debug)]
pub struct Counters {
    names: Vec<String>,
    values: Vec<AtomicU64>,
}

impl Counters {
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        let names: Vec<String> = names.into_iter().collect();
        let values = names.iter().map(|_| AtomicU64::new(0)).collect();
        Self { names, values }
    }

    /// Adds `n` to counter `index` (an index into the names given to `new`;
    /// out of range is ignored, so a miscount can never stop the packet loop).
    #[inline]
    pub fn add(&self, index: usize, n: u64) {
        if let Some(value) = self.values.get(index) {
            value.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The current value of the counter called `name` (0 when there is none).
    pub fn get(&self, name: &str) -> u64 {
        self.names
            .iter()
            .position(|n| n == name)
            .map_or(0, |i| self.values[i].load(Ordering::Relaxed))
    }

    /// All counters as one JSON object.
    pub fn to_json(&self) -> Value {
        let map: Map<String, Value> = self
            .names
            .iter()
            .zip(&self.values)
            .map(|(n, v)| (n.clone(), Value::from(v.load(Ordering::Relaxed))))
            .collect();
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_by_index_and_read_by_name() {
        let c = Counters::new(["a".to_string(), "b".to_string()]);
        c.add(1, 3);
        c.add(1, 2);
        c.add(7, 1);
        assert_eq!(c.get("a"), 0);
        assert_eq!(c.get("b"), 5);
        assert_eq!(c.get("zzz"), 0);
        assert_eq!(c.to_json().to_string(), r#"{"a":0,"b":5}"#);
    }
}
