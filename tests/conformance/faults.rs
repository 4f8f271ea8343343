//! The fault-only statuses (500, 503), documented once for the whole API, proven by fault
//! injection on each backend and held to the spec by the suite's own checks: 503 when PostgreSQL
//! stops answering and when SQLite stays locked by another process past the busy timeout; 500
//! when a query fails (its table is gone), on both.

use conformance::{
    check::check_against, client::Request, schema::Schemas, Matrix, Spec, Target, Verdict,
};
use serde_json::json;

use crate::{
    pg::Cluster,
    server::{bootstrap, Database, Server},
};

fn spec_of(server: &Server) -> Spec {
    let target = Target::new(&server.base_url, "unused").unwrap();
    Spec::load(&format!("{}/openapi.json", server.base_url), &target.http).unwrap()
}

/// Drops `table` from `database` behind the server's back.
fn drop_table(database: &Database, table: &str) {
    tokio::runtime::Handle::current().block_on(async {
        use sea_orm::ConnectionTrait;
        let store = agentmessage::store::Store::connect(&database.url)
            .await
            .unwrap();
        let cascade = if database.url.starts_with("postgres") {
            " CASCADE"
        } else {
            ""
        };
        store
            .connection()
            .execute_unprepared(&format!("DROP TABLE {table}{cascade}"))
            .await
            .unwrap();
    });
}

/// Records a 500 from `GET /v1/numbers` after its table was dropped, with no internal text.
fn prove_500(database: &Database, spec: &Spec, key: &str, server: &Server, matrix: &mut Matrix) {
    let target = Target::new(&server.base_url, key).unwrap();
    drop_table(database, "phone_numbers");
    let response = target.send(&Request::new("GET", "/v1/numbers")).unwrap();
    assert_eq!(response.status, 500, "{}", response.text);
    for leak in ["phone_numbers", "relation", "table", "sql"] {
        assert!(
            !response.text.to_lowercase().contains(leak),
            "internal text leaked: {}",
            response.text
        );
    }
    let schemas = Schemas::new(&spec.doc);
    let problems = check_against(spec, &schemas, &spec.global[&500], &response);
    matrix.record("(server-wide)", 500, "a query on a dropped table", problems);
}

fn assert_proven(backend: &str, matrix: &Matrix) {
    let rows: String = [500, 503]
        .iter()
        .map(|s| {
            format!(
                "(server-wide)  {s}  {:?}\n",
                matrix.verdict("(server-wide)", *s)
            )
        })
        .collect();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\n== conformance matrix: fault injection on {backend}\n{rows}").as_bytes(),
    );
    for status in [500, 503] {
        assert!(
            matches!(
                matrix.verdict("(server-wide)", status),
                Some(Verdict::Passed { .. })
            ),
            "{backend} {status}: {:?}",
            matrix.verdict("(server-wide)", status)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_only_statuses_keep_the_contract_on_postgres() {
    let (cluster, _dir) = Cluster::create();
    let matrix = tokio::task::spawn_blocking(move || {
        // 503: the database stops answering.
        let database = Database {
            url: format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port),
            _dir: None,
        };
        let key = bootstrap(&database, 10, 10, "+15551112222");
        let server = Server::start(&database);
        let spec = spec_of(&server);
        let schemas = Schemas::new(&spec.doc);
        let mut matrix = Matrix::from_spec(&spec);
        let target = Target::new(&server.base_url, &key).unwrap();
        cluster.stop();
        let response = target.send(&Request::new("GET", "/v1/numbers")).unwrap();
        assert_eq!(response.status, 503, "{}", response.text);
        let problems = check_against(&spec, &schemas, &spec.global[&503], &response);
        matrix.record("(server-wide)", 503, "PostgreSQL stopped", problems);
        drop(server);

        // 500: a query fails, on a PostgreSQL database.
        cluster.start();
        let database = tokio::runtime::Handle::current().block_on(Database::postgres());
        let key = bootstrap(&database, 10, 10, "+15551112222");
        let server = Server::start(&database);
        prove_500(&database, &spec, &key, &server, &mut matrix);
        matrix
    })
    .await
    .unwrap();
    assert_proven("PostgreSQL", &matrix);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_only_statuses_keep_the_contract_on_sqlite() {
    let matrix = tokio::task::spawn_blocking(move || {
        // 503: another process holds SQLite's write lock past the busy timeout.
        let database = Database::sqlite();
        let key = bootstrap(&database, 10, 10, "+15551112222");
        let server = Server::start_with(&database, &["--no-worker", "--db-busy-timeout", "300ms"]);
        let spec = spec_of(&server);
        let schemas = Schemas::new(&spec.doc);
        let mut matrix = Matrix::from_spec(&spec);
        let target = Target::new(&server.base_url, &key).unwrap();
        let runtime = tokio::runtime::Handle::current();
        let (_other, holding) = runtime.block_on(async {
            use sea_orm::{ConnectionTrait, TransactionTrait};
            let mut options = sea_orm::ConnectOptions::new(database.url.clone());
            options.max_connections(1).sqlx_logging(false);
            let other = sea_orm::Database::connect(options).await.unwrap();
            let holding = other.begin().await.unwrap();
            holding
                .execute_unprepared("UPDATE organizations SET name = name")
                .await
                .unwrap();
            (other, holding)
        });
        let put = Request::new("PUT", "/v1/consents/+15554443333").json(json!({"source": "api"}));
        let response = target.send(&put).unwrap();
        runtime.block_on(holding.rollback()).unwrap();
        assert_eq!(response.status, 503, "{}", response.text);
        assert!(
            !response.text.to_lowercase().contains("locked"),
            "internal text leaked: {}",
            response.text
        );
        let problems = check_against(&spec, &schemas, &spec.global[&503], &response);
        matrix.record(
            "(server-wide)",
            503,
            "SQLite locked by another process",
            problems,
        );
        // Once the lock is gone, the same write succeeds (a write looks whether the lock is gone
        // at most every quarter of a second; meanwhile others are 503 at once).
        let put = Request::new("PUT", "/v1/consents/+15554443333").json(json!({"source": "api"}));
        let released = std::time::Instant::now();
        loop {
            let status = target.send(&put).unwrap().status;
            if status == 200 {
                break;
            }
            assert_eq!(status, 503);
            assert!(released.elapsed() < std::time::Duration::from_secs(1));
            std::thread::sleep(std::time::Duration::from_millis(50));
        }

        // 500: a query fails.
        prove_500(&database, &spec, &key, &server, &mut matrix);
        matrix
    })
    .await
    .unwrap();
    assert_proven("SQLite", &matrix);
}
