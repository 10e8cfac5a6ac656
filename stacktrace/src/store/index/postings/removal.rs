//! Taking the ids of removed events out of their runs, for removals that are not oldest
//! first (the disk budget): the lazy removal of retention would leave their runs behind,
//! and the index would outgrow any budget.

use super::{decode_ids, max_of, put_runs, run_key, Additions, Postings};
use crate::model::event::EventId;

impl Additions<'_> {
    /// Takes the gathered ids out of the runs of their values: each run holding one is
    /// rewritten without them, under its new greatest id, or deleted when none is left.
    /// Ids not indexed are passed over. The vocabulary keeps its words.
    pub(crate) fn remove(self, postings: &Postings) -> Result<(), sled::Error> {
        let tree = &postings.runs;
        let mut batch = sled::Batch::default();
        let (values, _) = self.by_prefix();
        for (prefix, mut ids) in values {
            ids.sort_unstable();
            ids.dedup();
            let mut i = 0;
            while i < ids.len() {
                // The run that covers ids[i]: the first whose greatest id is at or above it.
                let Some((key, value)) =
                    tree.range(run_key(&prefix, ids[i])..).next().transpose()?
                else {
                    break;
                };
                let Some(max) = max_of(&prefix, &key) else {
                    break;
                };
                let end = i + ids[i..].partition_point(|id| *id <= max);
                let gone: &[EventId] = &ids[i..end];
                let run = decode_ids(&value);
                let kept: Vec<EventId> = run
                    .iter()
                    .copied()
                    .filter(|id| gone.binary_search(id).is_err())
                    .collect();
                if kept.len() != run.len() {
                    // A later insert of the same key (the greatest id kept) wins.
                    batch.remove(key);
                    put_runs(&mut batch, &prefix, &kept);
                }
                i = end;
            }
        }
        tree.apply_batch(batch)
    }
}
