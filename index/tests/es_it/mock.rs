//! A mock Elasticsearch 8.x on 127.0.0.1: the bulk, ILM, template, data stream, refresh and
//! count APIs, answering the way the ES 8.x reference documents them, with fault injection.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

/// Larger than any test batch; the mock enforces its own `max_content_length` below it.
const BODY_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// Faults to inject; `0` disables one. A fault fires on one request or item in `n`, chosen by
/// hashing a counter: reproducible from run to run, but with no period that concurrent
/// clients could fall into (a strict "every other request" starves one of two alternating
/// clients forever).
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// One `_bulk` request in n is refused as a whole with 429.
    pub request_429_every: u64,
    /// One `_bulk` request in n is refused as a whole with 503.
    pub request_503_every: u64,
    /// One bulk item in n is rejected with 429 `es_rejected_execution_exception`.
    pub item_429_every: u64,
    /// Bodies above this many bytes get 413, like `http.max_content_length`.
    pub max_content_length: usize,
    /// When set, requests must carry `Authorization: ApiKey <this>`.
    pub required_api_key: Option<String>,
    /// Keep only the `_id`s, not the documents: for benchmarks that store millions.
    pub ids_only: bool,
    /// Check each source only for JSON syntax, not against the mapping, and keep only its
    /// `_id`: for benchmarks where the mock shares the CPUs with the pipeline it stands for.
    /// Parsing every document into a value tree cost ~10 µs per event there, more than all of
    /// the pipeline's own stages.
    pub lean: bool,
}

#[derive(Debug, Default)]
struct DataStream {
    /// Stored documents by `_id`.
    docs: HashMap<String, Value>,
}

#[derive(Debug, Default)]
struct Cluster {
    policies: BTreeMap<String, Value>,
    component_templates: BTreeMap<String, Value>,
    index_templates: BTreeMap<String, Value>,
    data_streams: BTreeMap<String, DataStream>,
    seq_no: u64,
}

#[derive(Debug, Default)]
struct Shared {
    cluster: Mutex<Cluster>,
    faults: Mutex<Faults>,
    bulk_requests: AtomicU64,
    bulk_items: AtomicU64,
    /// Largest `_bulk` body received, to check the writer's batches are bounded.
    max_bulk_body_bytes: AtomicU64,
    /// `index` (not `create`) operations received: the writer must never send one.
    index_ops: AtomicU64,
    created: AtomicU64,
}

/// A running mock; dropping it stops the server.
#[derive(Debug)]
pub struct MockEs {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockEs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockEs {
    pub async fn start() -> anyhow::Result<MockEs> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/", get(root))
            .route("/_ilm/policy/{name}", put(put_policy))
            .route("/_component_template/{name}", put(put_component_template))
            .route("/_index_template/{name}", put(put_index_template))
            .route(
                "/_data_stream/{name}",
                put(put_data_stream).delete(delete_data_stream),
            )
            .route("/{index}/_bulk", post(bulk).put(bulk))
            .route("/{index}/_refresh", post(refresh))
            .route("/{index}/_count", get(count).post(count))
            .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("mock elasticsearch stopped: {e}");
            }
        });
        Ok(MockEs { addr, shared, task })
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// The `_id`s stored in `data_stream`.
    pub fn stored_ids(&self, data_stream: &str) -> Vec<String> {
        let cluster = lock(&self.shared.cluster);
        cluster
            .data_streams
            .get(data_stream)
            .map(|ds| ds.docs.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The stored document with `id`.
    pub fn stored_doc(&self, data_stream: &str, id: &str) -> Option<Value> {
        let cluster = lock(&self.shared.cluster);
        cluster.data_streams.get(data_stream)?.docs.get(id).cloned()
    }

    pub fn policy(&self, name: &str) -> Option<Value> {
        lock(&self.shared.cluster).policies.get(name).cloned()
    }

    pub fn component_template(&self, name: &str) -> Option<Value> {
        lock(&self.shared.cluster)
            .component_templates
            .get(name)
            .cloned()
    }

    pub fn index_template(&self, name: &str) -> Option<Value> {
        lock(&self.shared.cluster)
            .index_templates
            .get(name)
            .cloned()
    }

    pub fn has_data_stream(&self, name: &str) -> bool {
        lock(&self.shared.cluster).data_streams.contains_key(name)
    }

    pub fn bulk_requests(&self) -> u64 {
        self.shared.bulk_requests.load(Ordering::Relaxed)
    }

    pub fn max_bulk_body_bytes(&self) -> u64 {
        self.shared.max_bulk_body_bytes.load(Ordering::Relaxed)
    }

    pub fn index_ops(&self) -> u64 {
        self.shared.index_ops.load(Ordering::Relaxed)
    }

    /// 201 answers given: with `create`, at most one per `_id`.
    pub fn created(&self) -> u64 {
        self.shared.created.load(Ordering::Relaxed)
    }
}

/// True for about one `counter` in `every` (never when `every` is 0).
fn fires(counter: u64, every: u64, salt: u64) -> bool {
    every > 0
        && xxhash_rust::xxh3::xxh3_64_with_seed(&counter.to_le_bytes(), salt).is_multiple_of(every)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking handler must not hide the state from the test's assertions.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every ES 8 response carries `X-Elastic-Product: Elasticsearch`.
fn reply(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    resp
}

/// The error body shape of the ES REST API.
fn error(status: StatusCode, kind: &str, reason: &str) -> Response {
    reply(
        status,
        json!({
            "error": {
                "root_cause": [{ "type": kind, "reason": reason }],
                "type": kind,
                "reason": reason,
            },
            "status": status.as_u16(),
        }),
    )
}

fn acknowledged() -> Response {
    reply(StatusCode::OK, json!({ "acknowledged": true }))
}

/// `Err(response)` when the request lacks the required API key.
fn check_auth(shared: &Shared, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let required = lock(&shared.faults).required_api_key.clone();
    let Some(key) = required else {
        return Ok(());
    };
    let expected = format!("ApiKey {key}");
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(got) if got == expected => Ok(()),
        _ => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "security_exception",
            "missing authentication credentials for REST request [/_bulk]",
        ))),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "x_content_parse_exception",
            &format!("failed to parse request body: {e}"),
        ))
    })
}

async fn root() -> Response {
    reply(
        StatusCode::OK,
        json!({
            "name": "mock",
            "cluster_name": "sluice-test",
            "version": { "number": "8.15.0", "build_flavor": "default" },
            "tagline": "You Know, for Search",
        }),
    )
}

async fn put_policy(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = check_auth(&shared, &headers) {
        return *resp;
    }
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    if !v["policy"]["phases"].is_object() {
        return error(
            StatusCode::BAD_REQUEST,
            "x_content_parse_exception",
            "[put_lifecycle_request] policy with phases is required",
        );
    }
    lock(&shared.cluster).policies.insert(name, v);
    acknowledged()
}

async fn put_component_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = check_auth(&shared, &headers) {
        return *resp;
    }
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    if !v["template"].is_object() {
        return error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: template is missing;",
        );
    }
    lock(&shared.cluster).component_templates.insert(name, v);
    acknowledged()
}

async fn put_index_template(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = check_auth(&shared, &headers) {
        return *resp;
    }
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    if v["index_patterns"].as_array().is_none_or(|p| p.is_empty()) {
        return error(
            StatusCode::BAD_REQUEST,
            "action_request_validation_exception",
            "Validation Failed: 1: index patterns are missing;",
        );
    }
    let mut cluster = lock(&shared.cluster);
    for component in v["composed_of"].as_array().into_iter().flatten() {
        let component = component.as_str().unwrap_or_default();
        if !cluster.component_templates.contains_key(component) {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_index_template_exception",
                &format!(
                    "index_template [{name}] invalid, cause [index template [{name}] specifies component templates [{component}] that do not exist]"
                ),
            );
        }
    }
    cluster.index_templates.insert(name, v);
    acknowledged()
}

/// ES wildcard match: `*` matches any run of characters.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            let Some(tail) = name.strip_prefix(prefix) else {
                return false;
            };
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && pattern_matches(rest, &tail[i..]))
        }
    }
}

/// True when an index template with `data_stream` matches `name`.
fn data_stream_template_matches(cluster: &Cluster, name: &str) -> bool {
    cluster.index_templates.values().any(|t| {
        t["data_stream"].is_object()
            && t["index_patterns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|p| pattern_matches(p, name))
    })
}

async fn put_data_stream(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = check_auth(&shared, &headers) {
        return *resp;
    }
    let mut cluster = lock(&shared.cluster);
    if cluster.data_streams.contains_key(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            "resource_already_exists_exception",
            &format!("data_stream [{name}] already exists"),
        );
    }
    if !data_stream_template_matches(&cluster, &name) {
        return error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            &format!("no matching index template found for data stream [{name}]"),
        );
    }
    cluster.data_streams.insert(name, DataStream::default());
    acknowledged()
}

async fn delete_data_stream(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Response {
    match lock(&shared.cluster).data_streams.remove(&name) {
        Some(_) => acknowledged(),
        None => error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            &format!("no such index [{name}]"),
        ),
    }
}

async fn refresh() -> Response {
    reply(
        StatusCode::OK,
        json!({ "_shards": { "total": 1, "successful": 1, "failed": 0 } }),
    )
}

async fn count(State(shared): State<Arc<Shared>>, Path(index): Path<String>) -> Response {
    let cluster = lock(&shared.cluster);
    match cluster.data_streams.get(&index) {
        Some(ds) => reply(StatusCode::OK, json!({ "count": ds.docs.len() })),
        None => error(
            StatusCode::NOT_FOUND,
            "index_not_found_exception",
            &format!("no such index [{index}]"),
        ),
    }
}

/// Why a document cannot be indexed under the Sluice mappings, as ES would say it.
fn validate_doc(id: &str, doc: &Value) -> Result<(), (&'static str, String)> {
    if doc.get("@timestamp").and_then(Value::as_str).is_none() {
        return Err((
            "document_parsing_exception",
            "data stream timestamp field [@timestamp] is missing".to_owned(),
        ));
    }
    if let Some(ip) = doc.pointer("/client/ip") {
        let ok = ip.as_str().is_some_and(|s| s.parse::<IpAddr>().is_ok());
        if !ok {
            // ES >= 8.8 names this document_parsing_exception; the brief's ES docs
            // mapper_parsing_exception. The writer decides on the status, not the type.
            return Err((
                "mapper_parsing_exception",
                format!(
                    "failed to parse field [client.ip] of type [ip] in document with id '{id}'. Preview of field's value: '{ip}'"
                ),
            ));
        }
    }
    if let Some(code) = doc.pointer("/http/response/status_code")
        && !code.is_u64()
    {
        return Err((
            "mapper_parsing_exception",
            format!(
                "failed to parse field [http.response.status_code] of type [long] in document with id '{id}'"
            ),
        ));
    }
    Ok(())
}

fn item(op: &str, index: &str, id: &str, status: u16, extra: Value) -> Value {
    let mut result = json!({ "_index": index, "_id": id, "status": status });
    if let (Some(obj), Value::Object(more)) = (result.as_object_mut(), extra) {
        obj.extend(more);
    }
    json!({ op: result })
}

fn item_error(kind: &str, reason: &str, index: &str) -> Value {
    json!({ "error": { "type": kind, "reason": reason, "index": index, "shard": "0" } })
}

async fn bulk(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(resp) = check_auth(&shared, &headers) {
        return *resp;
    }
    let filter = FilterPath::parse(params.get("filter_path").map(String::as_str));
    let n = shared.bulk_requests.fetch_add(1, Ordering::Relaxed) + 1;
    shared
        .max_bulk_body_bytes
        .fetch_max(body.len() as u64, Ordering::Relaxed);
    let faults = lock(&shared.faults).clone();
    if faults.max_content_length > 0 && body.len() > faults.max_content_length {
        // ES's netty layer answers 413 without a JSON body.
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    if fires(n, faults.request_429_every, 1) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "es_rejected_execution_exception",
            "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=0]",
        );
    }
    if fires(n, faults.request_503_every, 2) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_shards_exception",
            "[.ds-logs][0] primary shard is not active Timeout: [1m]",
        );
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !(content_type.starts_with("application/x-ndjson")
        || content_type.starts_with("application/json")
        || content_type.starts_with("application/vnd.elasticsearch+x-ndjson"))
    {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "media_type_header_exception",
            &format!("Content-Type header [{content_type}] is not supported"),
        );
    }
    if !body.ends_with(b"\n") {
        return error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        );
    }
    let mut lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    // The `items` array's elements, comma-separated, written as they are decided.
    let mut items: Vec<u8> = Vec::new();
    let mut errors = false;
    let mut cluster = lock(&shared.cluster);
    let backing = format!(".ds-{target}-2026.12.04-000001");
    while let Some(action_line) = lines.next() {
        let action: Value = match serde_json::from_slice(action_line) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "x_content_parse_exception",
                    &format!("malformed action/metadata line: {e}"),
                );
            }
        };
        let Some((op, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                "Malformed action/metadata line, expected START_OBJECT",
            );
        };
        let op = op.clone();
        let Some(source_line) = lines.next() else {
            return error(
                StatusCode::BAD_REQUEST,
                "action_request_validation_exception",
                "Validation Failed: 1: source is missing;",
            );
        };
        let item_n = shared.bulk_items.fetch_add(1, Ordering::Relaxed) + 1;
        cluster.seq_no += 1;
        let id = meta
            .get("_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("auto-{}", cluster.seq_no));
        if op == "index" {
            shared.index_ops.fetch_add(1, Ordering::Relaxed);
        }
        let reject = |items: &mut Vec<u8>, status: u16, kind: &str, reason: &str, index: &str| {
            let error = item_error(kind, reason, index);
            push_item(items, &filter, &item(&op, index, &id, status, error));
        };
        if fires(item_n, faults.item_429_every, 3) {
            errors = true;
            reject(
                &mut items,
                429,
                "es_rejected_execution_exception",
                "rejected execution of primary operation [coordinating_and_primary_bytes=1, replica_bytes=0]",
                &backing,
            );
            continue;
        }
        if op != "create" {
            errors = true;
            reject(
                &mut items,
                400,
                "illegal_argument_exception",
                "only write ops with an op_type of create are allowed in data streams",
                &backing,
            );
            continue;
        }
        if !cluster.data_streams.contains_key(&target) {
            if data_stream_template_matches(&cluster, &target) {
                cluster
                    .data_streams
                    .insert(target.clone(), DataStream::default());
            } else {
                errors = true;
                reject(
                    &mut items,
                    404,
                    "index_not_found_exception",
                    &format!("no such index [{target}]"),
                    &target,
                );
                continue;
            }
        }
        let parsed = if faults.lean {
            serde_json::from_slice::<serde::de::IgnoredAny>(source_line).map(|_| Value::Null)
        } else {
            serde_json::from_slice(source_line)
        };
        let doc: Value = match parsed {
            Ok(v) => v,
            Err(e) => {
                errors = true;
                reject(
                    &mut items,
                    400,
                    "document_parsing_exception",
                    &e.to_string(),
                    &backing,
                );
                continue;
            }
        };
        if !faults.lean
            && let Err((kind, reason)) = validate_doc(&id, &doc)
        {
            errors = true;
            reject(&mut items, 400, kind, &reason, &backing);
            continue;
        }
        let seq_no = cluster.seq_no;
        let ds = cluster
            .data_streams
            .get_mut(&target)
            .expect("created above when missing");
        if ds.docs.contains_key(&id) {
            errors = true;
            reject(
                &mut items,
                409,
                "version_conflict_engine_exception",
                &format!("[{id}]: version conflict, document already exists (current version [1])"),
                &backing,
            );
            continue;
        }
        let doc = if faults.ids_only || faults.lean {
            Value::Null
        } else {
            doc
        };
        ds.docs.insert(id.clone(), doc);
        shared.created.fetch_add(1, Ordering::Relaxed);
        push_created(&mut items, &filter, &op, &backing, &id, seq_no);
    }
    drop(cluster);
    // Written by hand rather than as one `Value`: building a value tree per item cost more
    // than the pipeline stages a benchmark measures beside this mock.
    let mut top = Vec::new();
    if filter.keeps(&["errors"]) {
        top.push(format!("\"errors\":{errors}"));
    }
    if filter.keeps(&["items"]) {
        top.push(format!("\"items\":[{}]", String::from_utf8_lossy(&items)));
    }
    if filter.keeps(&["took"]) {
        top.push("\"took\":1".to_owned());
    }
    let body = format!("{{{}}}", top.join(","));
    let mut resp = (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    resp.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    resp
}

/// The `filter_path` query parameter (ES "response filtering"): comma-separated dotted paths,
/// `*` matching any one key; only the matching parts of the response are returned. Arrays are
/// transparent, as in ES: `items.*.status` applies to every element of `items`.
#[derive(Debug, Default)]
struct FilterPath(Option<Vec<Vec<String>>>);

impl FilterPath {
    fn parse(param: Option<&str>) -> FilterPath {
        FilterPath(param.map(|p| {
            p.split(',')
                .filter(|path| !path.is_empty())
                .map(|path| path.split('.').map(str::to_owned).collect())
                .collect()
        }))
    }

    /// True when the value at `path` (keys from the response root) is returned: a pattern
    /// matches all of `path`, or a prefix of it (then the whole subtree is kept), or `path` is
    /// a prefix of a pattern (then the value is filtered further).
    fn keeps(&self, path: &[&str]) -> bool {
        let Some(patterns) = &self.0 else {
            return true;
        };
        patterns.iter().any(|pattern| {
            pattern
                .iter()
                .zip(path)
                .all(|(want, key)| want == "*" || want == key)
        })
    }

    /// `value` found at `path`, with what the filter drops removed (`None` when nothing is left).
    fn apply(&self, path: &mut Vec<String>, value: &Value) -> Option<Value> {
        let Some(patterns) = &self.0 else {
            return Some(value.clone());
        };
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        if patterns
            .iter()
            .any(|p| p.len() <= keys.len() && p.iter().zip(&keys).all(|(w, k)| w == "*" || w == k))
        {
            return Some(value.clone());
        }
        let Value::Object(map) = value else {
            return None;
        };
        let mut kept = serde_json::Map::new();
        for (key, inner) in map {
            path.push(key.clone());
            let keys: Vec<&str> = path.iter().map(String::as_str).collect();
            if self.keeps(&keys)
                && let Some(inner) = self.apply(path, inner)
            {
                kept.insert(key.clone(), inner);
            }
            path.pop();
        }
        (!kept.is_empty()).then_some(Value::Object(kept))
    }
}

/// Appends one element to the comma-separated `items` of a bulk response, filtered.
fn push_item(items: &mut Vec<u8>, filter: &FilterPath, item: &Value) {
    let Some(item) = filter.apply(&mut vec!["items".to_owned()], item) else {
        return;
    };
    if !items.is_empty() {
        items.push(b',');
    }
    serde_json::to_writer(items, &item).expect("a serde_json::Value always serializes");
}

/// Appends the item of a document created with sequence number `seq_no`, as [`push_item`]
/// would for [`item`] with the 201 fields ES documents, without building it as a value.
fn push_created(
    items: &mut Vec<u8>,
    filter: &FilterPath,
    op: &str,
    index: &str,
    id: &str,
    seq_no: u64,
) {
    let quoted = |s: &str| serde_json::to_string(s).expect("a string always serializes");
    let fields = [
        ("_id", quoted(id)),
        ("_index", quoted(index)),
        ("_primary_term", "1".to_owned()),
        ("_seq_no", seq_no.to_string()),
        (
            "_shards",
            r#"{"failed":0,"successful":1,"total":2}"#.to_owned(),
        ),
        ("_version", "1".to_owned()),
        ("result", r#""created""#.to_owned()),
        ("status", "201".to_owned()),
    ];
    let kept: Vec<String> = fields
        .iter()
        .filter(|(key, _)| filter.keeps(&["items", op, key]))
        .map(|(key, value)| format!("\"{key}\":{value}"))
        .collect();
    if kept.is_empty() {
        return;
    }
    if !items.is_empty() {
        items.push(b',');
    }
    items.extend_from_slice(format!("{{{}:{{{}}}}}", quoted(op), kept.join(",")).as_bytes());
}

#[cfg(test)]
mod tests {
    // Imported in each test: the benches that include this file compile `cfg(test)` without
    // the `#[test]` functions.
    #[test]
    fn created_items_written_by_hand_match_the_value_form() {
        use serde_json::{Value, json};
        let mut items = Vec::new();
        let all = super::FilterPath::parse(None);
        super::push_created(&mut items, &all, "create", ".ds-x-1", "id \"7\"", 42);
        super::push_item(&mut items, &all, &json!({"create": {"status": 409}}));
        let parsed: Value = serde_json::from_slice(&[b"[", &items[..], b"]"].concat())
            .expect("the items are a JSON array's elements");
        let expected = super::item(
            "create",
            ".ds-x-1",
            "id \"7\"",
            201,
            json!({
                "_version": 1,
                "result": "created",
                "_shards": { "total": 2, "successful": 1, "failed": 0 },
                "_seq_no": 42,
                "_primary_term": 1,
            }),
        );
        assert_eq!(parsed, json!([expected, {"create": {"status": 409}}]));
    }

    #[test]
    fn filter_path_keeps_only_the_named_parts() {
        use serde_json::{Value, json};
        let filter = super::FilterPath::parse(Some("errors,items.*.status,items.*.error"));
        assert!(filter.keeps(&["errors"]) && filter.keeps(&["items"]));
        assert!(!filter.keeps(&["took"]));
        let mut items = Vec::new();
        super::push_created(&mut items, &filter, "create", "i", "a", 1);
        let error = json!({"create": {"_id": "b", "status": 400, "error": {"type": "x"}}});
        super::push_item(&mut items, &filter, &error);
        let parsed: Value = serde_json::from_slice(&[b"[", &items[..], b"]"].concat())
            .expect("the items are a JSON array's elements");
        assert_eq!(
            parsed,
            json!([
                {"create": {"status": 201}},
                {"create": {"status": 400, "error": {"type": "x"}}}
            ])
        );
    }

    #[test]
    fn wildcard_patterns() {
        assert!(super::pattern_matches(
            "logs-sluice-*",
            "logs-sluice-default"
        ));
        assert!(!super::pattern_matches(
            "logs-sluice-*",
            "logs-other-default"
        ));
        assert!(super::pattern_matches("logs-*-*", "logs-sluice-x"));
        assert!(super::pattern_matches("exact", "exact"));
    }
}
