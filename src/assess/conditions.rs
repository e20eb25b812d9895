//! An object's conditions and generations, read into one verdict.

use crate::flux::{Condition, ConditionStatus, Conditions};

use crate::model::{Readiness, ResourceState, reasons};

/// The object-level verdict from conditions alone.
pub(super) struct Verdict {
    pub(super) state: ResourceState,
    pub(super) ready: Readiness,
    pub(super) reason: String,
    pub(super) message: String,
    /// Ready=Unknown or Reconciling=True without a terminal condition.
    pub(super) in_progress: bool,
}

pub(super) fn verdict(
    conditions: &Conditions,
    generation: Option<i64>,
    observed: Option<i64>,
    suspended: bool,
) -> Verdict {
    let ready_condition = conditions.get("Ready");
    let ready = match ready_condition.map(|c| c.status) {
        Some(ConditionStatus::True) => Readiness::True,
        Some(ConditionStatus::False) => Readiness::False,
        _ => Readiness::Unknown,
    };
    let from = |state, c: &Condition| Verdict {
        state,
        ready,
        reason: c.reason.clone(),
        message: c.message.clone(),
        in_progress: false,
    };
    if suspended {
        return Verdict {
            state: ResourceState::Suspended,
            ready,
            reason: reasons::SUSPENDED.to_string(),
            message: "reconciliation is suspended".to_string(),
            in_progress: false,
        };
    }
    if let Some(stalled) = conditions
        .get("Stalled")
        .filter(|c| c.status == ConditionStatus::True)
    {
        return from(ResourceState::Failure, stalled);
    }
    let reconciling = conditions
        .get("Reconciling")
        .filter(|c| c.status == ConditionStatus::True);
    let generation_pending = matches!(generation, Some(g) if observed != Some(g));
    match ready_condition {
        None => Verdict {
            state: ResourceState::Pending,
            ready,
            reason: reasons::QUEUED.to_string(),
            message: "waiting for the first reconciliation".to_string(),
            in_progress: false,
        },
        Some(c) if c.status == ConditionStatus::False => {
            if c.reason == reasons::DEPENDENCY_NOT_READY {
                from(ResourceState::Pending, c)
            } else {
                from(ResourceState::Failure, c)
            }
        }
        Some(c)
            if c.status == ConditionStatus::True
                && !generation_pending
                && reconciling.is_none() =>
        {
            from(ResourceState::Success, c)
        }
        Some(c) if c.status == ConditionStatus::True && generation_pending => Verdict {
            state: ResourceState::Pending,
            ready,
            reason: reasons::SPEC_CHANGE_PENDING.to_string(),
            message: format!(
                "generation {} not yet reconciled (observed {})",
                generation.unwrap_or_default(),
                observed.map_or_else(|| "none".to_string(), |o| o.to_string())
            ),
            in_progress: false,
        },
        Some(c) => {
            let shown = reconciling.unwrap_or(c);
            let mut v = from(ResourceState::Pending, shown);
            if v.reason.is_empty() {
                v.reason = reasons::PROGRESSING.to_string();
            }
            v.in_progress = true;
            v
        }
    }
}
