//! A TCP relay in front of a real service (moto, the Roles Anywhere endpoint) for fault
//! tests: it counts the HTTP requests that pass, and can be "down" (every connection is
//! closed at once, as when the service is stopped) and back up, without the service itself
//! losing its state.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The relay, listening on loopback until the process ends.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    down: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

impl Proxy {
    /// Relays to `upstream` (`http://HOST:PORT`).
    pub fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let down = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (d, r) = (down.clone(), requests.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (r, d) = (r.clone(), d.clone());
                std::thread::spawn(move || relay(client, server, &r, &d));
            }
        });
        Self {
            url,
            down,
            requests,
        }
    }

    /// Takes the service away (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many HTTP requests reached the service.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Copies both ways; counts request lines (`POST ` or `GET ` at the start of a line) going
/// up; stops when either side closes or the relay goes down.
fn relay(client: TcpStream, server: TcpStream, requests: &AtomicUsize, down: &AtomicBool) {
    let (Ok(mut client_read), Ok(mut server_write)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    let (mut server_read, mut client_write) = (server, client);
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Both);
    });
    let mut buffer = [0u8; 16 * 1024];
    let mut previous = b'\n';
    loop {
        let n = match client_read.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if down.load(Ordering::SeqCst) {
            break;
        }
        for i in 0..n {
            let before = if i == 0 { previous } else { buffer[i - 1] };
            if before == b'\n'
                && (buffer[i..n].starts_with(b"POST ") || buffer[i..n].starts_with(b"GET "))
            {
                requests.fetch_add(1, Ordering::SeqCst);
            }
        }
        previous = buffer[n - 1];
        if server_write.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = server_write.shutdown(Shutdown::Both);
    let _ = back.join();
}
