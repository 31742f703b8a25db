//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`
//! packages; `.ci/run` installs them when missing), with blocking helpers so a test
//! reads as the steps a person takes: go to a page, fill a field, press a button, read
//! what the page says. Set `CAPDESK_SCREENSHOTS=DIR` to keep a PNG of every page a test
//! checks.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A browser session.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: Option<PathBuf>,
    shot: usize,
}

/// Whether this machine can run the browser tests. Under CI they must run: a missing
/// browser fails the test rather than skipping it.
pub fn available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser tests: install Debian's chromium and chromium-driver \
             (.ci/run does: apt-get install -y chromium chromium-driver)"
        );
        eprintln!(
            "SKIPPED: {CHROMIUM} or {CHROMEDRIVER} is missing; install them with \
             `apt-get install chromium chromium-driver` to run the browser tests"
        );
    }
    present
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    pub fn start() -> Browser {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }
        });
        let caps = match caps {
            serde_json::Value::Object(map) => map,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver takes a moment to listen; connect until it does.
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let attempt = rt.block_on(
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url),
            );
            match attempt {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("chromedriver at {url} did not start a browser: {e}"),
            }
        };
        Browser {
            rt,
            client: Some(client),
            driver,
            _profile: profile,
            shots: std::env::var_os("CAPDESK_SCREENSHOTS").map(PathBuf::from),
            shot: 0,
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// Open `url` and wait for the page.
    pub fn goto(&mut self, url: &str) {
        self.rt
            .block_on(self.client.as_ref().unwrap().goto(url))
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
        self.screenshot();
    }

    /// The address the browser shows.
    pub fn url(&self) -> String {
        self.rt
            .block_on(self.client().current_url())
            .unwrap()
            .to_string()
    }

    /// Wait (up to 20 s) until an element matches `css`.
    pub fn wait_for(&self, css: &str) {
        let c = self.client();
        self.rt
            .block_on(
                c.wait()
                    .at_most(Duration::from_secs(20))
                    .for_element(Locator::Css(css)),
            )
            .unwrap_or_else(|e| {
                let body = self.text("body");
                panic!(
                    "no element matches {css} on {}: {e}\npage: {body}",
                    self.url()
                )
            });
    }

    /// Type `text` into the field matching `css` (after clearing it).
    pub fn fill(&mut self, css: &str, text: &str) {
        self.wait_for(css);
        self.rt
            .block_on(async {
                let field = self
                    .client
                    .as_ref()
                    .unwrap()
                    .find(Locator::Css(css))
                    .await?;
                field.clear().await?;
                field.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Choose `value` in the `<select>` matching `css`.
    pub fn select(&mut self, css: &str, value: &str) {
        self.wait_for(css);
        self.rt
            .block_on(async {
                let field = self
                    .client
                    .as_ref()
                    .unwrap()
                    .find(Locator::Css(css))
                    .await?;
                field.select_by_value(value).await
            })
            .unwrap_or_else(|e| panic!("choosing {value} in {css}: {e}"));
    }

    /// Click the element matching `css`, and keep a screenshot of where it led.
    pub fn click(&mut self, css: &str) {
        self.wait_for(css);
        self.rt
            .block_on(async {
                let el = self
                    .client
                    .as_ref()
                    .unwrap()
                    .find(Locator::Css(css))
                    .await?;
                el.click().await
            })
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
        self.screenshot();
    }

    /// The visible text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        self.rt
            .block_on(async {
                let el = self.client().find(Locator::Css(css)).await?;
                el.text().await
            })
            .unwrap_or_else(|e| format!("(no {css}: {e})"))
    }

    /// An attribute of the first element matching `css`.
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.wait_for(css);
        self.rt
            .block_on(async {
                let el = self.client().find(Locator::Css(css)).await?;
                el.attr(name).await
            })
            .unwrap_or_else(|e| panic!("reading {name} of {css}: {e}"))
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.rt
            .block_on(self.client().find_all(Locator::Css(css)))
            .map_or(0, |all| all.len())
    }

    /// Wait (up to 20 s) until the text of `css` contains `needle`; the text.
    pub fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text(css);
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} on {} never said {needle:?}; it says: {text}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&mut self) {
        let Some(dir) = &self.shots else { return };
        let png = self.rt.block_on(self.client.as_ref().unwrap().screenshot());
        if let Ok(png) = png {
            std::fs::create_dir_all(dir).unwrap();
            self.shot += 1;
            std::fs::write(dir.join(format!("{:02}.png", self.shot)), png).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.rt.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
