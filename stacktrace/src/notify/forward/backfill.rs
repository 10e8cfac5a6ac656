//! Sending a whole existing database, for a machine that was offline: every event (from a
//! time on) is put in the outbox, then the outbox is sent as the forwarder sends it.

use std::time::Duration;

use super::config::ForwardConfig;
use super::event::Additions;
use super::forwarder::{send_outbox, Backoff, Delivery};
use super::send::Sender;
use crate::error::StoreError;
use crate::model::event::EventId;
use crate::store::{ForwardCounts, Store};

/// The longest wait a backfill sits through (a rate limit, a back-off) before it stops
/// and leaves the rest in the outbox for the next run or the program.
const LONGEST_WAIT: Duration = Duration::from_secs(120);

/// What a backfill would send: the events at or above the minimum level from `since_us`.
pub fn backfill_candidates(
    store: &Store,
    config: &ForwardConfig,
    since_us: u64,
) -> Result<Vec<EventId>, StoreError> {
    let mut ids = Vec::new();
    store.visit_all_from(since_us, |e| {
        if e.level >= config.min_level {
            ids.push(e.id);
        }
    })?;
    Ok(ids)
}

/// Puts `ids` in the outbox (those already there keep their records; those the server
/// already took are sent again, which servers drop by `event_id`), then sends the outbox,
/// calling `progress(done, total)` after each event. Stops early when the server asks for
/// a wait longer than two minutes. The counts after.
pub fn backfill(
    store: &Store,
    config: &ForwardConfig,
    ids: &[EventId],
    mut progress: impl FnMut(usize, usize),
) -> Result<ForwardCounts, String> {
    let sender = Sender::new(config).map_err(|e| e.to_string())?;
    store.mark_unsent(ids).map_err(|e| e.to_string())?;
    let additions = Additions {
        environment: config.environment.clone(),
    };
    let delivery = Delivery {
        store,
        sender: &sender,
        additions: &additions,
        give_up_after: config.give_up_after,
    };
    let total = store.unsent_count();
    let mut done = 0;
    send_outbox(
        &delivery,
        &mut Backoff::new(config),
        |wait| wait <= LONGEST_WAIT,
        || {
            done += 1;
            progress(done, total);
        },
    )
    .map_err(|e| e.to_string())?;
    store.flush().map_err(|e| e.to_string())?;
    store.forward_counts().map_err(|e| e.to_string())
}
