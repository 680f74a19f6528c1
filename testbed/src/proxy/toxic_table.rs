//! A proxy's toxics: the ordered list the API edits, published to live links as an
//! immutable snapshot. Edits take a short lock and never wait for a connection, so the
//! API answers at once however busy the proxy is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::error::ApiError;
use super::pipeline::ToxicList;
use super::toxic::{Toxic, ToxicInput};
use super::toxics::bounds::later;

#[derive(Debug)]
struct Table {
    toxics: Vec<Arc<Toxic>>,
    next_uid: u64,
    /// Per toxic uid, when its `duration` runs out and the timer that removes it. A
    /// timer is stopped when its toxic goes or is given a new duration, so adding and
    /// removing toxics in a loop leaves no sleeping tasks behind.
    expiries: HashMap<u64, (Instant, AbortHandle)>,
}

impl Table {
    fn disarm(&mut self, uid: u64) {
        if let Some((_, timer)) = self.expiries.remove(&uid) {
            timer.abort();
        }
    }
}

/// The toxic list of one proxy.
#[derive(Debug)]
pub struct ToxicTable {
    table: Mutex<Table>,
    published: watch::Sender<ToxicList>,
    /// The most toxics the list may hold.
    limit: usize,
}

impl Default for ToxicTable {
    fn default() -> Self {
        Self::new(super::limits::MAX_TOXICS_PER_PROXY)
    }
}

impl ToxicTable {
    pub fn new(limit: usize) -> Self {
        ToxicTable {
            table: Mutex::new(Table {
                toxics: Vec::new(),
                next_uid: 1,
                expiries: HashMap::new(),
            }),
            published: watch::Sender::new(Arc::new(Vec::new())),
            limit,
        }
    }

    /// The error for one toxic too many.
    pub fn limit_error(&self) -> ApiError {
        ApiError::LimitReached {
            what: "toxics per proxy",
            limit: self.limit,
            hint: "remove one first (the server's --max-toxics sets the limit)",
        }
    }

    /// Whether `count` more toxics would fit.
    pub fn has_room_for(&self, count: usize) -> bool {
        self.lock().toxics.len().saturating_add(count) <= self.limit
    }

    /// Live `duration` timers (one per toxic that has a duration).
    pub fn timers(&self) -> usize {
        self.lock().expiries.len()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a consistent Vec; keep serving.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, table: &Table) {
        self.published.send_replace(Arc::new(table.toxics.clone()));
    }

    /// What links watch.
    pub fn subscribe(&self) -> watch::Receiver<ToxicList> {
        self.published.subscribe()
    }

    pub fn list(&self) -> Vec<Arc<Toxic>> {
        self.lock().toxics.clone()
    }

    pub fn get(&self, name: &str) -> Result<Arc<Toxic>, ApiError> {
        self.lock()
            .toxics
            .iter()
            .find(|toxic| toxic.name == name)
            .cloned()
            .ok_or_else(|| ApiError::ToxicNotFound(name.to_owned()))
    }

    /// Checks a toxic without adding it (for creating a proxy with its toxics at once).
    pub fn validate(input: ToxicInput) -> Result<Toxic, ApiError> {
        Toxic::create(input, 0)
    }

    pub fn add(self: &Arc<Self>, input: ToxicInput) -> Result<Arc<Toxic>, ApiError> {
        let mut table = self.lock();
        let toxic = Toxic::create(input, table.next_uid)?;
        if table.toxics.iter().any(|other| other.name == toxic.name) {
            return Err(ApiError::ToxicAlreadyExists(toxic.name));
        }
        if table.toxics.len() >= self.limit {
            return Err(self.limit_error());
        }
        table.next_uid += 1;
        let toxic = Arc::new(toxic);
        table.toxics.push(Arc::clone(&toxic));
        self.arm_expiry(&mut table, &toxic);
        self.publish(&table);
        Ok(toxic)
    }

    pub fn update(self: &Arc<Self>, name: &str, input: ToxicInput) -> Result<Arc<Toxic>, ApiError> {
        let mut table = self.lock();
        let index = table
            .toxics
            .iter()
            .position(|toxic| toxic.name == name)
            .ok_or_else(|| ApiError::ToxicNotFound(name.to_owned()))?;
        let duration_sent = input.duration.is_some();
        let toxic = Arc::new(table.toxics[index].updated(input)?);
        table.toxics[index] = Arc::clone(&toxic);
        if duration_sent {
            self.arm_expiry(&mut table, &toxic);
        }
        self.publish(&table);
        Ok(toxic)
    }

    pub fn remove(&self, name: &str) -> Result<(), ApiError> {
        let mut table = self.lock();
        let index = table
            .toxics
            .iter()
            .position(|toxic| toxic.name == name)
            .ok_or_else(|| ApiError::ToxicNotFound(name.to_owned()))?;
        let removed = table.toxics.remove(index);
        table.disarm(removed.uid);
        self.publish(&table);
        Ok(())
    }

    pub fn clear(&self) {
        let mut table = self.lock();
        table.toxics.clear();
        for (_, (_, timer)) in table.expiries.drain() {
            timer.abort();
        }
        self.publish(&table);
    }

    /// Starts the timer of a toxic with a `duration`: when it runs out, the toxic is
    /// removed unless it was removed or given a new duration meanwhile.
    fn arm_expiry(self: &Arc<Self>, table: &mut Table, toxic: &Toxic) {
        let Some((_, duration)) = toxic.duration else {
            return;
        };
        let uid = toxic.uid;
        // `duration` is at most a week (toxic.rs); `later` keeps even a bigger one
        // from overflowing the clock.
        let at = later(Instant::now(), duration);
        table.disarm(uid);
        let weak = Arc::downgrade(self);
        let timer = tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let Some(this) = weak.upgrade() else {
                return;
            };
            let mut table = this.lock();
            // A timer replaced while it was waking up finds another deadline here.
            if table.expiries.get(&uid).map(|(deadline, _)| *deadline) != Some(at) {
                return;
            }
            table.expiries.remove(&uid);
            table.toxics.retain(|toxic| toxic.uid != uid);
            this.publish(&table);
        });
        table.expiries.insert(uid, (at, timer.abort_handle()));
    }
}

impl Drop for ToxicTable {
    /// A deleted proxy's `duration` timers go with it instead of sleeping out their
    /// week.
    fn drop(&mut self) {
        let table = self
            .table
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, (_, timer)) in table.expiries.drain() {
            timer.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> ToxicInput {
        serde_json::from_value(json).unwrap()
    }

    #[tokio::test]
    async fn removed_and_retimed_toxics_leave_no_timer_behind() {
        let table = Arc::new(ToxicTable::new(4));
        for round in 0..200 {
            let name = format!("t{round}");
            table
                .add(input(
                    serde_json::json!({"type": "noop", "name": name, "duration": "1h"}),
                ))
                .unwrap();
            table
                .update(&name, input(serde_json::json!({"duration": "2h"})))
                .unwrap();
            table.remove(&name).unwrap();
        }
        assert_eq!(table.timers(), 0);
        table
            .add(input(serde_json::json!({"type": "noop", "duration": "1h"})))
            .unwrap();
        assert_eq!(table.timers(), 1);
        table.clear();
        assert_eq!(table.timers(), 0);
    }

    #[tokio::test]
    async fn one_toxic_past_the_limit_is_refused_with_429() {
        let table = Arc::new(ToxicTable::new(2));
        for name in ["a", "b"] {
            table
                .add(input(serde_json::json!({"type": "noop", "name": name})))
                .unwrap();
        }
        let error = table
            .add(input(serde_json::json!({"type": "noop", "name": "c"})))
            .unwrap_err();
        assert_eq!(error.status(), 429);
        assert!(error.to_string().contains("at most 2 toxics"), "{error}");
        // A name already there is still a 409, whatever the count.
        let error = table
            .add(input(serde_json::json!({"type": "noop", "name": "a"})))
            .unwrap_err();
        assert_eq!(error.status(), 409);
    }
}
