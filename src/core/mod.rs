//! The routing core: every routing decision of SPEC section 4, and nothing else.
//!
//! Pure and deterministic: no I/O, no clock (time is an argument), no async, no
//! metrics. Adapters feed it [`Command`]s and carry out the [`Effect`]s it
//! returns; the same commands at the same times give the same effects.
//!
//! * [`types`], [`settings`] — vocabulary and the rules' numbers.
//! * [`priority`], [`levels`], [`staffing`] — pure rule functions.
//! * [`matching`], [`agents`], [`queue`] — the indexes that keep a decision
//!   at O(log n): agents ready for work by proficiency, occupancy and idle
//!   time; waiting inquiries by fixed rank.
//! * [`id_index`], [`record_table`] — records by string id at 8 bytes a
//!   bucket, in a table that grows without moving them.
//! * [`router`] — the state machine tying them together.

pub mod agents;
pub mod command;
pub mod effect;
pub mod error;
pub mod id_index;
pub mod levels;
pub mod matching;
pub mod priority;
pub mod queue;
pub mod record_table;
pub mod router;
pub mod settings;
pub mod snapshot;
pub mod staffing;
pub mod testkit;
pub mod types;

pub use command::{Actor, Command, Presence, Role, TransferTarget};
pub use effect::{Effect, Event, EventKind, LevelChange, Offer, Scope};
pub use error::CoreError;
pub use router::{Router, SettingsError};
pub use settings::RoutingSettings;
pub use types::*;
