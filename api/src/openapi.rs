//! The OpenAPI 3.1 document, generated from the `#[endpoint]` handlers reachable from the
//! router, served at `GET /api-docs/openapi.json`, and Swagger UI (embedded assets, no CDN) at
//! `/api-docs`.

use std::sync::Arc;

use salvo::oapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme};
use salvo::oapi::swagger_ui::SwaggerUi;
use salvo::oapi::{Info, OpenApi, SecurityScheme};
use salvo::prelude::*;
use serde_json::Value;

pub const DOC_PATH: &str = "/api-docs/openapi.json";
pub const UI_PATH: &str = "/api-docs";

/// Prefixes the default namer puts on names: dropped so schemas read `ErrorBody` and
/// operations `jobs.create`.
const SCHEMA_PREFIX: &str = "pacer_api.schemas.";
const OPERATION_PREFIX: &str = "pacer_api.routes.";

/// The document for `router` as JSON.
pub fn document(router: &Router) -> Value {
    let info = Info::new("Pacer API", env!("CARGO_PKG_VERSION")).description(
        "Job queue for running-coach products: the Jobs API (submit, poll, cancel, SSE), admin \
         upserts, AI Coach (seed 000, snake_case), AI Training (seed 003, camelCase) and \
         Analytics (seed 004, snake_case, successes as `{\"status\": \"ok\", \"data\"}`). Routes \
         under `/api` need `Authorization: Bearer <JWT>` (AI Training also accepts a single-use \
         `customToken` query parameter). Every error is `{\"status\": \"error\", \"code\", \
         \"error\", \"details\": [{\"field\", \"message\"}]}`; a 400 lists every invalid field. \
         JSON bodies may not contain NUL characters or numbers beyond ±1e300.",
    );
    let doc = OpenApi::with_info(info)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::new(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description("HS256 (or RS256) JWT: `sub`, `role`, `org_id`, `exp`"),
            ),
        )
        .add_security_scheme(
            "customToken",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "customToken",
                "Single-use token from `POST /api/auth/exchange-token` (AI Training and AI Move routes only)",
            ))),
        )
        .merge_router(router);
    let mut value = serde_json::to_value(&doc).unwrap_or(Value::Null);
    tidy(&mut value);
    value
}

/// Short schema names (with every `$ref` rewritten) and operation ids.
fn tidy(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                *r = r.replace(
                    &format!("#/components/schemas/{SCHEMA_PREFIX}"),
                    "#/components/schemas/",
                );
            }
            if let Some(Value::String(id)) = map.get_mut("operationId")
                && let Some(short) = id.strip_prefix(OPERATION_PREFIX)
            {
                *id = short.to_owned();
            }
            if let Some(Value::Object(schemas)) = map.get_mut("schemas") {
                let renamed: serde_json::Map<String, Value> = std::mem::take(schemas)
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k.strip_prefix(SCHEMA_PREFIX)
                                .map(str::to_owned)
                                .unwrap_or(k),
                            v,
                        )
                    })
                    .collect();
                *schemas = renamed;
            }
            for v in map.values_mut() {
                tidy(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

struct ServeDoc(Arc<Value>);

#[async_trait]
impl Handler for ServeDoc {
    async fn handle(
        &self,
        _req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        res.render(Json(self.0.as_ref()));
    }
}

/// `GET /api-docs/openapi.json` and Swagger UI under `/api-docs`, for the document of `router`.
pub fn routers(router: &Router) -> (Router, Router) {
    let doc = Arc::new(document(router));
    let json = Router::with_path(DOC_PATH.trim_start_matches('/')).get(ServeDoc(doc));
    let ui = SwaggerUi::new(DOC_PATH)
        .title("Pacer API")
        .into_router(UI_PATH.trim_start_matches('/'));
    (json, ui)
}
