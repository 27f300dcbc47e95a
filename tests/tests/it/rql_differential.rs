//! Document lists, checked against independent statements of what they should hold:
//! - RQL three ways: compiled to SQL on Postgres, compiled to SQL on SQLite, and a reference
//!   evaluator written here from the documented meaning (`projections/src/json_sql.rs`). On random
//!   documents and random queries all three return the same ids in the same order, and the same
//!   `page.total`.
//! - Access: on random documents, read modes and callers, both backends list exactly the
//!   documents the domain's own rule (`Document::readable_by`) lets the caller read.

use std::cmp::Ordering;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use vigil_domain::actor::{Actor, Via};
use vigil_projections::data::document::{
    ArrayProbes, DocumentRow, ListedSchema, compile, documents,
};
use vigil_projections::page::Limits;
use vigil_projections::runner::Projection as _;
use vigil_projections::store::ReadStore;
use vigil_schemas::access::AccessMode;
use vigil_tests::{Deployment, TestEnv};

const SCHEMA: &str = "5e9f0000000000000000aaaa";

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1)),
        Just(json!(2.5)),
        Just(json!(10)),
        Just(json!(0.1)),
        // Beyond 2^53: equal as doubles to 2^53, which containment would not say.
        Just(json!(9_007_199_254_740_993_u64)),
        Just(json!(9_007_199_254_740_992_u64))
    ]
}

fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("a")),
        Just(json!("b")),
        Just(json!("ab")),
        Just(json!("B")),
        Just(json!("é")),
        // Around the characters of a string a Postgres index holds (200): a test of a shorter
        // string is answered by the prefix alone.
        Just(json!("x".repeat(199))),
        Just(json!(format!("{}é", "x".repeat(198)))),
        Just(json!("x".repeat(200))),
        Just(json!(format!("{}a", "x".repeat(200)))),
        Just(json!(format!("{}é", "x".repeat(199))))
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        number(),
        text(),
        Just(json!(true)),
        Just(json!(false)),
        Just(Value::Null),
    ]
}

/// A field's value, or `None` when the field is missing.
fn field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        scalar().prop_map(Some),
        proptest::collection::vec(prop_oneof![number(), text(), Just(Value::Null)], 0..3)
            .prop_map(|items| Some(Value::Array(items))),
        number().prop_map(|x| Some(json!({"x": x}))),
    ]
}

fn items() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(
            prop_oneof![
                number().prop_map(|v| json!({"v": v})),
                number(),
                Just(json!({}))
            ],
            0..3
        )
        .prop_map(|items| Some(Value::Array(items))),
    ]
}

fn document() -> impl Strategy<Value = Value> {
    (field(), field(), field(), items()).prop_map(|(a, b, n, items)| {
        let mut data = serde_json::Map::new();
        for (name, value) in [("a", a), ("b", b), ("n", n), ("items", items)] {
            if let Some(value) = value {
                data.insert(name.into(), value);
            }
        }
        Value::Object(data)
    })
}

/// A value as RQL text (strings percent-encoded as the SDK does).
fn rql_value(value: &Value) -> String {
    match value {
        Value::String(text) => {
            percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        }
        other => other.to_string(),
    }
}

fn path() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("data.a"),
        Just("data.b"),
        Just("data.n.x"),
        Just("data.n")
    ]
}

fn leaf() -> impl Strategy<Value = String> {
    let compare = (
        prop_oneof![
            Just("eq"),
            Just("ne"),
            Just("gt"),
            Just("ge"),
            Just("lt"),
            Just("le")
        ],
        path(),
        scalar(),
    )
        .prop_map(|(op, path, value)| format!("{op}({path},{})", rql_value(&value)));
    let within = (
        prop_oneof![Just("in"), Just("out")],
        path(),
        proptest::collection::vec(scalar(), 1..3),
    )
        .prop_map(|(op, path, values)| {
            let values: Vec<String> = values.iter().map(rql_value).collect();
            format!("{op}({path},{})", values.join(","))
        });
    let like = (
        prop_oneof![Just("data.a"), Just("data.b")],
        prop_oneof![Just("a"), Just("B"), Just("%C3%A9"), Just("a*"), Just("*b")],
    )
        .prop_map(|(path, pattern)| format!("like({path},{pattern})"));
    let present = (
        prop_oneof![Just("contains"), Just("excludes")],
        prop_oneof![
            Just("data.a"),
            Just("data.n"),
            Just("data.n.x"),
            Just("data.items")
        ],
    )
        .prop_map(|(op, path)| format!("{op}({path})"));
    let element = (
        prop_oneof![Just("contains"), Just("excludes")],
        prop_oneof![Just("data.items"), Just("data.n"), Just("data.a")],
        prop_oneof![Just("eq"), Just("gt"), Just("le"), Just("ne")],
        prop_oneof![Just("v"), Just("x")],
        number(),
    )
        .prop_map(|(op, path, cmp, key, value)| format!("{op}({path},{cmp}({key},{value}))"));
    prop_oneof![compare, within, like, present, element]
}

fn filter() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => leaf(),
        1 => (leaf(), leaf()).prop_map(|(a, b)| format!("and({a},{b})")),
        1 => (leaf(), leaf()).prop_map(|(a, b)| format!("or({a},{b})")),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let sort = proptest::collection::vec(
        (
            prop_oneof![Just("+"), Just("-")],
            prop_oneof![
                Just("data.a"),
                Just("data.b"),
                Just("data.n.x"),
                Just("data.items")
            ],
        ),
        0..3,
    );
    (
        proptest::option::of(filter()),
        sort,
        proptest::option::of((1u64..6, 0u64..4)),
    )
        .prop_map(|(filter, sort, limit)| {
            let mut terms: Vec<String> = filter.into_iter().collect();
            if !sort.is_empty() {
                let keys: Vec<String> = sort.iter().map(|(d, p)| format!("{d}{p}")).collect();
                terms.push(format!("sort({})", keys.join(",")));
            }
            terms.push(match limit {
                Some((limit, offset)) => format!("limit({limit},{offset})"),
                None => "limit(100)".into(),
            });
            terms.join("&")
        })
}

// --- The reference evaluator -------------------------------------------------------------------

use vigil_projections::rql::{Cmp, Direction, Expr, Scalar};

/// The value at `keys` under `root`, without stepping into arrays.
fn at<'a>(root: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .try_fold(root, |value, key| value.as_object()?.get(*key))
}

/// The values a comparison looks at: the elements of an array, or the value itself.
fn values(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn test_one(op: Cmp, expected: &Scalar, value: &Value) -> bool {
    let ordering = match (expected, value) {
        (Scalar::Number(n), Value::Number(v)) => v.as_f64().and_then(|v| v.partial_cmp(n)),
        (Scalar::String(s), Value::String(v)) => Some(v.as_str().cmp(s.as_str())),
        (Scalar::Bool(b), Value::Bool(v)) if matches!(op, Cmp::Eq | Cmp::Ne) => Some(v.cmp(b)),
        (Scalar::Null, Value::Null) if matches!(op, Cmp::Eq | Cmp::Ne) => Some(Ordering::Equal),
        _ => None,
    };
    ordering.is_some_and(|o| match op {
        Cmp::Eq | Cmp::Ne => o == Ordering::Equal,
        Cmp::Gt => o == Ordering::Greater,
        Cmp::Ge => o != Ordering::Less,
        Cmp::Lt => o == Ordering::Less,
        Cmp::Le => o != Ordering::Greater,
    })
}

fn any_equal(found: Option<&Value>, expected: &[Scalar]) -> bool {
    match found {
        None => expected.contains(&Scalar::Null),
        Some(value) => values(value)
            .into_iter()
            .any(|v| expected.iter().any(|e| test_one(Cmp::Eq, e, v))),
    }
}

fn like(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    if !pattern.contains('*') {
        return text.contains(&pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `filter` holds for `root` (a document, or an element for a relative condition).
fn holds(filter: &Expr, root: &Value) -> bool {
    let found = |path: &str| {
        let keys: Vec<&str> = path.split('.').collect();
        at(root, &keys).cloned()
    };
    match filter {
        Expr::And(parts) => parts.iter().all(|p| holds(p, root)),
        Expr::Or(parts) => parts.is_empty() || parts.iter().any(|p| holds(p, root)),
        Expr::Compare {
            path,
            op: Cmp::Ne,
            value,
        } => !any_equal(found(path).as_ref(), std::slice::from_ref(value)),
        Expr::Compare {
            path,
            op: Cmp::Eq,
            value,
        } => any_equal(found(path).as_ref(), std::slice::from_ref(value)),
        Expr::Compare { path, op, value } => {
            found(path).is_some_and(|v| values(&v).into_iter().any(|v| test_one(*op, value, v)))
        }
        Expr::In {
            path,
            values: expected,
            negated,
        } => any_equal(found(path).as_ref(), expected) != *negated,
        Expr::Like { path, pattern } => found(path).is_some_and(|v| {
            values(&v)
                .into_iter()
                .any(|v| v.as_str().is_some_and(|text| like(pattern, text)))
        }),
        Expr::Contains {
            path,
            element: None,
            negated,
        } => found(path).is_some() != *negated,
        Expr::Contains {
            path,
            element: Some(element),
            negated,
        } => {
            let elements = match found(path) {
                Some(Value::Array(items)) => items,
                Some(object @ Value::Object(_)) => vec![object],
                _ => Vec::new(),
            };
            elements.iter().any(|e| holds(element, e)) != *negated
        }
    }
}

/// A document's sort key at `path`: type rank, then number, then text.
fn sort_key(data: &Value, path: &str) -> (u8, Option<f64>, Option<String>) {
    let keys: Vec<&str> = path.split('.').skip(1).collect();
    match at(data, &keys) {
        None | Some(Value::Null) => (0, None, None),
        Some(Value::Number(n)) => (1, n.as_f64(), None),
        Some(Value::String(s)) => (2, None, Some(s.clone())),
        Some(Value::Bool(b)) => (3, Some(f64::from(u8::from(*b))), None),
        Some(_) => (4, None, None),
    }
}

fn compare_keys(
    a: &(u8, Option<f64>, Option<String>),
    b: &(u8, Option<f64>, Option<String>),
) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| a.1.partial_cmp(&b.1).unwrap_or(Ordering::Equal))
        .then_with(|| a.2.cmp(&b.2))
}

/// The ids the reference evaluator answers, and the total.
fn reference(documents: &[(String, Value)], raw: &str) -> (Vec<String>, u64) {
    let query = vigil_projections::rql::parse(raw).expect("generated RQL parses");
    let document = |data: &Value| json!({"data": data});
    let mut matching: Vec<&(String, Value)> = documents
        .iter()
        .filter(|(_, data)| {
            query
                .filter
                .as_ref()
                .is_none_or(|f| holds(f, &document(data)))
        })
        .collect();
    matching.sort_by(|(a_id, a), (b_id, b)| {
        query
            .sort
            .iter()
            .map(|(path, direction)| {
                let order = compare_keys(&sort_key(a, path), &sort_key(b, path));
                if *direction == Direction::Descending {
                    order.reverse()
                } else {
                    order
                }
            })
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a_id.cmp(b_id))
    });
    let total = matching.len() as u64;
    let limit = query.limit.unwrap_or(20) as usize;
    let ids = matching
        .into_iter()
        .skip(query.offset as usize)
        .take(limit)
        .map(|(id, _)| id.clone())
        .collect();
    (ids, total)
}

/// A document row as the differential tests store it.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    creator: Option<String>,
    users: Vec<String>,
    groups: Vec<String>,
    data: Value,
}

impl Row {
    /// A row for each of `datas`, their ids numbered in order.
    fn numbered(datas: Vec<Value>) -> Vec<Self> {
        datas
            .into_iter()
            .enumerate()
            .map(|(i, data)| Self::with_data(i, data))
            .collect()
    }

    fn with_data(index: usize, data: Value) -> Self {
        Self {
            id: format!("{index:024x}"),
            creator: None,
            users: Vec::new(),
            groups: Vec::new(),
            data,
        }
    }
}

async fn replace_documents(store: &ReadStore, rows: &[Row]) -> anyhow::Result<()> {
    vigil_projections::with_pool!(store, pool => {
        sqlx::query("DELETE FROM documents_v1").execute(pool).await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO documents_v1 (id, schema_id, creator_id, user_ids, group_ids, status, data, \
                 status_changed_timestamp, creation_timestamp, update_timestamp, position) \
                 VALUES ($1, $2, $3, $4, $5, 'new', $6, 0, 0, 0, 1)",
            )
            .bind(&row.id)
            .bind(SCHEMA)
            .bind(&row.creator)
            .bind(sqlx::types::Json(json!(row.users)))
            .bind(sqlx::types::Json(json!(row.groups)))
            .bind(sqlx::types::Json(row.data.clone()))
            .execute(pool)
            .await?;
        }
    });
    Ok(())
}

/// The paths the generated queries use, which the schema indexes (when the lists are told so)
/// and whose indexes are built on both stores.
const INDEXED: [&str; 4] = ["data.a", "data.b", "data.n.x", "data.n"];

/// Builds an index of [`SCHEMA`] on each of [`INDEXED`], and a `text` index of its one-key
/// paths, as the documents projection does.
async fn build_indexes(store: &ReadStore) -> anyhow::Result<()> {
    for (n, path) in INDEXED.iter().enumerate() {
        vigil_projections::with_pool!(store, pool => {
            sqlx::query(
                "INSERT INTO document_indexes_v1 (id, schema_id, fields, position) VALUES ($1, $2, $3, 1)",
            )
            .bind(format!("{n:024x}"))
            .bind(SCHEMA)
            .bind(sqlx::types::Json(json!([{"name": path, "type": "asc"}])))
            .execute(pool)
            .await?;
        });
    }
    vigil_projections::with_pool!(store, pool => {
        sqlx::query(
            "INSERT INTO document_indexes_v1 (id, schema_id, fields, position) VALUES ($1, $2, $3, 1)",
        )
        .bind(format!("{:024x}", INDEXED.len()))
        .bind(SCHEMA)
        .bind(sqlx::types::Json(json!([
            {"name": "data.a", "type": "text"},
            {"name": "data.b", "type": "text"},
            {"name": "data.n", "type": "text"},
        ])))
        .execute(pool)
        .await?;
    });
    let derived = vigil_projections::data::document::Documents
        .derived_indexes()
        .ok_or_else(|| anyhow::anyhow!("documents derive indexes"))?;
    vigil_projections::runner::reconcile(store, derived).await?;
    Ok(())
}

/// The ids and total of a document list as `actor` sees it under `read_mode`, compiled for the
/// `indexed` paths; with `arrays`, as if every indexed path held arrays somewhere (else as the
/// documents are).
async fn answer(
    store: &ReadStore,
    raw: &str,
    read_mode: &AccessMode,
    actor: &Actor,
    indexed: &[String],
    arrays: bool,
) -> anyhow::Result<(Vec<String>, u64)> {
    let query = vigil_projections::rql::parse(raw)?;
    // A `text` index covers the one-key paths whenever the others are indexed.
    let searched: Vec<String> = indexed
        .iter()
        .filter(|path| path.matches('.').count() == 1)
        .cloned()
        .collect();
    let schema = ListedSchema {
        id: SCHEMA,
        indexed,
        searched: &searched,
        name: "differential",
        read_mode,
        limits: Limits {
            default: 20,
            maximum: 100,
        },
    };
    let page = if arrays {
        let compiled = compile(store, schema, indexed, actor, &query)?;
        vigil_projections::fetch_page!(store, compiled, DocumentRow)?
    } else {
        documents(store, schema, actor, &query, &ArrayProbes::default(), 0).await?
    };
    Ok((
        page.data.into_iter().map(|row| row.id).collect(),
        page.total.unwrap_or(0),
    ))
}

/// Runs `check` on `cases` values of `strategy` with the read stores of both deployments, on a
/// roomier stack (the strategies' types nest deeply).
fn on_both_stores<S>(
    strategy: S,
    cases: u32,
    check: impl Fn(&[ReadStore; 2], S::Value) -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<()>
where
    S: Strategy + Send + 'static,
{
    std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let (embedded, production) = runtime.block_on(async {
                anyhow::Ok((
                    TestEnv::new(Deployment::Embedded).await?,
                    TestEnv::new(Deployment::Production).await?,
                ))
            })?;
            let stores = runtime.block_on(async {
                let stores = [embedded.open().await?.store, production.open().await?.store];
                for store in &stores {
                    build_indexes(store).await?;
                }
                anyhow::Ok(stores)
            })?;
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            });
            let outcome = runner.run(&strategy, |value| {
                let _guard = runtime.enter();
                check(&stores, value).map_err(|e| TestCaseError::fail(format!("{e:#}")))
            });
            runtime.block_on(async {
                for store in &stores {
                    store.close().await;
                }
            });
            outcome.map_err(|e| anyhow::anyhow!("{e}"))
        })?
        .join()
        .map_err(|_| anyhow::anyhow!("the differential test panicked"))?
}

/// Blocks on `future` from inside [`on_both_stores`]' check.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

#[test]
fn postgres_sqlite_and_the_reference_evaluator_agree() -> anyhow::Result<()> {
    let case = (
        proptest::collection::vec(document(), 0..10),
        proptest::collection::vec(query(), 1..6),
    );
    on_both_stores(case, 256, |stores, (datas, queries)| {
        let rows = Row::numbered(datas);
        let documents: Vec<(String, Value)> = rows
            .iter()
            .map(|r| (r.id.clone(), r.data.clone()))
            .collect();
        block_on(async {
            for store in stores {
                replace_documents(store, &rows).await?;
            }
            let indexed: Vec<String> = INDEXED.iter().map(|p| (*p).to_owned()).collect();
            for raw in &queries {
                let expected = reference(&documents, raw);
                for (store, name) in stores.iter().zip(["sqlite", "postgres"]) {
                    for (indexed, arrays, form) in [
                        (&[][..], false, "general"),
                        (&indexed[..], false, "indexed"),
                        (&indexed[..], true, "indexed, with the array halves"),
                    ] {
                        let found = answer(
                            store,
                            raw,
                            &AccessMode::AllUsers,
                            &Actor::system(Via::Cli),
                            indexed,
                            arrays,
                        )
                        .await?;
                        anyhow::ensure!(
                            found == expected,
                            "{name} ({form} form) answered {found:?} to `{raw}`, the reference {expected:?}, over {documents:?}"
                        );
                    }
                }
            }
            anyhow::Ok(())
        })
    })
}

/// A document whose array holds two matching elements is listed once (SQLite made the `EXISTS`
/// over the elements a join, which listed it twice: the second page of one showed it again).
#[test]
fn a_document_with_two_matching_elements_is_listed_once() -> anyhow::Result<()> {
    let case = (
        Just(vec![
            json!({"a": ["b", "b"], "items": [{"v": 1}, {"v": 1}]}),
        ]),
        Just(vec![
            "like(data.a,B)&limit(1,1)".to_owned(),
            "eq(data.a,b)&limit(1,1)".to_owned(),
            "contains(data.items,eq(v,1))&limit(1,1)".to_owned(),
        ]),
    );
    on_both_stores(case, 1, |stores, (datas, queries)| {
        let rows = Row::numbered(datas);
        block_on(async {
            for store in stores {
                replace_documents(store, &rows).await?;
                for raw in &queries {
                    let found = answer(
                        store,
                        raw,
                        &AccessMode::AllUsers,
                        &Actor::system(Via::Cli),
                        &[],
                        false,
                    )
                    .await?;
                    anyhow::ensure!(found == (vec![], 1), "{raw}: {found:?}");
                }
            }
            anyhow::Ok(())
        })
    })
}

// --- Access: the list SQL against the domain's rule ---------------------------------------------

const USERS: [&str; 3] = [
    "5e9f00000000000000000001",
    "5e9f00000000000000000002",
    "5e9f00000000000000000003",
];
const GROUPS: [&str; 3] = [
    "5e9f0000000000000000000a",
    "5e9f0000000000000000000b",
    "5e9f0000000000000000000c",
];

fn some_of(names: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(names, 0..=names.len())
        .prop_map(|chosen| chosen.into_iter().map(str::to_owned).collect())
}

fn read_mode() -> impl Strategy<Value = AccessMode> {
    use vigil_schemas::access::Relation;
    let relations = [
        Relation::Creator,
        Relation::LinkedUsers,
        Relation::LinkedGroupStaff,
        Relation::LinkedGroupPatients,
    ];
    prop_oneof![
        Just(AccessMode::PermissionRequired),
        Just(AccessMode::AllUsers),
        proptest::sample::subsequence(relations.to_vec(), 0..=4).prop_map(AccessMode::Relational),
    ]
}

fn permission() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(
        vec![
            "VIEW_DOCUMENTS:differential",
            "VIEW_DOCUMENTS:other",
            "VIEW_DOCUMENTS",
            "UPDATE_DOCUMENTS",
        ],
        0..=1,
    )
    .prop_map(|chosen| chosen.into_iter().map(str::to_owned).collect())
}

/// A user: which one, their global permissions, the groups they are staff of (with permissions
/// there) and patient of.
fn actor() -> impl Strategy<Value = Actor> {
    use vigil_domain::actor::Rights;
    use vigil_domain::permission::Permissions;
    (
        0..USERS.len(),
        permission(),
        proptest::collection::vec((0..GROUPS.len(), permission()), 0..3),
        some_of(&GROUPS),
    )
        .prop_map(|(user, global, staff, patient)| {
            let rights = Rights {
                global: global.into_iter().collect::<Permissions>(),
                staff: staff
                    .into_iter()
                    .map(|(group, permissions)| {
                        (id(GROUPS[group]), permissions.into_iter().collect())
                    })
                    .collect(),
                patient: patient.iter().map(|g| id(g)).collect(),
            };
            Actor::user(id(USERS[user]), None, rights, Via::Http, None)
        })
}

fn id(text: &str) -> vigil_domain::id::Id {
    text.parse().expect("a test id")
}

fn row() -> impl Strategy<Value = (Option<String>, Vec<String>, Vec<String>)> {
    (
        proptest::option::of(proptest::sample::select(USERS.to_vec()).prop_map(str::to_owned)),
        some_of(&USERS),
        some_of(&GROUPS),
    )
}

/// Whether the domain lets `actor` read the document of `row` under `read_mode`.
fn readable_in_domain(row: &Row, read_mode: &AccessMode, actor: &Actor) -> anyhow::Result<bool> {
    use vigil_domain::data::document::{Document, SchemaSnapshot};
    use vigil_schemas::compiled::CompiledSchema;
    use vigil_schemas::definition::Definition;
    let mut definition = Definition::default();
    definition.settings.read_mode = read_mode.clone();
    let schema = SchemaSnapshot {
        id: id(SCHEMA),
        name: "differential".into(),
        disabled: false,
        compiled: CompiledSchema::compile(definition)?,
    };
    let document = Document {
        created: true,
        schema_id: Some(id(SCHEMA)),
        creator_id: row.creator.as_deref().map(id),
        user_ids: row.users.iter().map(|u| id(u)).collect(),
        group_ids: row.groups.iter().map(|g| id(g)).collect(),
        ..Document::default()
    };
    Ok(document.readable_by(actor, &schema))
}

#[test]
fn document_lists_show_exactly_what_the_domain_lets_a_caller_read() -> anyhow::Result<()> {
    let case = (proptest::collection::vec(row(), 0..8), read_mode(), actor());
    on_both_stores(case, 256, |stores, (rows, read_mode, actor)| {
        let rows: Vec<Row> = rows
            .into_iter()
            .enumerate()
            .map(|(i, (creator, users, groups))| Row {
                creator,
                users,
                groups,
                ..Row::with_data(i, json!({}))
            })
            .collect();
        let mut expected = Vec::new();
        for row in &rows {
            if readable_in_domain(row, &read_mode, &actor)? {
                expected.push(row.id.clone());
            }
        }
        let total = expected.len() as u64;
        block_on(async {
            for store in stores {
                replace_documents(store, &rows).await?;
            }
            for (store, name) in stores.iter().zip(["sqlite", "postgres"]) {
                let found = answer(store, "limit(100)", &read_mode, &actor, &[], false).await?;
                anyhow::ensure!(
                    found == (expected.clone(), total),
                    "{name} shows {found:?}, the domain {expected:?}, under {read_mode:?} to {actor:?} over {rows:?}"
                );
            }
            anyhow::Ok(())
        })
    })
}
