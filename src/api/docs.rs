//! The OpenAPI document, an offline docs page and the data dictionary. Everything is served
//! from the binary: nothing is fetched from the internet, at build time or at run time.

use actix_web::HttpResponse;

use super::State;

pub async fn openapi_json(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}

pub async fn viewer() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("docs/index.html"))
}

pub async fn data_dictionary(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(crate::schema::dictionary::html(state.standard.latest()))
}
