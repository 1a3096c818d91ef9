//! Blocking loopback servers for tests that need a peer and nothing more: one that answers
//! every request with the same bytes (a redirect, a 500), and one that accepts and never
//! answers. Each returns its URL and how many requests or connections it has seen.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A server that reads each request's head and answers with `reply` (a whole HTTP/1.1
/// response), one connection at a time; the count is of requests read.
pub fn answer_every_request(reply: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = (&stream).write_all(reply.as_bytes());
        }
    });
    (url, count)
}

/// A server that accepts connections, holds them open and never answers; the count is of
/// connections accepted.
pub fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    (url, count)
}
