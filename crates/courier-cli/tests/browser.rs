//! `courier ui` in a real browser: headless Chromium driven over WebDriver
//! (fantoccini and chromedriver, Debian's `chromium` and `chromium-driver`).
//! Opens the overview, goes to a dead letter, logs in, replays it, and sees
//! a running consumer handle it. Screenshots of the main pages are written
//! to `target/ui-screenshots/`, or to `$COURIER_UI_SCREENSHOTS` (the
//! README's are made with `COURIER_UI_SCREENSHOTS=docs/ui`).

mod console;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use contact_center_contracts::channels;
use courier::Outcome;
use courier_testkit::RedisServer;
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use console::{dead_letter, interaction, namespace, serve, TOKEN};

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    let path = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| which("chromedriver"))
        .unwrap_or_else(|| {
            panic!(
                "chromedriver is not installed; the console's browser test needs Chromium and \
                 its driver (Debian: apt-get install chromium chromium-driver)"
            )
        });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    Driver { child, port }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.exists())
}

/// Where screenshots go.
fn screenshots() -> PathBuf {
    let dir = std::env::var_os("COURIER_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .join(d)
            }
        })
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn an_operator_replays_a_dead_letter_and_a_consumer_handles_it() {
    let server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let ns = namespace();
    let console = serve(&server, &ns, false).await;
    let intake = channels::intake::producer(&console.client);
    for n in 0..9 {
        intake.publish(&interaction(n)).await.unwrap();
    }
    dead_letter(&console.client, 0..3).await;

    // A consumer that handles whatever comes back to billing.
    let handled = Arc::new(AtomicU32::new(0));
    let token = courier::CancellationToken::new();
    let consumer = channels::billing::consumer(&console.client, "specialists");
    let running = tokio::spawn({
        let (handled, token) = (handled.clone(), token.clone());
        async move {
            consumer
                .run_until(
                    move |_| {
                        handled.fetch_add(1, Ordering::SeqCst);
                        async { Outcome::Done }
                    },
                    token,
                )
                .await
        }
    });

    let driver = chromedriver();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                format!("--user-data-dir={}", std::env::temp_dir().join(format!("courier-ui-chrome-{ns}")).display())
            ]
        }),
    );
    let mut browser = None;
    for _ in 0..50 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(client) => {
                browser = Some(client);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let browser = browser.expect("chromedriver started a headless Chromium");
    let base = format!("http://{}", console.addr);
    let shots = screenshots();
    // A click returns before the page it leads to has loaded: wait for
    // what that page shows.
    let wait = |locator: &'static str| {
        let browser = browser.clone();
        async move {
            browser
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::XPath(locator))
                .await
                .unwrap_or_else(|e| panic!("no {locator} ({e})"))
        }
    };

    // The overview lists every channel; billing shows its dead letters.
    browser.goto(&format!("{base}/")).await.unwrap();
    let row = browser
        .find(Locator::Css("tr[data-channel='contact_center.billing']"))
        .await
        .unwrap();
    assert!(row.text().await.unwrap().contains("billing"));
    std::fs::write(
        shots.join("overview.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // To the dead letters, then one of them.
    row.find(Locator::Css("a.bad"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait("//h1[text()='Dead letters of contact_center.billing']").await;
    std::fs::write(
        shots.join("dead-letters.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    browser
        .find(Locator::Css("table a[href*='/messages/']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait("//h2[text()='Payload']").await;
    let page = browser.source().await.unwrap();
    assert!(page.contains("refused for the test"));
    std::fs::write(
        shots.join("message.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    let letter_url = browser.current_url().await.unwrap();

    // Log in, come back, replay it.
    browser.goto(&format!("{base}/login")).await.unwrap();
    browser
        .find(Locator::Css("input[name='token']"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    browser
        .find(Locator::Css("form.login button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The login lands back on the overview, logged in, before going on.
    wait("//button[text()='Log out']").await;
    browser.goto(letter_url.as_str()).await.unwrap();
    wait("//button[text()='Replay']")
        .await
        .click()
        .await
        .unwrap();
    let result = match browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("p.result"))
        .await
    {
        Ok(element) => element.text().await.unwrap(),
        Err(e) => panic!(
            "no result after the replay ({e}): {}",
            browser.source().await.unwrap()
        ),
    };
    assert_eq!(
        result,
        "Replayed 1 dead letter(s) of contact_center.billing."
    );

    // The running consumer handles it, and the channel page shows what is left.
    for _ in 0..200 {
        if handled.load(Ordering::SeqCst) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "the replayed message was handled"
    );
    assert_eq!(console.billing_dead().await, 2);
    browser
        .goto(&format!("{base}/channels/contact_center.intake"))
        .await
        .unwrap();
    std::fs::write(
        shots.join("channel.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();
    browser.goto(&format!("{base}/contracts")).await.unwrap();
    assert!(browser.find(Locator::Css("svg.flow")).await.is_ok());
    std::fs::write(
        shots.join("contracts.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    browser.close().await.unwrap();
    token.cancel();
    running.await.unwrap().unwrap();
}
