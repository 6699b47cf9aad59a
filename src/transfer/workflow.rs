//! Transfer steps as an officer meets them: every box, view and step asks the access policy
//! about the transfer (parties, held, a DV child) before anything else is read, so a transfer
//! the officer may not see answers exactly like one that does not exist.

use crate::access::{self, TransferFacts, TransferUse, Verdict};
use crate::audit::AuditEntry;
use crate::auth::Principal;
use crate::store::transfers::{self as store_transfers, Transfer};
use crate::store::{DbConn, StoreError, StoreResult};
use crate::transfer::{DeclineReason, Step, TransferBox, TransferStatus};

/// The transfer with this id and the policy's verdict on `using` it. The same queries run
/// whether or not the transfer exists.
pub fn judge(
    conn: &mut DbConn,
    caller: &Principal,
    using: TransferUse,
    id: i64,
) -> StoreResult<(Option<Transfer>, Verdict)> {
    let transfer = store_transfers::get(conn, id)?;
    let origin = transfer.as_ref().map(|t| t.municipality_code.as_str());
    let includes_support_measure = store_transfers::includes_support_measure(conn, id, origin)?;
    let verdict = match &transfer {
        None => Verdict::Hide(access::Hidden::Missing),
        Some(t) => access::decide_transfer(caller, using, &facts(t, includes_support_measure)),
    };
    Ok((transfer, verdict))
}

/// The transfer, if `caller` may use it so; otherwise "not found".
pub fn visible(
    conn: &mut DbConn,
    caller: &Principal,
    using: TransferUse,
    id: i64,
) -> StoreResult<Transfer> {
    match judge(conn, caller, using, id)? {
        (Some(transfer), Verdict::Allow) => Ok(transfer),
        _ => Err(StoreError::NotFound),
    }
}

/// Decline, cancel or claim a transfer, if the policy lets `caller` take that step on it;
/// otherwise "not found". Repeating the same step is harmless.
pub fn take_step(
    conn: &mut DbConn,
    caller: &Principal,
    id: i64,
    step: Step,
    decline_reason: Option<DeclineReason>,
    decided_by: &str,
    audit: &AuditEntry,
) -> StoreResult<Transfer> {
    visible(conn, caller, TransferUse::from(step), id)?;
    store_transfers::step(
        conn,
        id,
        &caller.municipality,
        step,
        decline_reason,
        decided_by,
        audit,
    )
}

fn facts(transfer: &Transfer, includes_support_measure: bool) -> TransferFacts<'_> {
    TransferFacts {
        origin: &transfer.municipality_code,
        destination: transfer.destination_code.as_deref(),
        held: transfer.status == TransferStatus::Held,
        includes_support_measure,
    }
}

/// The transfers of one box that `caller` may see. Arrivals are matched against the caller's
/// subjects only for held transfers the policy lets it match.
pub fn mailbox(
    conn: &mut DbConn,
    caller: &Principal,
    which: TransferBox,
) -> StoreResult<Vec<Transfer>> {
    let using = match which {
        TransferBox::Held => TransferUse::View,
        TransferBox::Arrivals => TransferUse::MatchArrivals,
        TransferBox::Inbox | TransferBox::Outbox | TransferBox::Escalated => TransferUse::List,
    };
    let mut shown = Vec::new();
    for transfer in store_transfers::list(conn, &caller.municipality, which)? {
        let dv = store_transfers::includes_support_measure(
            conn,
            transfer.id,
            Some(&transfer.municipality_code),
        )?;
        if !access::decide_transfer(caller, using, &facts(&transfer, dv)).is_allowed() {
            continue;
        }
        if which == TransferBox::Arrivals
            && !store_transfers::has_arrived(conn, transfer.id, &caller.municipality)?
        {
            continue;
        }
        shown.push(transfer);
    }
    Ok(shown)
}
