//! A throw-away PostgreSQL answers over TCP and is gone after drop.

use std::net::TcpStream;

use mailferry_testkit::Postgres;

#[test]
fn postgres_starts_answers_and_stops() {
    let server = Postgres::start().expect("postgres starts");
    let url = server.url();
    assert_eq!(
        url,
        format!("postgres://postgres@127.0.0.1:{}/mailferry", server.port())
    );
    assert_eq!(server.psql("select 1").expect("select 1"), "1");
    assert_eq!(
        server.psql("select current_database()").expect("database"),
        "mailferry"
    );
    let dir = server.dir().to_path_buf();
    let port = server.port();
    drop(server);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "postgres still listens on {port} after drop"
    );
    if std::env::var("MAILFERRY_KEEP_SERVERS").as_deref() != Ok("1") {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}

#[test]
fn two_instances_run_side_by_side() {
    let a = Postgres::start().expect("first postgres");
    let b = Postgres::start().expect("second postgres");
    assert_ne!(a.port(), b.port());
    a.psql("create table only_in_a (x int)").expect("create");
    assert_eq!(
        b.psql("select count(*) from pg_tables where tablename = 'only_in_a'")
            .expect("query"),
        "0"
    );
}
