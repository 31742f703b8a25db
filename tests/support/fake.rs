//! Stand-ins for vendor SaaS that cannot be reached from a test: an axum router served
//! on an ephemeral local port by its own thread, for as long as the test process lives.

use std::net::SocketAddr;

/// A local HTTP server running `router`.
pub struct FakeServer {
    pub addr: SocketAddr,
}

impl FakeServer {
    pub fn start(router: axum::Router) -> FakeServer {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the fake server");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("binding the fake server");
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, router).await.expect("serving");
            });
        });
        FakeServer {
            addr: rx.recv().expect("the fake server's address"),
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
