//! The fault-only statuses (500, 503), documented once for the whole API, proven by fault
//! injection and held to the spec by the suite's own checks.

use conformance::{check::check_against, schema::Schemas, Matrix, Spec, Target, Verdict};

use crate::{
    pg::Cluster,
    server::{bootstrap, Database, Server},
};

fn spec_of(server: &Server) -> (Target, Spec) {
    let target = Target::new(&server.base_url, "unused").unwrap();
    let spec = Spec::load(&format!("{}/openapi.json", server.base_url), &target.http).unwrap();
    (target, spec)
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_only_statuses_keep_the_contract_under_fault_injection() {
    let (cluster, _dir) = Cluster::create();
    let matrix = tokio::task::spawn_blocking(move || {
        // 503: the database stops answering.
        let database = Database {
            url: format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port),
            _dir: None,
        };
        let key = bootstrap(&database, 10, 10, "+15551112222");
        let server = Server::start(&database);
        let (_, spec) = spec_of(&server);
        let schemas = Schemas::new(&spec.doc);
        let mut matrix = Matrix::from_spec(&spec);
        let target = Target::new(&server.base_url, &key).unwrap();
        cluster.stop();
        let response = target
            .send(&conformance::client::Request::new("GET", "/v1/numbers"))
            .unwrap();
        assert_eq!(response.status, 503, "{}", response.text);
        let problems = check_against(&spec, &schemas, &spec.global[&503], &response);
        matrix.record("(server-wide)", 503, "PostgreSQL stopped", problems);
        drop(server);

        // 500: a query fails (its table is gone).
        let database = Database::sqlite();
        let key = bootstrap(&database, 10, 10, "+15551112222");
        let server = Server::start(&database);
        let target = Target::new(&server.base_url, &key).unwrap();
        tokio::runtime::Handle::current().block_on(async {
            use sea_orm::ConnectionTrait;
            let store = agentmessage::store::Store::connect(&database.url)
                .await
                .unwrap();
            store
                .connection()
                .execute_unprepared("DROP TABLE phone_numbers")
                .await
                .unwrap();
        });
        let response = target
            .send(&conformance::client::Request::new("GET", "/v1/numbers"))
            .unwrap();
        assert_eq!(response.status, 500, "{}", response.text);
        assert!(
            !response.text.contains("phone_numbers"),
            "internal text leaked: {}",
            response.text
        );
        let problems = check_against(&spec, &schemas, &spec.global[&500], &response);
        matrix.record("(server-wide)", 500, "a query on a dropped table", problems);
        matrix
    })
    .await
    .unwrap();
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
        format!("\n== conformance matrix: fault injection\n{rows}").as_bytes(),
    );
    for status in [500, 503] {
        assert!(
            matches!(
                matrix.verdict("(server-wide)", status),
                Some(Verdict::Passed { .. })
            ),
            "{status}: {:?}",
            matrix.verdict("(server-wide)", status)
        );
    }
}
