//! Refusals made before any handler runs, so that what they refuse is never stored, audited or
//! logged: free-text headers that hold a My Number, and bodies in a content coding the hub
//! does not read.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, ResponseError};

use super::Problem;
use crate::schema::rules;

/// Headers whose text the hub keeps (audit trail, idempotency records) or logs.
pub const FREE_TEXT_HEADERS: [&str; 4] =
    ["X-Actor", "X-Legal-Basis", "X-Purpose", "Idempotency-Key"];

/// Why `req` is refused before it reaches its handler, if it is.
pub fn refusal(req: &HttpRequest) -> Option<Problem> {
    // Bodies are read as sent: a gzip body would be taken for raw bytes, and a JSON body
    // labelled `br` stored as if it were compressed. Every coding but identity is refused.
    if let Some(coding) = req.headers().get("Content-Encoding") {
        let identity = coding
            .to_str()
            .is_ok_and(|c| c.trim().eq_ignore_ascii_case("identity"));
        if !identity {
            return Some(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_encoding_unsupported",
                "the hub reads bodies only as sent (no Content-Encoding, or identity); send it uncompressed",
            ));
        }
    }
    FREE_TEXT_HEADERS.iter().find_map(|name| {
        let text = super::header(req, name)?;
        rules::contains_my_number(text).then(|| {
            Problem::bad_request(
                "my_number_like",
                format!(
                    "{name} looks like it holds a My Number (個人番号), which the hub never stores"
                ),
            )
        })
    })
}

/// Middleware answering [`refusal`]s with their problem.
pub async fn refuse_early<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    if let Some(problem) = refusal(req.request()) {
        return Ok(req
            .into_response(problem.error_response())
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
