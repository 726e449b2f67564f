//! Placeholder for the demo HTTP/1.1 server (see the project's issues).

fn main() {
    eprintln!("demo-server: not built yet; the HTTP/1.1 server lands with its own issue");
    std::process::exit(2);
}
