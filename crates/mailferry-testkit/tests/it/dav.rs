//! Radicale and Xandikos start, take the groupware corpus, and give it back.

use mailferry_testkit::{groupware_corpus, DavServer, GroupwareKind};

fn filled_and_read_back(server: &DavServer) {
    let corpus = groupware_corpus();
    let count = server.fill(&corpus).unwrap();
    assert_eq!(count, corpus.objects().count());
    for collection in &corpus.collections {
        let path = server.collection_path(collection.kind, collection.segment);
        let listed = server.list(&path).unwrap();
        assert_eq!(listed.len(), collection.objects.len(), "{path}: {listed:?}");
        for object in &collection.objects {
            let data = server
                .get(&format!("{path}{}", object.name))
                .unwrap()
                .unwrap_or_else(|| panic!("{} missing", object.name));
            assert!(data.contains(&object.uid), "{}: {data}", object.name);
        }
    }
    let homes = server.collections(&server.calendar_home()).unwrap();
    assert!(
        homes.iter().any(|h| h.contains("team%20paris")),
        "{homes:?}"
    );
    assert!(server
        .get(
            &server
                .collection_path(GroupwareKind::Calendar, "nothing")
                .replace("//", "/")
        )
        .unwrap()
        .is_none());
}

#[test]
fn radicale_takes_and_gives_back_the_corpus() {
    let server = DavServer::radicale().unwrap();
    filled_and_read_back(&server);
    // Radicale checks the password: a request without one is refused.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    stream
        .write_all(b"PROPFIND /alice/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 401") || answer.starts_with("HTTP/1.1 401"),
        "{answer}"
    );
}

#[test]
fn xandikos_takes_and_gives_back_the_corpus() {
    let server = DavServer::xandikos().unwrap();
    filled_and_read_back(&server);
}
