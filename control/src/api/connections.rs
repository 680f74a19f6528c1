//! The cap on open API connections, overall and per client. A connection
//! holds a [`ConnectionSlot`] from accept to close; without one it is
//! answered 503 and closed at once, so that a flood of idle connections
//! costs the process a bounded number of file descriptors.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::client::client_key;

/// Open connections, counted overall and per client.
#[derive(Debug)]
pub struct ConnectionSlots {
    total: Arc<Semaphore>,
    capacity: u32,
    per_client_max: usize,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is taken.
    Full,
    /// This client holds its share.
    ClientFull,
}

/// One open connection's place; given back on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
    client: IpAddr,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.per_client);
        if let Some(n) = counts.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

/// Plain counts: consistent whatever panicked while holding the lock.
fn lock(m: &Mutex<HashMap<IpAddr, usize>>) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ConnectionSlots {
    pub fn new(max: usize, per_client_max: usize) -> Self {
        let capacity = u32::try_from(max)
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        Self {
            total: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            per_client_max: per_client_max.max(1),
            per_client: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for a connection from `client`, if one is free for it.
    pub fn try_take(&self, client: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let client = client_key(client);
        let mut counts = lock(&self.per_client);
        let held = counts.get(&client).copied().unwrap_or(0);
        if held >= self.per_client_max {
            return Err(Refusal::ClientFull);
        }
        let permit = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| Refusal::Full)?;
        counts.insert(client, held + 1);
        Ok(ConnectionSlot {
            _permit: permit,
            client,
            per_client: Arc::clone(&self.per_client),
        })
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.capacity as usize - self.total.available_permits()
    }

    /// Waits until every connection has given its slot back.
    pub async fn all_closed(&self) {
        let _ = self.total.acquire_many(self.capacity).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_cap_holds_overall_and_per_client_and_slots_come_back_on_drop() {
        let slots = ConnectionSlots::new(3, 2);
        let a1 = slots.try_take(ip("192.0.2.1")).unwrap();
        let _a2 = slots.try_take(ip("192.0.2.1")).unwrap();
        assert_eq!(
            slots.try_take(ip("192.0.2.1")).unwrap_err(),
            Refusal::ClientFull
        );
        let _b1 = slots.try_take(ip("192.0.2.2")).unwrap();
        assert_eq!(slots.try_take(ip("192.0.2.3")).unwrap_err(), Refusal::Full);
        assert_eq!(slots.open(), 3);
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _c1 = slots.try_take(ip("192.0.2.3")).unwrap();
    }

    #[test]
    fn addresses_of_one_ipv6_64_share_a_client_share() {
        let slots = ConnectionSlots::new(10, 1);
        let _a = slots.try_take(ip("2001:db8::1")).unwrap();
        assert_eq!(
            slots.try_take(ip("2001:db8::2")).unwrap_err(),
            Refusal::ClientFull
        );
    }
}
