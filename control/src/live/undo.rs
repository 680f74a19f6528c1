//! What the balancer has changed on its host, as a stack of undo steps that
//! every way out runs, and the panic hook that runs them when nothing else
//! will.
//!
//! What a panic means here: the balancer stops, and the host is put back
//! first. Release builds abort on panic (`panic = "abort"`): no destructor
//! runs, so the hook installed by [`install_panic_hook`] runs the steps
//! itself, after printing the panic and before the abort. In builds that
//! unwind (tests, debug), a panic on the control thread unwinds through the
//! [`super::host_changes::HostChanges`] guard, which runs them; a worker that
//! panics ends its thread, and the control loop, seeing a worker gone, stops
//! the balancer the normal way. There the hook leaves the steps alone: tokio
//! catches a panicking task and the balancer runs on, so putting the host
//! back under it would leave it forwarding with its host rules gone.

use std::sync::{Mutex, MutexGuard, Once, PoisonError};

/// One change to put back; it says what it did (through `tracing`).
pub trait UndoStep: Send {
    fn undo(self: Box<Self>);
}

/// The steps, in the order the changes were made.
static STEPS: Mutex<Vec<Box<dyn UndoStep>>> = Mutex::new(Vec::new());

fn steps() -> MutexGuard<'static, Vec<Box<dyn UndoStep>>> {
    // A list of boxes: consistent whatever panicked while holding it.
    STEPS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records a change just made on the host.
pub fn push(step: Box<dyn UndoStep>) {
    steps().push(step);
}

/// Runs every recorded step, the last change first, each once.
pub fn undo_all() {
    // Taken one at a time, the lock released while a step runs: a step
    // that panicked leaves the rest to whoever runs next.
    loop {
        let Some(step) = steps().pop() else {
            return;
        };
        step.undo();
    }
}

/// Whether the panic hook puts the host back: only where a panic ends the
/// process (see the module's docs).
const HOOK_UNDOES: bool = cfg!(panic = "abort");

/// Installs, once, the hook that prints the panic as usual and then, where a
/// panic aborts, puts the host back.
pub fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            if HOOK_UNDOES {
                on_fatal_panic();
            }
        }));
    });
}

/// The hook's work: every step, unless another thread is running them (it
/// holds the list; waiting could deadlock if that thread is the one that
/// panicked mid-step).
fn on_fatal_panic() {
    eprintln!("rusty_rail: panicked; putting the host back before the process aborts");
    loop {
        let step = match STEPS.try_lock() {
            Ok(mut steps) => steps.pop(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().pop(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        let Some(step) = step else {
            return;
        };
        step.undo();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Record(&'static str, Arc<Mutex<Vec<&'static str>>>);

    impl UndoStep for Record {
        fn undo(self: Box<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    // One test: the list is the process's.
    #[test]
    fn steps_run_last_change_first_each_once_from_any_way_out() {
        let done = Arc::new(Mutex::new(Vec::new()));
        push(Box::new(Record("offloads", done.clone())));
        push(Box::new(Record("nftables", done.clone())));
        undo_all();
        undo_all();
        assert_eq!(*done.lock().unwrap(), ["nftables", "offloads"]);

        push(Box::new(Record("after a panic", done.clone())));
        on_fatal_panic();
        on_fatal_panic();
        assert_eq!(done.lock().unwrap().last(), Some(&"after a panic"));
        assert_eq!(done.lock().unwrap().len(), 3);
    }
}
