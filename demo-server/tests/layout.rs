//! The layout's never-rule (docs/design.md, "Where things are"): the sans-I/O HTTP
//! core under `src/http/` knows no server. It names no module of the server, the
//! applications or the proxy, no socket and no logger; what it needs comes in
//! `http::conn::Settings`.

use std::path::Path;

#[test]
fn the_http_core_names_nothing_of_the_server() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let forbidden = [
        "crate::state",
        "crate::server",
        "crate::app",
        "crate::admin",
        "crate::metrics",
        "crate::proxy",
        "mio::",
        "TcpStream",
        "TcpListener",
        "log::",
    ];
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for name in forbidden {
            assert!(
                !text.contains(name),
                "{} names {name}: pass it in http::conn::Settings instead",
                path.display()
            );
        }
    }
    assert!(files >= 7, "read the core's files ({files})");
}
