//! The disk budget's duty on the background worker: each turn looks at the store's
//! estimated size (an atomic read), and once it is over the budget removes events a slice
//! a turn until it is at 90% of it (see the store's budget module). The budget is recorded
//! in the database for the tool and the dashboard to show.

use std::time::{Duration, Instant};

use crate::model::event::EventId;
use crate::runtime::guard::store as current_store;
use crate::runtime::worker::{Duty, Turn};
use crate::store::{low_water, Store, BUDGET_SLICE};

/// How long the duty waits after a plan that removed nothing (only first and latest events
/// are left) or a failed removal, before it looks again.
const BACK_OFF: Duration = Duration::from_secs(60);

/// Holds the running program's database to its disk budget.
#[derive(Debug)]
pub(crate) struct BudgetDuty {
    /// Bytes; 0 is no budget.
    budget: u64,
    /// The address of the database the budget was recorded in: tells the database in use
    /// from an earlier one, never read through.
    recorded: Option<usize>,
    /// The events still to remove, the next last.
    plan: Vec<EventId>,
    /// Events the plan removed so far.
    plan_removed: u64,
    /// No look before this.
    resting_until: Option<Instant>,
    /// Whether a failure was said.
    said: bool,
}

impl BudgetDuty {
    pub(crate) fn new(budget: u64) -> BudgetDuty {
        BudgetDuty {
            budget,
            recorded: None,
            plan: Vec::new(),
            plan_removed: 0,
            resting_until: None,
            said: false,
        }
    }

    fn over(&self, store: &Store) -> bool {
        self.budget > 0 && store.estimated_size() > self.budget
    }

    fn resting(&self) -> bool {
        self.resting_until.is_some_and(|t| Instant::now() < t)
    }

    fn rest(&mut self, failure: Option<crate::error::StoreError>) -> Turn {
        self.plan.clear();
        self.resting_until = Some(Instant::now() + BACK_OFF);
        if let Some(e) = failure {
            if !std::mem::replace(&mut self.said, true) {
                crate::diag::say(&format!(
                    "stacktrace: events could not be removed to hold the disk budget: {e}"
                ));
            }
        }
        Turn::Done
    }
}

impl Duty for BudgetDuty {
    fn turn(&mut self) -> Turn {
        let Some(store) = current_store() else {
            return Turn::Idle;
        };
        let address = store as *const Store as usize;
        if self.recorded != Some(address) {
            self.recorded = Some(address);
            let _ = store.record_disk_budget(self.budget);
        }
        if self.plan.is_empty() {
            if !self.over(store) || self.resting() {
                return Turn::Idle;
            }
            match store.budget_plan(low_water(self.budget)) {
                Ok(plan) if !plan.is_empty() => {
                    self.plan = plan;
                    self.plan.reverse();
                    self.plan_removed = 0;
                }
                Ok(_) => return self.rest(None),
                Err(e) => return self.rest(Some(e)),
            }
        }
        let slice: Vec<EventId> = self
            .plan
            .drain(self.plan.len().saturating_sub(BUDGET_SLICE)..)
            .collect();
        match store.remove_for_budget(&slice) {
            Ok(done) => self.plan_removed += done.events,
            Err(e) => return self.rest(Some(e)),
        }
        if store.estimated_size() <= low_water(self.budget) {
            self.plan.clear();
            return Turn::Done;
        }
        if self.plan.is_empty() && self.plan_removed == 0 {
            return self.rest(None);
        }
        Turn::More
    }

    fn is_empty(&self) -> bool {
        self.plan.is_empty() && (self.resting() || current_store().is_none_or(|s| !self.over(s)))
    }
}
