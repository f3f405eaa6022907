//! `GET /openapi.json`: the document parses, names exactly the routes the router serves (each with
//! the methods it answers), and real answers of every route conform to it.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{both_backends, TestApp};
use crate::http_app::{HttpApp, Reply, MEMBERS};
use crate::push_api::{push_on, signed, SECRET};

/// The routes the router holds, read from its `Debug` output: axum prints each route's path, the
/// routes first and then its fallback's.
fn router_paths(app: &TestApp) -> BTreeSet<String> {
    let state = invite_bot::http::HttpState::new(app.actions.clone(), Default::default(), 1 << 20);
    let printed = format!("{:?}", invite_bot::http::router(state));
    let printed = printed
        .split_once("fallback_router")
        .map_or(printed.as_str(), |(routes, _)| routes);
    let paths: BTreeSet<String> = regex::Regex::new(r#"RouteId\(\d+\): "([^"]+)""#)
        .unwrap()
        .captures_iter(printed)
        .map(|c| c[1].to_owned())
        .collect();
    assert!(
        paths.contains("/healthz") && paths.len() >= 10,
        "cannot read the router's routes (has axum's Debug changed?): {printed}"
    );
    paths
}

/// For requests answered before their body is read (413): the server closes the connection, so
/// the client must not pick it up again.
pub const CLOSE: (&str, &str) = ("connection", "close");

/// (path, method) of every documented operation.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            operations.insert((path.clone(), method.clone()));
        }
    }
    operations
}

async fn request(http: &HttpApp, method: &str, path: &str) -> Reply {
    match method {
        "get" => http.get(path).await,
        "post" => http.post(path, &[], "{}").await,
        "put" | "delete" | "patch" => {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = http
                .client
                .request(method, format!("{}{path}", http.base))
                .send()
                .await
                .unwrap();
            Reply {
                status: response.status().as_u16(),
                content_type: String::new(),
                body: response.text().await.unwrap(),
            }
        }
        other => panic!("{other}"),
    }
}

both_backends! {
    async fn the_document_names_every_route_and_only_those(app) {
        let router = router_paths(&app);
        let http = HttpApp::start(app, |_| {}).await;
        let reply = http.get("/openapi.json").await;
        assert_eq!(reply.status, 200);
        assert!(reply.content_type.starts_with("application/json"), "{}", reply.content_type);
        let doc: Value = serde_json::from_str(&reply.body).expect("the document is JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        assert_eq!(doc["info"]["title"], "invite-bot");
        let documented: BTreeSet<String> =
            doc["paths"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(documented, router, "the document and the router name different routes");
        for expected in [
            "/healthz", "/readyz", "/metrics", "/openapi.json", "/webhooks/postmark",
            "/webhooks/sendgrid", "/webhooks/mailgun", "/webhooks/ses", "/api/activate",
            "/api/v1/members", "/api/v1/invitations",
        ] {
            assert!(documented.contains(expected), "{expected} is not documented");
        }
        // Each documented method is served; every other one is 405.
        let operations = operations(&doc);
        for path in &documented {
            for method in ["get", "post", "put", "delete", "patch"] {
                let reply = request(&http, method, path).await;
                if operations.contains(&(path.clone(), method.to_owned())) {
                    assert!(
                        reply.status != 405 && !(reply.status == 404 && reply.body.is_empty()),
                        "{method} {path} is documented but not served: {}", reply.status
                    );
                    check(&doc, path, method, &reply);
                } else {
                    assert_eq!(reply.status, 405, "{method} {path} is served but not documented");
                }
            }
        }
        // Every $ref resolves.
        let text = doc.to_string();
        for reference in regex::Regex::new(r##""\$ref":"#/components/schemas/([^"]+)""##)
            .unwrap()
            .captures_iter(&text)
        {
            assert!(doc["components"]["schemas"][&reference[1]].is_object(), "{}", &reference[1]);
        }
    }

    async fn real_answers_conform_to_the_document(app) {
        app.seed(MEMBERS).await;
        let http = HttpApp::start(app, |config| {
            push_on(config);
            config.providers.postmark = Some(
                toml::from_str("webhook_username = \"pm\"\nwebhook_password = \"pw\"\n").unwrap(),
            );
        })
        .await;
        let doc: Value = serde_json::from_str(&http.get("/openapi.json").await.body).unwrap();
        let mut seen = BTreeSet::new();
        let mut sample = |path: &str, method: &str, reply: Reply| {
            check(&doc, path, method, &reply);
            seen.insert((path.to_owned(), reply.status));
        };
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
            sample(path, "get", http.get(path).await);
        }
        // Provider webhooks: not configured, bad credentials, malformed, stored, too large.
        sample("/webhooks/sendgrid", "post", http.post("/webhooks/sendgrid", &[], "[]").await);
        let basic = |user: &str, password: &str| {
            use base64::Engine as _;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        };
        let good = basic("pm", "pw");
        sample("/webhooks/postmark", "post",
            http.post("/webhooks/postmark", &[("authorization", &basic("pm", "no"))], "{}").await);
        sample("/webhooks/postmark", "post",
            http.post("/webhooks/postmark", &[("authorization", &good)], "not json").await);
        let bounce = json!({"RecordType": "Bounce", "ID": 7, "Type": "HardBounce", "MessageID": "msg-ada",
            "Email": "ada@school.example", "BouncedAt": "2026-11-26T04:00:00Z", "Details": "550"});
        sample("/webhooks/postmark", "post",
            http.post("/webhooks/postmark", &[("authorization", &good)], bounce.to_string()).await);
        sample("/webhooks/postmark", "post",
            http.post("/webhooks/postmark", &[("authorization", &good), CLOSE], vec![b' '; 2 << 20]).await);
        // Activation: malformed, rejected, too large.
        sample("/api/activate", "post", http.post("/api/activate", &[], "{}").await);
        let wrong = json!({"email": "ada@school.example", "workspace": "acme", "code": "WRON-GCOD-EE"});
        sample("/api/activate", "post", http.post("/api/activate", &[], wrong.to_string()).await);
        sample("/api/activate", "post", http.post("/api/activate", &[CLOSE], vec![b' '; 9000]).await);
        // Push: applied, bad rows, unsigned, too large.
        let members = json!({"members": [{"workspace": "acme", "email": "eve@school.example",
            "role": "learner", "status": "invited", "updated_at": "2026-11-30T10:00:00Z"}]});
        let (path, headers) = ("/api/v1/members", signed(SECRET, &members.to_string()));
        sample(path, "post", http.post(path, &headers.borrowed(), members.to_string()).await);
        let bad = json!({"members": [{"workspace": "acme", "email": "not an address",
            "role": "boss", "status": "invited", "updated_at": "yesterday"}]});
        let headers = signed(SECRET, &bad.to_string());
        sample(path, "post", http.post(path, &headers.borrowed(), bad.to_string()).await);
        sample(path, "post", http.post(path, &[], members.to_string()).await);
        sample(path, "post", http.post(path, &[CLOSE], vec![b' '; 3 << 20]).await);
        let invitations = json!({"invitations": [{"workspace": "acme", "email": "eve@school.example",
            "sent_at": "2026-11-30T10:00:00Z", "message_id": "<m1@acme.example>", "updated_at": "2026-11-30T10:00:00Z"}]});
        let (path, headers) = ("/api/v1/invitations", signed(SECRET, &invitations.to_string()));
        sample(path, "post", http.post(path, &headers.borrowed(), invitations.to_string()).await);

        for expected in [
            ("/webhooks/sendgrid", 404), ("/webhooks/postmark", 401), ("/webhooks/postmark", 400),
            ("/webhooks/postmark", 200), ("/webhooks/postmark", 413), ("/api/activate", 400),
            ("/api/activate", 422), ("/api/activate", 413), ("/api/v1/members", 200),
            ("/api/v1/members", 400), ("/api/v1/members", 401), ("/api/v1/members", 413),
            ("/api/v1/invitations", 200),
        ] {
            assert!(seen.contains(&(expected.0.to_owned(), expected.1)), "no {expected:?} sampled: {seen:?}");
        }
    }
}

/// Asserts that `reply` is a documented answer of `method path`: its status is listed, its
/// content type is the documented one and a JSON body validates against the schema.
pub fn check(doc: &Value, path: &str, method: &str, reply: &Reply) {
    let operation = &doc["paths"][path][method];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let response = &operation["responses"][reply.status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {} which is not documented: {}",
        reply.status,
        reply.body
    );
    let Some(content) = response["content"].as_object() else {
        return;
    };
    let media = reply
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let Some(documented) = content.get(media) else {
        panic!(
            "{method} {path} {}: content type {:?} is not among {:?}",
            reply.status,
            reply.content_type,
            content.keys().collect::<Vec<_>>()
        );
    };
    if media == "application/json" {
        let body: Value = serde_json::from_str(&reply.body).unwrap_or_else(|e| {
            panic!(
                "{method} {path} {}: not JSON ({e}): {}",
                reply.status, reply.body
            )
        });
        if let Err(problem) = validate(doc, &documented["schema"], &body, "$") {
            panic!(
                "{method} {path} {}: {problem}\n{}",
                reply.status, reply.body
            );
        }
    }
}

/// A JSON Schema validator for what utoipa writes: `$ref`, `type` (one or a list), `enum`,
/// `properties`, `required`, `additionalProperties`, `items`, `oneOf`/`anyOf`/`allOf`, `minimum`,
/// `maxItems`, `minLength`/`maxLength`, `pattern`. Anything else is accepted.
pub fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("{at}: unsupported $ref {reference}"))?;
        return validate(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = types.iter().any(|t| match *t {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            "null" => value.is_null(),
            _ => true,
        });
        if !fits {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    for (key, count) in [("oneOf", Some(1)), ("anyOf", None), ("allOf", None)] {
        if let Some(options) = schema[key].as_array() {
            let passed = options
                .iter()
                .filter(|option| validate(doc, option, value, at).is_ok())
                .count();
            let ok = match (key, count) {
                ("allOf", _) => passed == options.len(),
                (_, Some(n)) => passed == n,
                _ => passed > 0,
            };
            if !ok {
                return Err(format!(
                    "{at}: {value} fails {key} ({passed} of {} pass)",
                    options.len()
                ));
            }
        }
    }
    if let (Some(minimum), Some(number)) = (schema["minimum"].as_f64(), value.as_f64()) {
        if number < minimum {
            return Err(format!("{at}: {number} < {minimum}"));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if schema["maxLength"].as_u64().is_some_and(|max| chars > max)
            || schema["minLength"].as_u64().is_some_and(|min| chars < min)
        {
            return Err(format!("{at}: {text:?} has the wrong length"));
        }
        if let Some(pattern) = schema["pattern"].as_str() {
            if !regex::Regex::new(pattern).unwrap().is_match(text) {
                return Err(format!("{at}: {text:?} does not match {pattern}"));
            }
        }
    }
    if let Some(items) = value.as_array() {
        if schema["maxItems"]
            .as_u64()
            .is_some_and(|max| items.len() as u64 > max)
        {
            return Err(format!("{at}: too many items"));
        }
        if schema.get("items").is_some() {
            for (i, item) in items.iter().enumerate() {
                validate(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: `{name}` is required"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, field) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(property) => validate(doc, property, field, &format!("{at}.{name}"))?,
                None if schema["additionalProperties"] == Value::Bool(false) => {
                    return Err(format!("{at}: `{name}` is not allowed"))
                }
                None => {}
            }
        }
    }
    Ok(())
}

#[test]
fn the_validator_refuses_what_it_should() {
    let doc = json!({"components": {"schemas": {"R": {"type": "object", "required": ["n"],
        "properties": {"n": {"type": "integer", "minimum": 0}, "e": {"type": "string", "enum": ["a"]}},
        "additionalProperties": false}}}});
    let schema = json!({"$ref": "#/components/schemas/R"});
    assert!(validate(&doc, &schema, &json!({"n": 1, "e": "a"}), "$").is_ok());
    for bad in [
        json!({}),
        json!({"n": -1}),
        json!({"n": 1, "e": "b"}),
        json!({"n": 1, "x": 1}),
        json!([]),
    ] {
        assert!(validate(&doc, &schema, &bad, "$").is_err(), "{bad}");
    }
}
