//! Draft validation: shape and sizes of everything an agent submits, before the policy sees it.

use countersign_protocol::StepUpDraft;
use serde_json::Value;

use crate::error::ApiError;

/// Most actions in one request.
pub const MAX_ACTIONS: usize = 64;

fn check_len(field: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.chars().count() > max {
        return Err(ApiError::malformed(format!("{field} is longer than {max} characters")));
    }
    Ok(())
}

pub(super) fn check_nonempty(field: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.trim().is_empty() {
        return Err(ApiError::malformed(format!("{field} must not be empty")));
    }
    check_len(field, s, max)
}

fn check_strings(field: &str, v: &Value, max: usize) -> Result<(), ApiError> {
    match v {
        Value::String(s) => check_len(field, s, max),
        Value::Array(a) => a.iter().try_for_each(|x| check_strings(field, x, max)),
        Value::Object(o) => o.iter().try_for_each(|(k, x)| {
            check_len(field, k, 256)?;
            check_strings(field, x, max)
        }),
        _ => Ok(()),
    }
}

/// Validate a draft's shape and sizes (the body size is capped before this).
pub fn validate_draft(d: &StepUpDraft) -> Result<(), ApiError> {
    let id = &d.identity;
    if !id.workload.starts_with("spiffe://") {
        return Err(ApiError::malformed("identity.workload must be a spiffe:// id"));
    }
    check_nonempty("identity.workload", &id.workload, 512)?;
    check_nonempty("identity.display", &id.display, 200)?;
    if id.on_behalf_of.len() > 8 {
        return Err(ApiError::malformed("identity.on_behalf_of has more than 8 principals"));
    }
    for p in &id.on_behalf_of {
        check_nonempty("identity.on_behalf_of.sub", &p.sub, 320)?;
        check_len("identity.on_behalf_of.display", &p.display, 200)?;
    }
    if let Some(c) = &id.credential {
        check_len("identity.credential.kind", &c.kind, 64)?;
        check_len("identity.credential.expires_at", c.expires_at.as_deref().unwrap_or(""), 64)?;
    }
    check_nonempty("purpose.code", &d.purpose.code, 128)?;
    check_nonempty("purpose.statement", &d.purpose.statement, 2000)?;
    if d.data.categories.len() > 32 {
        return Err(ApiError::malformed("data.categories has more than 32 entries"));
    }
    for c in &d.data.categories {
        check_nonempty("data.categories", c, 64)?;
    }
    check_nonempty("target.system", &d.target.system, 128)?;
    check_nonempty("target.environment", &d.target.environment, 64)?;
    if d.actions.is_empty() || d.actions.len() > MAX_ACTIONS {
        return Err(ApiError::malformed(format!("actions must hold 1 to {MAX_ACTIONS} steps")));
    }
    for a in &d.actions {
        check_nonempty("actions.tool", &a.tool, 128)?;
        check_len("actions.operation", a.operation.as_deref().unwrap_or(""), 128)?;
        check_len("actions.target", a.target.as_deref().unwrap_or(""), 1024)?;
        check_strings("actions.args", &Value::Object(a.args.clone()), 16_384)?;
        for t in a.datatypes.iter().flatten() {
            check_len("actions.datatypes", t, 64)?;
        }
    }
    Ok(())
}
