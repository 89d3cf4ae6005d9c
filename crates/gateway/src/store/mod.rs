//! The gateway's SQLite store, one module per domain: opening it, step-ups, decisions, approvers,
//! agents and target systems, grants, and the event log.

mod agents;
mod approvers;
mod decisions;
mod events;
mod grants;
mod open;
mod step_ups;

pub use agents::{add_agent, add_system, agent_owners, agent_workload, agents, remove_agent, system_of};
pub use approvers::{
    add_approver, approver, approvers, key_known, remove_approver, rotate_approver, Approver, EnrolError,
};
pub use decisions::{decisions, DecisionSummary};
pub use events::{append_event, events_after};
pub use grants::{approved_actions, grant, insert_grant, revoke_grant, use_grant, GrantRow};
pub use open::{open, private_dir, private_file, DB_FILE};
pub use step_ups::{step_up, step_up_by_idempotency_key, step_ups_in_state, StepUpPage, StepUpRow};

use sqlx::sqlite::SqlitePool;

/// A write transaction: `BEGIN IMMEDIATE` takes the write lock up front, waiting out the busy
/// timeout. A deferred transaction that reads and then writes fails at once with "database is
/// locked" when another connection (another request, or the admin CLI) wrote in between.
pub async fn write_tx(db: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    db.begin_with("BEGIN IMMEDIATE").await
}
