//! A backend's health as consecutive check results move it: `fall` failures
//! in a row take an up backend down, `rise` successes in a row bring a down
//! one back (the rule of `HAProxy` and of Katran's health checker), so one
//! lost probe does not flap the Maglev table.

use std::fmt;

/// Up or down, and how many results in a row have disagreed with that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthState {
    up: bool,
    /// Consecutive results contradicting `up` (failures while up,
    /// successes while down); an agreeing result resets it.
    streak: u32,
}

/// A change of state caused by a check result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    WentDown,
    CameUp,
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WentDown => "down",
            Self::CameUp => "up",
        })
    }
}

impl HealthState {
    /// Up: where every backend starts (up until proven down).
    pub const UP: Self = Self {
        up: true,
        streak: 0,
    };

    /// Down, with no result against it yet (a backend a health checker
    /// found dead).
    pub const DOWN: Self = Self {
        up: false,
        streak: 0,
    };

    pub const fn is_up(self) -> bool {
        self.up
    }

    /// Records one check result; returns the transition it completed, if any.
    /// `rise` and `fall` below 1 count as 1.
    pub fn record(&mut self, healthy: bool, rise: u32, fall: u32) -> Option<Transition> {
        if healthy == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up { fall } else { rise };
        if self.streak < needed.max(1) {
            return None;
        }
        self.up = healthy;
        self.streak = 0;
        Some(if healthy {
            Transition::CameUp
        } else {
            Transition::WentDown
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_failures_in_a_row_take_a_backend_down() {
        let mut h = HealthState::UP;
        assert_eq!(h.record(false, 2, 3), None);
        assert_eq!(h.record(false, 2, 3), None);
        assert_eq!(h.record(false, 2, 3), Some(Transition::WentDown));
        assert!(!h.is_up());
        assert_eq!(h.record(false, 2, 3), None, "already down");
    }

    #[test]
    fn a_success_between_failures_restarts_the_count() {
        let mut h = HealthState::UP;
        for _ in 0..10 {
            assert_eq!(h.record(false, 2, 3), None);
            assert_eq!(h.record(false, 2, 3), None);
            assert_eq!(h.record(true, 2, 3), None);
        }
        assert!(h.is_up());
    }

    #[test]
    fn rise_successes_in_a_row_bring_it_back() {
        let mut h = HealthState::UP;
        assert_eq!(h.record(false, 2, 1), Some(Transition::WentDown));
        assert_eq!(h.record(true, 2, 1), None);
        assert_eq!(h.record(false, 2, 1), None, "a failure restarts the rise");
        assert_eq!(h.record(true, 2, 1), None);
        assert_eq!(h.record(true, 2, 1), Some(Transition::CameUp));
        assert!(h.is_up());
    }

    #[test]
    fn counts_of_zero_act_as_one() {
        let mut h = HealthState::UP;
        assert_eq!(h.record(false, 0, 0), Some(Transition::WentDown));
        assert_eq!(h.record(true, 0, 0), Some(Transition::CameUp));
    }
}
