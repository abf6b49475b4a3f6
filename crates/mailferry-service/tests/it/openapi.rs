//! The API against its own OpenAPI document: every route is documented, and requests built
//! from the document (valid, fields missing, wrong types, random values, unknown fields,
//! malformed JSON, huge bodies, bad ids and queries) never get a 5xx; every 4xx is the JSON
//! error shape. Submissions that pass validation point at a closed loopback port, so the
//! credential check fails fast and nothing outside this machine is touched.

use std::collections::BTreeSet;

use mailferry_service::api::{new_token, token_hash};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::common::Service;

/// The routes of `api::router` (besides `/api/openapi.json` and `/api/docs`).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/api/v1/info"),
    ("post", "/api/v1/migrations"),
    ("get", "/api/v1/migrations"),
    ("get", "/api/v1/migrations/{id}"),
    ("post", "/api/v1/migrations/{id}/cancel"),
    ("post", "/api/v1/migrations/{id}/retry"),
    ("post", "/api/v1/migrations/{id}/purge"),
    ("get", "/api/v1/events"),
    ("post", "/api/v1/lists"),
    ("post", "/api/v1/lists/check"),
    ("get", "/api/v1/lists/template"),
    ("get", "/api/v1/licences"),
    ("post", "/api/v1/licences"),
];

/// Routes that answer without a login.
const OPEN: &[&str] = &["/healthz", "/metrics"];

const TWO_MIB: usize = 2 * 1024 * 1024;

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a", "Z", "0", "@", ".", ":", "/", " ", "\u{0}", "\n", "\"", "\\", "'", "%", "ü", "€",
            "😀", "\u{202e}", "imap://", "2026-", "${x}", "<b>", "--", "\t",
        ];
        let len = match self.below(6) {
            0 => 0,
            5 => 300 + self.below(5000),
            _ => 1 + self.below(24),
        };
        (0..len).map(|_| PIECES[self.below(PIECES.len())]).collect()
    }
    fn value(&mut self, depth: usize) -> Value {
        match self.below(if depth > 2 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => json!(self.next() as i64),
            2 => json!((self.next() % 1000) as f64 / 7.0),
            3 => json!(self.below(2) == 0),
            4 | 5 => json!(self.string()),
            6 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            _ => {
                let mut map = Map::new();
                for _ in 0..self.below(4) {
                    map.insert(self.string(), self.value(depth + 1));
                }
                Value::Object(map)
            }
        }
    }
}

/// What was sent, for messages.
struct Probe {
    what: String,
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    content_type: Option<&'static str>,
    chunked: bool,
    /// The status must be one the document lists for the operation.
    documented: bool,
}

impl Probe {
    fn new(what: impl Into<String>, method: &Method, path: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            method: method.clone(),
            path: path.into(),
            body: None,
            content_type: None,
            chunked: false,
            documented: true,
        }
    }
    fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.content_type = Some("application/json");
        self
    }
    fn raw(mut self, body: impl Into<Vec<u8>>, content_type: &'static str) -> Self {
        self.body = Some(body.into());
        self.content_type = Some(content_type);
        self
    }
}

struct Answer {
    status: u16,
    body: Value,
    text: String,
}

async fn send(service: &Service, auth: Option<&str>, probe: &Probe) -> Answer {
    let url = format!("{}{}", service.base, probe.path);
    let mut request = service.client.request(probe.method.clone(), &url);
    if let Some(token) = auth {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = probe.content_type {
        request = request.header("content-type", content_type);
    }
    if let Some(body) = &probe.body {
        request = if probe.chunked {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
            request.body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
        } else {
            request.body(body.clone())
        };
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {} {url}: {e}", probe.what, probe.method));
    let status = response.status().as_u16();
    let streaming = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if streaming {
        // The event stream does not end; its status and type are the answer.
        return Answer {
            status,
            body: Value::Null,
            text: String::new(),
        };
    }
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Never a 5xx; every 4xx in the error shape.
fn check_answer(probe: &Probe, answer: &Answer, documented: &BTreeSet<u16>) {
    let context = format!(
        "{} ({} {}): {} {}",
        probe.what,
        probe.method,
        probe.path.chars().take(120).collect::<String>(),
        answer.status,
        answer.text.chars().take(400).collect::<String>()
    );
    assert!(answer.status < 500, "server error: {context}");
    if answer.status >= 400 {
        let error = &answer.body;
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "no `error`: {context}"
        );
        assert!(
            error["request_id"].as_str().is_some_and(|e| !e.is_empty()),
            "no `request_id`: {context}"
        );
        for key in ["side", "field", "hint"] {
            assert!(
                error.get(key).is_some_and(|v| v.is_null() || v.is_string()),
                "`{key}` missing or not a string: {context}"
            );
        }
    }
    if probe.documented {
        assert!(
            documented.contains(&answer.status),
            "status not in the document ({documented:?}): {context}"
        );
    }
}

/// A value of the wrong type for a schema.
fn wrong_types(schema: &Value) -> Vec<Value> {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let mut out = Vec::new();
    if !types.contains(&"string") {
        out.push(json!("text"));
    }
    if !types.contains(&"integer") && !types.contains(&"number") {
        out.push(json!(42));
    }
    if !types.contains(&"boolean") {
        out.push(json!(true));
    }
    if !types.contains(&"null") {
        out.push(Value::Null);
    }
    out.push(json!([1, "two"]));
    out.push(json!({"nested": {"deeper": [null]}}));
    out
}

/// The request bodies for an operation with a JSON schema.
fn body_probes(
    method: &Method,
    path: &str,
    schema: &Value,
    example: &Value,
    closed_port: u16,
    rng: &mut Rng,
) -> Vec<Probe> {
    // The valid example, pointed at a closed loopback port.
    let mut valid = example.clone();
    if let Some(map) = valid.as_object_mut() {
        for (key, value) in map.iter_mut() {
            if key.ends_with(".server") {
                *value = json!(format!("imap://127.0.0.1:{closed_port}"));
            }
            if key.ends_with(".insecure") {
                *value = json!(true);
            }
        }
        map.remove("startdate");
        map.remove("resyncdate");
    }
    // A mutation of a server field could name a real host: then another field is made
    // invalid too, so that no login is tried.
    let safe = |mut body: Value, key: &str| {
        if key.ends_with(".server") {
            body["startdate"] = json!("not a date");
        }
        body
    };
    let mut probes = vec![Probe::new("valid example", method, path).json(&valid)];
    let properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for key in &required {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(key);
        probes.push(Probe::new(format!("required `{key}` missing"), method, path).json(&body));
    }
    for (key, property) in &properties {
        for wrong in wrong_types(property) {
            let mut body = valid.clone();
            body[key] = wrong.clone();
            probes.push(
                Probe::new(format!("`{key}` = {wrong}"), method, path).json(&safe(body, key)),
            );
        }
        for _ in 0..2 {
            let random = rng.value(0);
            let mut body = valid.clone();
            body[key] = random.clone();
            let shown: String = random.to_string().chars().take(60).collect();
            probes.push(
                Probe::new(format!("`{key}` = random {shown}"), method, path)
                    .json(&safe(body, key)),
            );
        }
    }
    for _ in 0..6 {
        probes.push(Probe::new("random body", method, path).json(&rng.value(0)));
    }
    for name in ["source.typo", "zzz", "startdate "] {
        let mut body = valid.clone();
        body[name] = json!("imap");
        probes.push(Probe::new(format!("unknown field `{name}`"), method, path).json(&body));
    }
    for text in [
        "",
        "{",
        "{\"source.type\": }",
        "[1,2",
        "nul",
        "{\"a\":1}}",
        "\u{feff}{}",
        "{'single': 'quotes'}",
    ] {
        probes.push(
            Probe::new(format!("malformed JSON {text:?}"), method, path)
                .raw(text, "application/json"),
        );
    }
    probes.push(
        Probe::new("not JSON content type", method, path).raw(valid.to_string(), "text/plain"),
    );
    let mut deep = String::new();
    for _ in 0..10_000 {
        deep.push('[');
    }
    probes.push(Probe::new("10 000 nested arrays", method, path).raw(deep, "application/json"));
    probes
}

fn big_body_probes(method: &Method, path: &str, reads_body: bool) -> Vec<Probe> {
    // Lists may be 4 MiB; everything else 1 MiB.
    let size = if path.starts_with("/api/v1/lists") {
        5 * 1024 * 1024
    } else {
        TWO_MIB
    };
    let mut big = String::from("{\"startdate\": \"");
    big.push_str(&"x".repeat(size));
    big.push_str("\"}");
    let mut probes = Vec::new();
    for chunked in [false, true] {
        // A body without a length is only cut off where a route reads it.
        if chunked && !reads_body {
            continue;
        }
        let mut probe = Probe::new(format!("too big body (chunked: {chunked})"), method, path)
            .raw(big.clone(), "application/json");
        probe.chunked = chunked;
        probe.documented = reads_body;
        probes.push(probe);
    }
    probes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_holds_to_its_openapi_document_under_generated_requests() {
    let service = Service::start().await;
    let token = new_token();
    service
        .store
        .insert_token("openapi-test", &token_hash(&token), 0)
        .await
        .unwrap();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };

    // The document and the UI need no login.
    let response = service
        .client
        .get(format!("{}/api/openapi.json", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let spec: Value = response.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let ui = service
        .client
        .get(format!("{}/api/docs/", service.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status().as_u16(), 200);
    assert!(ui.text().await.unwrap().contains("swagger-ui"));
    for scheme in ["admin", "bearer"] {
        assert!(
            spec["components"]["securitySchemes"][scheme].is_object(),
            "security scheme {scheme} missing"
        );
    }

    // Every route is documented, and every documented operation is routed.
    let mut operations = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.clone(), path.clone()));
        }
    }
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(operations, routes, "documented operations vs routes");

    let ids = [
        "0123456789abcdef0123456789abcdef".to_string(),
        "%FF%FE".into(),
        "%00".into(),
        "..".into(),
        "%2e%2e".into(),
        "%2F".into(),
        "%20".into(),
        "'%20OR%201=1--".into(),
        "%C3%BC".into(),
        "-1".into(),
        "x".repeat(5000),
    ];
    let mut total = 0;
    for (index, (method_name, path)) in routes.iter().enumerate() {
        let operation = &spec["paths"][path][method_name];
        let method = Method::from_bytes(method_name.to_uppercase().as_bytes()).unwrap();
        let documented: BTreeSet<u16> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|s| s.parse().unwrap())
            .collect();
        let open = operation["security"] == json!([{}]);
        assert_eq!(
            open,
            OPEN.contains(&path.as_str()),
            "{method_name} {path}: login requirement in the document"
        );
        let concrete = path.replace("{id}", &ids[0]);

        // Without a login: 401 in the error shape.
        if !open {
            let probe = Probe::new("no login", &method, concrete.clone());
            let answer = send(&service, None, &probe).await;
            assert_eq!(answer.status, 401, "{method_name} {path} without login");
            check_answer(&probe, &answer, &documented);
            let wrong = send(&service, Some("mf_not-a-token"), &probe).await;
            assert_eq!(wrong.status, 401, "{method_name} {path} with a wrong token");
        }

        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1));
        let mut probes = vec![Probe::new("plain", &method, concrete.clone())];
        if path.contains("{id}") {
            for id in &ids[1..] {
                probes.push(Probe::new(
                    format!("path id {}", &id[..id.len().min(20)]),
                    &method,
                    path.replace("{id}", id),
                ));
            }
        }
        let query_params: Vec<String> = operation["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for name in &query_params {
            for value in [
                "", "active", "finished", "all", "done", "zzz", "%FF", "%00", "a%26b=c",
            ] {
                probes.push(Probe::new(
                    format!("?{name}={value}"),
                    &method,
                    format!("{concrete}?{name}={value}"),
                ));
            }
            probes.push(Probe::new(
                format!("?{name} twice"),
                &method,
                format!("{concrete}?{name}=done&{name}=failed"),
            ));
            let long = "y".repeat(4000);
            probes.push(Probe::new(
                format!("?{name}=long"),
                &method,
                format!("{concrete}?{name}={long}"),
            ));
        }
        if !query_params.is_empty() {
            probes.push(Probe::new(
                "unknown query parameter",
                &method,
                format!("{concrete}?bogus=1"),
            ));
        }
        let body_schema = &operation["requestBody"]["content"]["application/json"]["schema"];
        let reads_body = body_schema.is_object();
        if reads_body {
            let name = body_schema["$ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("#/components/schemas/");
            let schema = &spec["components"]["schemas"][name];
            probes.extend(body_probes(
                &method,
                &concrete,
                schema,
                &schema["example"],
                closed_port,
                &mut rng,
            ));
        } else if method == Method::POST {
            // Bodies where none is read are ignored, malformed or not.
            let mut junk = Probe::new("junk body", &method, concrete.clone())
                .raw("{not json", "application/json");
            junk.documented = true;
            probes.push(junk);
        }
        probes.extend(big_body_probes(&method, &concrete, reads_body));

        for probe in &probes {
            let answer = send(&service, Some(&token), probe).await;
            check_answer(probe, &answer, &documented);
            let what = probe.what.as_str();
            if what.starts_with("too big body") {
                assert_eq!(
                    answer.status, 413,
                    "{what} {method_name} {path}: {}",
                    answer.text
                );
            }
            if what.starts_with("unknown field") {
                let name = what.split('`').nth(1).unwrap();
                assert_eq!(answer.status, 400, "{what}: {}", answer.text);
                assert!(
                    answer.body["error"].as_str().unwrap().contains(name),
                    "{what}: the error does not name the field: {}",
                    answer.text
                );
            }
            // A migration's fields are checked one by one; other bodies are one field.
            let submit = path == "/api/v1/migrations";
            if what == "valid example" && submit {
                assert_eq!(answer.status, 422, "{}", answer.text);
                assert_eq!(answer.body["side"], "both", "{}", answer.text);
            }
            if what.starts_with("required") && submit {
                let name = what.split('`').nth(1).unwrap();
                assert_eq!(answer.status, 422, "{what}: {}", answer.text);
                assert!(
                    answer.body["fields"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|f| f["field"] == name),
                    "{what}: not named: {}",
                    answer.text
                );
            }
            if what == "not JSON content type" {
                assert_eq!(answer.status, 415, "{}", answer.text);
            }
        }
        total += probes.len();
        assert!(
            probes.len() <= 150, // 143 for a migration (with source/target .dav and .sieve)
            "{method_name} {path}: {} requests",
            probes.len()
        );
    }
    assert!(total > 150, "only {total} requests");

    // Wrong methods and unknown paths: the error shape too.
    let any = BTreeSet::from([404, 405]);
    for (method, path) in [
        (Method::DELETE, "/api/v1/migrations"),
        (Method::PUT, "/api/v1/info"),
        (Method::GET, "/api/v1/nowhere"),
    ] {
        let probe = Probe::new("wrong method or path", &method, path);
        let answer = send(&service, Some(&token), &probe).await;
        check_answer(&probe, &answer, &any);
    }

    // Nothing was stored by all this.
    let (_, listed) = service.get("/api/v1/migrations").await;
    assert_eq!(listed["migrations"], json!([]), "{listed}");
    service.stop().await;
}
