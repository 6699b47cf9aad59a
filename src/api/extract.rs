//! Who is calling and why, as actix extractors: a handler names what it needs in its signature
//! (`Caller`, `Officer`, `PersonalRead<Action>`, `Actor`) and cannot forget authentication,
//! rate limiting, the declared purpose or the acting staff member. Failed authentication and
//! refused declarations are audited here, in one place.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::{Problem, State, audit_entry, header, record_audit};
use crate::audit::AuditEntry;
use crate::auth::tls::PeerFingerprint;
use crate::auth::{self, Principal, ReadContext, ReadRefusal, Role};
use crate::store::clients;

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, Problem>>>>;

fn state_of(req: &HttpRequest) -> Result<State, Problem> {
    req.app_data::<State>()
        .cloned()
        .ok_or_else(Problem::internal)
}

/// The bearer token of `Authorization` (the scheme is case-insensitive, RFC 9110 §11.1).
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get("Authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An audit entry for a failed authentication on this request.
fn failed_authentication(req: &HttpRequest, result: &str) -> AuditEntry {
    AuditEntry {
        municipality_code: req.match_info().get("code").unwrap_or("").to_string(),
        action: format!(
            "{} {}",
            req.method(),
            req.match_pattern().unwrap_or_default()
        ),
        result: result.into(),
        ..AuditEntry::default()
    }
}

/// Count a failed authentication from the request's address: audit it (noting the failures
/// throttled since the last entry) and answer 401. Once the address is over its limit, a
/// presented token is answered 429 — guessing costs a minute per batch — and a request without
/// one still 401 (nothing was guessed); neither writes an audit row, so the trail cannot be
/// flooded either.
async fn refuse_authentication(
    state: &State,
    req: &HttpRequest,
    mut entry: AuditEntry,
    detail: &str,
) -> Problem {
    let presented_token = entry.result != NO_TOKEN;
    let address = req.peer_addr().map(|a| a.ip());
    match address.map(|a| state.failed_auth.fail(a)) {
        Some(Err(retry_after)) if presented_token => return Problem::rate_limited(retry_after),
        Some(Err(_)) => return Problem::unauthorized(detail),
        Some(Ok(suppressed)) if suppressed > 0 => {
            entry.detail =
                Some(serde_json::json!({"throttled_since_last_entry": suppressed}).to_string());
        }
        _ => {}
    }
    match record_audit(state, entry).await {
        Ok(()) => Problem::unauthorized(detail),
        Err(problem) => problem,
    }
}

const NO_TOKEN: &str = "failed:no_token";

/// The caller behind the bearer token, rate limited. A valid token is never refused for its
/// address: clients behind one proxy do not pay for a neighbour's failures.
pub async fn authenticate(state: &State, req: &HttpRequest) -> Result<Principal, Problem> {
    let Some(token) = bearer_token(req) else {
        return Err(refuse_authentication(
            state,
            req,
            failed_authentication(req, NO_TOKEN),
            "send the client's token as `Authorization: Bearer <token>`",
        )
        .await);
    };
    let hash = auth::hash_token(token);
    let worker = state.clone();
    let principal = super::blocking(move || {
        let mut conn = worker.store.conn()?;
        Ok(clients::principal_by_token_hash(&mut conn, &hash)?)
    })
    .await?;
    let presented = req.conn_data::<PeerFingerprint>().map(|f| f.0.as_str());
    match principal {
        Some(principal)
            if principal
                .cert_fingerprint
                .as_deref()
                .is_none_or(|bound| Some(bound) == presented) =>
        {
            state
                .rate_limit
                .take(principal.client_id)
                .map_err(Problem::rate_limited)?;
            Ok(principal)
        }
        refused => {
            // Unknown or revoked token, or a token presented over the wrong certificate.
            let wrong_certificate = refused.is_some();
            let mut entry = failed_authentication(
                req,
                if wrong_certificate {
                    "failed:certificate"
                } else {
                    "failed:authentication"
                },
            );
            entry.client_id = refused.as_ref().map(|p| p.client_id);
            entry.client_name = refused.map(|p| p.name);
            let detail = if wrong_certificate {
                "this client's token is only accepted with its own client certificate"
            } else {
                "the token is unknown or revoked"
            };
            Err(refuse_authentication(state, req, entry, detail).await)
        }
    }
}

/// Any authenticated client.
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = Problem;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        with_role(req, |_| true, "", Caller)
    }
}

impl Caller {
    /// The caller, if it holds `role` in `municipality` (403 otherwise).
    pub fn require(self, role: Role, municipality: &str) -> Result<Principal, Problem> {
        if self.0.may(role, municipality) {
            Ok(self.0)
        } else {
            Err(Problem::forbidden(format!(
                "this client lacks the {} role for municipality {municipality}",
                role.as_str()
            )))
        }
    }
}

/// Authenticate, then require what `holds` checks of the caller (403 with `lacking`
/// otherwise: the role, never any child, decides it).
fn with_role<T: 'static>(
    req: &HttpRequest,
    holds: fn(&Principal) -> bool,
    lacking: &'static str,
    wrap: fn(Principal) -> T,
) -> Extracted<T> {
    let req = req.clone();
    Box::pin(async move {
        let state = state_of(&req)?;
        let principal = authenticate(&state, &req).await?;
        if holds(&principal) {
            Ok(wrap(principal))
        } else {
            Err(Problem::forbidden(lacking))
        }
    })
}

/// A client holding the transfer-officer role.
pub struct Officer(pub Principal);

impl FromRequest for Officer {
    type Error = Problem;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        with_role(
            req,
            |p| p.roles.contains(&Role::TransferOfficer),
            "this client lacks the transfer-officer role",
            Officer,
        )
    }
}

/// A client holding the auditor role in its own municipality.
pub struct Auditor(pub Principal);

impl FromRequest for Auditor {
    type Error = Problem;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        with_role(
            req,
            |p| p.may(Role::Auditor, &p.municipality),
            "this client lacks the auditor role",
            Auditor,
        )
    }
}

/// The staff member a write is done by (`X-Actor`, required).
pub struct Actor(pub String);

impl FromRequest for Actor {
    type Error = Problem;
    type Future = std::future::Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            header(req, "X-Actor")
                .filter(|a| auth::is_valid_actor(a))
                .map(|a| Actor(a.to_string()))
                .ok_or_else(|| {
                    Problem::bad_request(
                        "actor_required",
                        "this step must name the staff member in X-Actor (visible ASCII, at most 100 characters)",
                    )
                }),
        )
    }
}

/// The audited name of a personal read, named in the handler's signature.
pub trait ReadAction {
    const NAME: &'static str;
}

macro_rules! read_actions {
    ($($(#[$doc:meta])* $name:ident = $text:literal;)*) => {
        $($(#[$doc])* pub struct $name; impl ReadAction for $name { const NAME: &'static str = $text; })*
    };
}

read_actions! {
    /// A child's profile.
    SubjectRead = "subject.read";
    /// A record's history.
    HistoryRead = "record.history";
    /// The change feed.
    ChangesRead = "changes.read";
    /// The identity review queue.
    IdentityQueueRead = "identity.queue.read";
    /// A transfer and its children.
    TransferRead = "transfer.read";
}

/// An authenticated personal read: a published purpose and the acting staff member are
/// declared. `entry` is the audit entry to complete (result, subject, detail) and append in
/// the same transaction as the read; a refused declaration is audited before the handler runs.
pub struct PersonalRead<A: ReadAction> {
    pub principal: Principal,
    pub context: ReadContext,
    pub entry: AuditEntry,
    action: PhantomData<A>,
}

impl<A: ReadAction + 'static> FromRequest for PersonalRead<A> {
    type Error = Problem;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            let principal = authenticate(&state, &req).await?;
            // Audited under the town the read is about (the path's), else the caller's own.
            let municipality = req
                .match_info()
                .get("code")
                .unwrap_or(&principal.municipality)
                .to_string();
            let mut entry = audit_entry(&principal, &municipality, A::NAME);
            entry.subject = req.match_info().get("resident_no").map(str::to_string);
            entry.actor = header(&req, "X-Actor").map(str::to_string);
            entry.purpose = header(&req, "X-Purpose").map(str::to_string);
            let declared = ReadContext::declare(
                &state.standard.latest().purposes,
                header(&req, "X-Purpose"),
                header(&req, "X-Actor"),
                header(&req, "X-Legal-Basis"),
            );
            match declared {
                Ok(context) => {
                    entry.legal_basis = Some(context.legal_basis.clone());
                    Ok(PersonalRead {
                        principal,
                        context,
                        entry,
                        action: PhantomData,
                    })
                }
                Err(refusal) => {
                    let code = match refusal {
                        ReadRefusal::MissingActor => "actor_required",
                        _ => "purpose_required",
                    };
                    entry.result = format!("refused:{code}");
                    record_audit(&state, entry).await?;
                    Err(Problem::bad_request(code, refusal.to_string()))
                }
            }
        })
    }
}
