//! Who may see what: the one place that decides whether a caller may use a child's personal
//! data (or a transfer carrying it). Every route and CLI command that reads, lists, matches,
//! offers, exports or imports personal data asks this module; nothing else compares roles with
//! towns or looks at the DV flag to decide visibility.
//!
//! The policy is pure: it sees the caller, what the caller wants to do, and facts about the
//! subject read with one cheap lookup *before* any expensive query, so a child the caller may
//! not see takes the same path (and time) as a child that does not exist.

use crate::auth::{Principal, Role, Scope};
use crate::transfer::Step;

/// Facts about one child that decide its visibility.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildFacts {
    /// Under a DV support measure (支援措置), now or in any earlier version of its record.
    pub support_measure: bool,
    /// A guardian objected (不同意) to screening use.
    pub opted_out: bool,
}

/// What the caller wants to do with a child of `municipality`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildUse {
    /// Read the child's profile, records or change-feed entries; `screening` when the declared
    /// purpose is a screening one (opted-out children leave those views).
    Read { screening: bool },
    /// Record or withdraw a guardian's objection.
    RecordObjection,
    /// Review identity matches (the child may appear as a candidate).
    ReviewIdentity,
    /// Offer the child in a transfer from the caller's town.
    OfferInTransfer,
    /// Read the child's audit trail (disclosure request, 開示請求).
    ReadAuditTrail,
    /// See the child on a screening worklist, or record the case meeting's decision on it:
    /// a screening view whatever the declared purpose.
    Worklist,
    /// See the decision a case meeting shared with the child's school (the caller speaks for
    /// that school).
    SchoolShare,
}

impl ChildUse {
    /// The role the use needs in the child's municipality.
    fn role(self) -> Role {
        match self {
            ChildUse::Read { .. } | ChildUse::RecordObjection | ChildUse::ReviewIdentity => {
                Role::Caseworker
            }
            ChildUse::OfferInTransfer => Role::TransferOfficer,
            ChildUse::ReadAuditTrail => Role::Auditor,
            ChildUse::Worklist => Role::Caseworker,
            ChildUse::SchoolShare => Role::School,
        }
    }

    /// Is this a screening view, which opted-out children leave?
    fn screens(self) -> bool {
        matches!(
            self,
            ChildUse::Read { screening: true } | ChildUse::Worklist | ChildUse::SchoolShare
        )
    }
}

/// Why something is hidden. The caller always gets the same "not found" answer; only the audit
/// trail (shown to an auditor through [`shown_result`]) keeps the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hidden {
    /// It does not exist.
    Missing,
    /// The caller lacks the role in that municipality (another town's child, or no role).
    Role,
    /// Under a DV support measure and the caller lacks `support-measure-reader`.
    SupportMeasure,
    /// Opted out and the purpose is a screening one.
    OptedOut,
    /// A transfer the caller's town is not a party to.
    NotParty,
    /// The caller is bound to a council or the nation, which never see personal data.
    Scope,
}

impl Hidden {
    /// The result recorded in the audit trail.
    pub fn audit_result(self) -> &'static str {
        match self {
            Hidden::Missing => NOT_FOUND,
            Hidden::Role => "denied:role",
            Hidden::SupportMeasure => DENIED_SUPPORT_MEASURE,
            Hidden::OptedOut => "excluded:opt_out",
            Hidden::NotParty => "denied:not_party",
            Hidden::Scope => "denied:scope",
        }
    }
}

const NOT_FOUND: &str = "not_found";
const DENIED_SUPPORT_MEASURE: &str = "denied:support_measure";

/// The answer of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Hide(Hidden),
}

impl Verdict {
    pub fn is_allowed(self) -> bool {
        self == Verdict::Allow
    }

    /// The result recorded in the audit trail.
    pub fn audit_result(self) -> &'static str {
        match self {
            Verdict::Allow => "ok",
            Verdict::Hide(hidden) => hidden.audit_result(),
        }
    }
}

/// May the caller see children under a DV support measure in its own town?
fn sees_support_measure(caller: &Principal) -> bool {
    caller.may(Role::SupportMeasureReader, &caller.municipality)
}

/// Does the caller work with children's personal data at all? Only a town's own staff do: a
/// council's operator and national staff see aggregates and operational figures, whatever
/// roles they hold, so every personal route answers them like a child that does not exist.
pub fn handles_personal_data(caller: &Principal) -> bool {
    matches!(caller.scope, Scope::Municipality(_))
}

/// May `caller` use a child of `municipality` this way? `child` is `None` when no such child
/// exists. The scope and role are checked first, so callers from elsewhere learn nothing from
/// the rest.
pub fn decide(
    caller: &Principal,
    municipality: &str,
    using: ChildUse,
    child: Option<&ChildFacts>,
) -> Verdict {
    if !handles_personal_data(caller) {
        return Verdict::Hide(Hidden::Scope);
    }
    if !caller.may(using.role(), municipality) {
        return Verdict::Hide(Hidden::Role);
    }
    visible_child(caller, using, child)
}

/// The child's own rules, for a caller whose role in the town was already established (a
/// source reading its own records' history, say): existence, the DV measure, the objection.
pub fn visible_child(caller: &Principal, using: ChildUse, child: Option<&ChildFacts>) -> Verdict {
    let Some(child) = child else {
        return Verdict::Hide(Hidden::Missing);
    };
    if child.support_measure && !sees_support_measure(caller) {
        return Verdict::Hide(Hidden::SupportMeasure);
    }
    if child.opted_out && using.screens() {
        return Verdict::Hide(Hidden::OptedOut);
    }
    Verdict::Allow
}

/// Does the caller see DV children of `municipality` in lists (household, feed, candidates)?
pub fn lists_support_measure(caller: &Principal, municipality: &str) -> bool {
    caller.may(Role::SupportMeasureReader, municipality)
}

/// May the caller define, adopt and preview screening rule sets of `municipality`, run its
/// worklists and see their counts? (Entries are decided child by child: [`ChildUse::Worklist`].)
pub fn runs_screening(caller: &Principal, municipality: &str) -> bool {
    caller.may(Role::Caseworker, municipality)
}

/// May the caller read what case meetings shared with its school in `municipality`? (Each
/// pupil is decided by [`ChildUse::SchoolShare`].)
pub fn reads_school_shares(caller: &Principal, municipality: &str) -> bool {
    caller.may(Role::School, municipality)
}

/// Is a child screened at all? A guardian's objection (不同意) keeps it out of every
/// worklist, preview and count.
pub fn screened(child: &ChildFacts) -> bool {
    !child.opted_out
}

/// Whose records a caller may read in `municipality`: a caseworker every source's, a source
/// its own, anyone else none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordScope {
    EverySource,
    OwnSource(String),
}

pub fn record_scope(caller: &Principal, municipality: &str) -> Option<RecordScope> {
    if caller.may(Role::Caseworker, municipality) {
        Some(RecordScope::EverySource)
    } else if caller.may(Role::Source, municipality) {
        Some(RecordScope::OwnSource(caller.name.clone()))
    } else {
        None
    }
}

/// Facts about a transfer that decide its visibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferFacts<'a> {
    pub origin: &'a str,
    pub destination: Option<&'a str>,
    /// No destination yet (the family left for an unknown town).
    pub held: bool,
    /// At least one child is under a DV support measure.
    pub includes_support_measure: bool,
}

/// What an officer wants to do with a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferUse {
    /// Read it (and its children's basic information).
    View,
    /// List it among the caller's town's transfers.
    List,
    /// Be told that a held transfer's family may have arrived in the caller's town.
    MatchArrivals,
    Accept,
    Decline,
    Cancel,
    Claim,
    /// Send it to another hub as a signed package.
    Export,
    /// Take a package from another hub into the caller's town's inbox.
    Import,
}

impl From<Step> for TransferUse {
    fn from(step: Step) -> TransferUse {
        match step {
            Step::Accept => TransferUse::Accept,
            Step::Decline => TransferUse::Decline,
            Step::Cancel => TransferUse::Cancel,
            Step::Claim => TransferUse::Claim,
            // The receipt of a package the origin sent comes back to the origin.
            Step::Deliver => TransferUse::Export,
        }
    }
}

/// May `caller` use this transfer? A transfer that includes a DV child exists only for
/// officers holding `support-measure-reader` in their own town: for everyone else it answers
/// like a transfer that does not exist, in every box, step and package.
pub fn decide_transfer(
    caller: &Principal,
    using: TransferUse,
    transfer: &TransferFacts,
) -> Verdict {
    if !handles_personal_data(caller) {
        return Verdict::Hide(Hidden::Scope);
    }
    if !caller.may(Role::TransferOfficer, &caller.municipality) {
        return Verdict::Hide(Hidden::Role);
    }
    let me = caller.municipality.as_str();
    let is_origin = transfer.origin == me;
    let is_destination = transfer.destination == Some(me);
    let party = match using {
        TransferUse::View | TransferUse::List => {
            is_origin || is_destination || (transfer.held && using == TransferUse::View)
        }
        TransferUse::MatchArrivals => transfer.held && !is_origin,
        TransferUse::Claim => (transfer.held && !is_origin) || is_destination,
        TransferUse::Accept | TransferUse::Decline | TransferUse::Import => is_destination,
        TransferUse::Cancel | TransferUse::Export => is_origin,
    };
    if !party {
        return Verdict::Hide(Hidden::NotParty);
    }
    if transfer.includes_support_measure && !sees_support_measure(caller) {
        return Verdict::Hide(Hidden::SupportMeasure);
    }
    Verdict::Allow
}

/// The held transfers listed to officers of other towns (`box=held`): those they could claim.
pub fn lists_held_transfer(caller: &Principal, transfer: &TransferFacts) -> bool {
    decide_transfer(caller, TransferUse::View, transfer).is_allowed()
}

/// What a council administrator previews of an unpublished indicator release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewScope {
    pub towns: Vec<String>,
    /// The council whose totals are shown (none for a town's own administrator).
    pub council: Option<String>,
}

/// May the caller preview unpublished indicators, and of which towns? Council administrators
/// only: a council's operator sees its member towns and the council's totals, a town's own
/// `council-admin` (a town in no council) that town alone; no one else sees a figure before
/// publication.
pub fn previews_indicators(caller: &Principal) -> Option<PreviewScope> {
    if !caller.roles.contains(&Role::CouncilAdmin) {
        return None;
    }
    match &caller.scope {
        Scope::Municipality(town) => Some(PreviewScope {
            towns: vec![town.clone()],
            council: None,
        }),
        Scope::Council { code, towns } => Some(PreviewScope {
            towns: towns.clone(),
            council: Some(code.clone()),
        }),
        Scope::Nation => None,
    }
}

/// May the caller see `council`'s operational figures and client list? Its own operator
/// (`council-admin` bound to that council) only. National staff do not run towns' systems,
/// so they have no use for a town's queues and error rates; a council they may not see
/// answers like one that does not exist.
pub fn operates_council(caller: &Principal, council: &str) -> bool {
    caller.roles.contains(&Role::CouncilAdmin)
        && matches!(&caller.scope, Scope::Council { code, .. } if code == council)
}

/// An audit entry as shown to an auditor. The audit trail keeps every reason, but a result
/// that would disclose a DV support measure is shown as "not found" to an auditor without
/// `support-measure-reader`; for a child hidden from that auditor, only the entries a child
/// that does not exist could have (refusals and earlier audit reads) are shown.
pub fn shown_result<'r>(
    viewer: &Principal,
    subject_hidden: bool,
    action: &str,
    result: &'r str,
) -> Option<&'r str> {
    let sees = sees_support_measure(viewer);
    if subject_hidden {
        return match result {
            "ok" if action == AUDIT_READ => Some(result),
            "ok" => None,
            DENIED_SUPPORT_MEASURE | "excluded:opt_out" => Some(NOT_FOUND),
            other => Some(other),
        };
    }
    match result {
        DENIED_SUPPORT_MEASURE if !sees => Some(NOT_FOUND),
        other => Some(other),
    }
}

/// The action of an auditor's read of a child's trail.
pub const AUDIT_READ: &str = "audit.read";

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(town: &str, roles: &[Role]) -> Principal {
        Principal {
            client_id: 1,
            name: "client".into(),
            scope: Scope::Municipality(town.into()),
            municipality: town.into(),
            roles: roles.to_vec(),
            record_types: None,
            cert_fingerprint: None,
        }
    }

    const TOWN: &str = "131016";
    const OTHER: &str = "011002";

    fn child(support_measure: bool, opted_out: bool) -> ChildFacts {
        ChildFacts {
            support_measure,
            opted_out,
        }
    }

    #[test]
    fn reading_a_child_follows_role_then_existence_then_dv_then_objection() {
        use Hidden::{Missing, OptedOut, SupportMeasure};
        let caseworker = caller(TOWN, &[Role::Caseworker]);
        let dv_reader = caller(TOWN, &[Role::Caseworker, Role::SupportMeasureReader]);
        let source = caller(TOWN, &[Role::Source]);
        let read = ChildUse::Read { screening: false };
        let screen = ChildUse::Read { screening: true };
        let plain = child(false, false);
        let dv = child(true, false);
        let objected = child(false, true);
        let dv_objected = child(true, true);
        let table: Vec<(&Principal, &str, ChildUse, Option<&ChildFacts>, Verdict)> = vec![
            (&caseworker, TOWN, read, Some(&plain), Verdict::Allow),
            (&caseworker, TOWN, read, None, Verdict::Hide(Missing)),
            (
                &caseworker,
                OTHER,
                read,
                Some(&plain),
                Verdict::Hide(Hidden::Role),
            ),
            (&caseworker, OTHER, read, None, Verdict::Hide(Hidden::Role)),
            (
                &source,
                TOWN,
                read,
                Some(&plain),
                Verdict::Hide(Hidden::Role),
            ),
            (
                &caseworker,
                TOWN,
                read,
                Some(&dv),
                Verdict::Hide(SupportMeasure),
            ),
            (&dv_reader, TOWN, read, Some(&dv), Verdict::Allow),
            (
                &caseworker,
                TOWN,
                screen,
                Some(&objected),
                Verdict::Hide(OptedOut),
            ),
            (&caseworker, TOWN, read, Some(&objected), Verdict::Allow),
            (
                &dv_reader,
                TOWN,
                screen,
                Some(&dv_objected),
                Verdict::Hide(OptedOut),
            ),
            (
                &caseworker,
                TOWN,
                ChildUse::RecordObjection,
                Some(&dv),
                Verdict::Hide(SupportMeasure),
            ),
            (
                &caseworker,
                TOWN,
                ChildUse::RecordObjection,
                Some(&objected),
                Verdict::Allow,
            ),
            (
                &caseworker,
                TOWN,
                ChildUse::OfferInTransfer,
                Some(&plain),
                Verdict::Hide(Hidden::Role),
            ),
            (
                &caseworker,
                TOWN,
                ChildUse::ReadAuditTrail,
                Some(&plain),
                Verdict::Hide(Hidden::Role),
            ),
        ];
        for (who, town, using, facts, expected) in table {
            assert_eq!(
                decide(who, town, using, facts),
                expected,
                "{:?} {town} {using:?} {facts:?}",
                who.roles
            );
        }
        let officer = caller(TOWN, &[Role::TransferOfficer]);
        let dv_officer = caller(TOWN, &[Role::TransferOfficer, Role::SupportMeasureReader]);
        let offer = ChildUse::OfferInTransfer;
        assert_eq!(
            decide(&officer, TOWN, offer, Some(&dv)),
            Verdict::Hide(SupportMeasure)
        );
        assert_eq!(decide(&officer, TOWN, offer, None), Verdict::Hide(Missing));
        assert_eq!(decide(&dv_officer, TOWN, offer, Some(&dv)), Verdict::Allow);
        assert_eq!(
            decide(&officer, OTHER, offer, Some(&plain)),
            Verdict::Hide(Hidden::Role)
        );
    }

    fn scoped(scope: Scope, roles: &[Role]) -> Principal {
        Principal {
            municipality: "hub".into(),
            scope,
            ..caller(TOWN, roles)
        }
    }

    #[test]
    fn council_and_national_scopes_never_reach_a_child_or_a_transfer() {
        let every_role = [
            Role::Source,
            Role::Caseworker,
            Role::TransferOfficer,
            Role::CouncilAdmin,
            Role::NationalAnalyst,
            Role::Auditor,
            Role::SupportMeasureReader,
            Role::School,
        ];
        let council = Scope::Council {
            code: "north".into(),
            towns: vec![TOWN.into()],
        };
        let plain = child(false, false);
        let transfer = TransferFacts {
            origin: TOWN,
            destination: Some(OTHER),
            held: false,
            includes_support_measure: false,
        };
        for scope in [council, Scope::Nation] {
            let who = scoped(scope, &every_role);
            assert!(!handles_personal_data(&who));
            for using in [
                ChildUse::Read { screening: false },
                ChildUse::RecordObjection,
                ChildUse::ReviewIdentity,
                ChildUse::OfferInTransfer,
                ChildUse::ReadAuditTrail,
                ChildUse::Worklist,
                ChildUse::SchoolShare,
            ] {
                assert_eq!(
                    decide(&who, TOWN, using, Some(&plain)),
                    Verdict::Hide(Hidden::Scope),
                    "{:?} {using:?}",
                    who.scope
                );
            }
            for using in [TransferUse::View, TransferUse::List, TransferUse::Accept] {
                assert_eq!(
                    decide_transfer(&who, using, &transfer),
                    Verdict::Hide(Hidden::Scope)
                );
            }
            assert_eq!(record_scope(&who, TOWN), None);
            assert!(!runs_screening(&who, TOWN));
            assert!(!lists_support_measure(&who, TOWN));
        }
        assert!(handles_personal_data(&caller(TOWN, &[Role::Caseworker])));
    }

    #[test]
    fn previews_and_operator_views_follow_the_scope() {
        let north = Scope::Council {
            code: "north".into(),
            towns: vec![TOWN.into(), OTHER.into()],
        };
        let operator = scoped(north.clone(), &[Role::CouncilAdmin]);
        assert_eq!(
            previews_indicators(&operator),
            Some(PreviewScope {
                towns: vec![TOWN.into(), OTHER.into()],
                council: Some("north".into()),
            })
        );
        assert!(operates_council(&operator, "north"));
        assert!(!operates_council(&operator, "south"));
        let town_admin = caller(TOWN, &[Role::CouncilAdmin]);
        assert_eq!(
            previews_indicators(&town_admin),
            Some(PreviewScope {
                towns: vec![TOWN.into()],
                council: None,
            })
        );
        assert!(!operates_council(&town_admin, "north"));
        let analyst = scoped(Scope::Nation, &[Role::NationalAnalyst]);
        assert_eq!(previews_indicators(&analyst), None);
        assert!(!operates_council(&analyst, "north"));
        assert_eq!(previews_indicators(&scoped(north, &[])), None);
    }

    #[test]
    fn hidden_children_are_recorded_with_their_reason() {
        assert_eq!(Verdict::Allow.audit_result(), "ok");
        assert_eq!(Verdict::Hide(Hidden::Missing).audit_result(), "not_found");
        assert_eq!(Verdict::Hide(Hidden::Role).audit_result(), "denied:role");
        assert_eq!(
            Verdict::Hide(Hidden::SupportMeasure).audit_result(),
            "denied:support_measure"
        );
        assert_eq!(
            Verdict::Hide(Hidden::OptedOut).audit_result(),
            "excluded:opt_out"
        );
        assert_eq!(
            Verdict::Hide(Hidden::NotParty).audit_result(),
            "denied:not_party"
        );
        assert_eq!(Verdict::Hide(Hidden::Scope).audit_result(), "denied:scope");
    }

    #[test]
    fn record_scope_is_every_source_for_caseworkers_and_own_for_sources() {
        assert_eq!(
            record_scope(&caller(TOWN, &[Role::Caseworker, Role::Source]), TOWN),
            Some(RecordScope::EverySource)
        );
        assert_eq!(
            record_scope(&caller(TOWN, &[Role::Source]), TOWN),
            Some(RecordScope::OwnSource("client".into()))
        );
        assert_eq!(record_scope(&caller(TOWN, &[Role::Source]), OTHER), None);
        assert_eq!(record_scope(&caller(TOWN, &[Role::Auditor]), TOWN), None);
    }

    #[test]
    fn transfers_with_a_dv_child_exist_only_for_officers_with_the_role() {
        use TransferUse::*;
        let officer = caller(OTHER, &[Role::TransferOfficer]);
        let dv_officer = caller(OTHER, &[Role::TransferOfficer, Role::SupportMeasureReader]);
        let origin_officer = caller(TOWN, &[Role::TransferOfficer]);
        let caseworker = caller(OTHER, &[Role::Caseworker, Role::SupportMeasureReader]);
        let offered = |dv| TransferFacts {
            origin: TOWN,
            destination: Some(OTHER),
            held: false,
            includes_support_measure: dv,
        };
        let held = |dv| TransferFacts {
            origin: TOWN,
            destination: None,
            held: true,
            includes_support_measure: dv,
        };
        for using in [View, List, Accept, Decline, Claim] {
            assert!(
                decide_transfer(&officer, using, &offered(false)).is_allowed(),
                "{using:?}"
            );
            assert_eq!(
                decide_transfer(&officer, using, &offered(true)),
                Verdict::Hide(Hidden::SupportMeasure),
                "{using:?}"
            );
            assert!(decide_transfer(&dv_officer, using, &offered(true)).is_allowed());
        }
        for using in [Cancel, Export] {
            assert_eq!(
                decide_transfer(&officer, using, &offered(false)),
                Verdict::Hide(Hidden::NotParty)
            );
            assert!(decide_transfer(&origin_officer, using, &offered(false)).is_allowed());
            assert_eq!(
                decide_transfer(&origin_officer, using, &offered(true)),
                Verdict::Hide(Hidden::SupportMeasure)
            );
        }
        assert!(decide_transfer(&officer, MatchArrivals, &held(false)).is_allowed());
        assert!(!decide_transfer(&officer, MatchArrivals, &held(true)).is_allowed());
        assert!(decide_transfer(&dv_officer, MatchArrivals, &held(true)).is_allowed());
        assert!(!decide_transfer(&origin_officer, MatchArrivals, &held(false)).is_allowed());
        assert!(lists_held_transfer(&officer, &held(false)));
        assert!(!lists_held_transfer(&officer, &held(true)));
        assert!(decide_transfer(&officer, Claim, &held(false)).is_allowed());
        assert!(!decide_transfer(&officer, Claim, &held(true)).is_allowed());
        assert!(!decide_transfer(&officer, List, &held(false)).is_allowed());
        assert_eq!(
            decide_transfer(&caseworker, View, &offered(false)),
            Verdict::Hide(Hidden::Role)
        );
        let third = caller(
            "282014",
            &[Role::TransferOfficer, Role::SupportMeasureReader],
        );
        for using in [View, List, Accept, Decline, Cancel, Export, Import] {
            assert_eq!(
                decide_transfer(&third, using, &offered(false)),
                Verdict::Hide(Hidden::NotParty),
                "{using:?}"
            );
        }
    }

    #[test]
    fn auditors_without_the_dv_role_never_learn_of_a_measure() {
        let auditor = caller(TOWN, &[Role::Auditor]);
        let dv_auditor = caller(TOWN, &[Role::Auditor, Role::SupportMeasureReader]);
        let denied = "denied:support_measure";
        assert_eq!(
            shown_result(&auditor, false, "subject.read", denied),
            Some("not_found")
        );
        assert_eq!(
            shown_result(&dv_auditor, false, "subject.read", denied),
            Some(denied)
        );
        // A child hidden from the auditor shows only what a missing child could have.
        assert_eq!(shown_result(&auditor, true, "subject.read", "ok"), None);
        assert_eq!(shown_result(&auditor, true, "transfer.offer", "ok"), None);
        assert_eq!(shown_result(&auditor, true, AUDIT_READ, "ok"), Some("ok"));
        assert_eq!(
            shown_result(&auditor, true, "subject.read", denied),
            Some("not_found")
        );
        assert_eq!(
            shown_result(&auditor, true, "subject.read", "excluded:opt_out"),
            Some("not_found")
        );
        assert_eq!(
            shown_result(&auditor, true, "subject.read", "denied:role"),
            Some("denied:role")
        );
        assert_eq!(
            shown_result(&auditor, false, "subject.read", "ok"),
            Some("ok")
        );
    }
}
