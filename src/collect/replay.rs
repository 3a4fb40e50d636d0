//! `autovolt rejected replay`: one dead letter processed again, as the collector would have, once
//! the operator fixed what refused it.

use super::process::{Incoming, Processor};
use crate::domain::Id;
use crate::store::{Store, StoreError};
use chrono_tz::Tz;

/// How a replay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Processed; the dead letter is removed.
    Done,
    /// Refused again (the reason code); the dead letter stays, its reason updated.
    RefusedAgain(String),
    /// Only the first bytes of it were kept: it cannot be replayed.
    Truncated,
    NotFound,
}

/// Processes dead letter `id` through the collector's processor and removes it if that succeeds.
/// It is timed at its first arrival, and as a redelivery: a late message never moves a board's
/// clock to a new boot, and an old snapshot never overrides the relays.
pub async fn replay(store: &Store, tz: Tz, id: Id) -> Result<Replayed, StoreError> {
    let Some(letter) = store.dead_letter(id).await? else {
        return Ok(Replayed::NotFound);
    };
    if letter.truncated {
        return Ok(Replayed::Truncated);
    }
    let msg = Incoming {
        topic: letter.topic.clone(),
        payload: letter.payload.bytes.clone(),
        received: letter.received_at,
        redelivered: true,
    };
    let mut processor = Processor::new(store.clone(), tz);
    let refused = match processor.process(std::slice::from_ref(&msg)).await {
        Ok(refusals) => refusals
            .first()
            .map(|r| (r.reason.to_string(), r.reason.to_string())),
        Err(e) if e.is_permanent() => Some((e.reason_code().to_string(), e.to_string())),
        Err(e) => return Err(e),
    };
    match refused {
        None => {
            store.remove_dead_letter(id).await?;
            Ok(Replayed::Done)
        }
        Some((reason, detail)) => {
            store
                .dead_letter_replay_failed(id, &reason, &detail)
                .await?;
            Ok(Replayed::RefusedAgain(reason))
        }
    }
}
