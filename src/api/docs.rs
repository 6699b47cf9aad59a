//! The OpenAPI document, an offline docs page and the data dictionary. Everything is served
//! from the binary: nothing is fetched from the internet, at build time or at run time.

use actix_web::HttpResponse;

use super::State;

pub async fn openapi_json(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}

/// `/docs`: Redoc renders `/openapi.json`. Redoc's standalone bundle (the npm package
/// `redoc`, 2.5.4, MIT) is committed in `src/api/docs/` and embedded in the binary, so the page
/// works offline: the browser loads only this page, the bundle and the document from the hub.
pub async fn viewer() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", DOCS_POLICY))
        .body(include_str!("docs/index.html"))
}

/// The browser may load nothing for /docs but what the hub serves: no font, image or script
/// from elsewhere (Redoc's sidebar credit links an image on a CDN; it is simply not shown).
/// Redoc styles itself with inline styles and runs its search in a worker made from a blob.
pub const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn redoc_init() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("docs/redoc-init.js"))
}

pub async fn redoc_bundle() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(include_str!("docs/redoc.standalone.js"))
}

/// The licences of Redoc and of what its bundle contains.
pub async fn redoc_licence() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(concat!(
            include_str!("docs/REDOC-LICENSE"),
            "\n",
            include_str!("docs/redoc.standalone.js.LICENSE.txt")
        ))
}

pub async fn data_dictionary(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(crate::schema::dictionary::html(state.standard.latest()))
}

/// The data dictionary as CSV (UTF-8 with BOM), for procurement documents.
pub async fn data_dictionary_csv(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"data-dictionary.csv\"",
        ))
        .body(crate::schema::dictionary::csv(state.standard.latest()))
}
