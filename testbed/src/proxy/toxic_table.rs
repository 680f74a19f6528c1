//! A proxy's toxics: the ordered list the API edits, published to live links as an
//! immutable snapshot. Edits take a short lock and never wait for a connection, so the
//! API answers at once however busy the proxy is.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;

use super::error::ApiError;
use super::pipeline::ToxicList;
use super::toxic::{Toxic, ToxicInput};

#[derive(Debug)]
struct Table {
    toxics: Vec<Arc<Toxic>>,
    next_uid: u64,
    /// Per toxic uid, when its `duration` runs out (the timer checks it still holds).
    expiries: Vec<(u64, Instant)>,
}

/// The toxic list of one proxy.
#[derive(Debug)]
pub struct ToxicTable {
    table: Mutex<Table>,
    published: watch::Sender<ToxicList>,
}

impl Default for ToxicTable {
    fn default() -> Self {
        ToxicTable {
            table: Mutex::new(Table {
                toxics: Vec::new(),
                next_uid: 1,
                expiries: Vec::new(),
            }),
            published: watch::Sender::new(Arc::new(Vec::new())),
        }
    }
}

impl ToxicTable {
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
        let before = table.toxics.len();
        table.toxics.retain(|toxic| toxic.name != name);
        if table.toxics.len() == before {
            return Err(ApiError::ToxicNotFound(name.to_owned()));
        }
        self.publish(&table);
        Ok(())
    }

    pub fn clear(&self) {
        let mut table = self.lock();
        table.toxics.clear();
        table.expiries.clear();
        self.publish(&table);
    }

    /// Starts the timer of a toxic with a `duration`: when it runs out, the toxic is
    /// removed unless it was removed or given a new duration meanwhile.
    fn arm_expiry(self: &Arc<Self>, table: &mut Table, toxic: &Toxic) {
        let Some((_, duration)) = toxic.duration else {
            return;
        };
        let uid = toxic.uid;
        let at = Instant::now() + duration;
        table.expiries.retain(|(other, _)| *other != uid);
        table.expiries.push((uid, at));
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let Some(this) = weak.upgrade() else {
                return;
            };
            let mut table = this.lock();
            if !table.expiries.contains(&(uid, at)) {
                return;
            }
            table.expiries.retain(|(other, _)| *other != uid);
            table.toxics.retain(|toxic| toxic.uid != uid);
            this.publish(&table);
        });
    }
}
