//! Server-sent events: everything that happens (transitions, vetoes,
//! overrides, activations, policy events) fanned out to subscribers, each
//! of whom sees only their own scope.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use super::{now, Services};
use crate::auth::Principal;
use crate::domain::token::Role;

/// How many events a slow subscriber may fall behind before it misses some.
const BUFFER: usize = 1024;

/// One event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// `transition`, `veto`, `override`, `policy_activated`, `policy_event`, …
    pub kind: String,
    /// When it happened.
    #[serde(with = "crate::domain::time::ms")]
    pub at: DateTime<Utc>,
    /// The branch it concerns; `None` for global events (seen by everyone).
    pub branch: Option<String>,
    /// The rep it concerns (deal owner), if any: reps see only their own.
    pub owner: Option<String>,
    /// Details.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// The fan-out.
pub struct EventBus {
    /// The sender; subscribers hold receivers.
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BUFFER).0,
        }
    }
}

impl Event {
    /// Whether `caller` may see this event.
    pub fn visible_to(&self, caller: &Principal) -> bool {
        if caller.is_admin() {
            return true;
        }
        match &self.branch {
            None => true,
            Some(b) if caller.branch.as_deref() != Some(b.as_str()) => false,
            Some(_) => {
                caller.role != Role::Rep || self.owner.as_deref().is_none_or(|o| o == caller.user)
            }
        }
    }
}

impl Services {
    /// Publishes an event (dropped when nobody listens).
    pub(crate) fn publish(
        &self,
        kind: &str,
        branch: Option<&str>,
        owner: Option<&str>,
        data: Value,
    ) {
        let _ = self.events.tx.send(Event {
            kind: kind.into(),
            at: now(),
            branch: branch.map(str::to_string),
            owner: owner.map(str::to_string),
            data,
        });
    }

    /// A new subscription to every event (filter with [`Event::visible_to`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.tx.subscribe()
    }
}
