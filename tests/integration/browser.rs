//! The web app as people use it: headless Chromium (Debian's `chromium`,
//! driven through Debian's `chromedriver` over WebDriver) against `leadflow
//! serve` on each store (the embedded store, and DynamoDB on moto), following
//! the links the notifications carry. `tests/run.sh`
//! installs both packages; without them this test fails, it never skips.
//! Screenshots go to `target/browser/`.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::serve::Server;
use crate::support::repo_root;

/// Debian's chromedriver, on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let binary = std::env::var("LEADFLOW_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        assert!(
            std::path::Path::new(&binary).exists(),
            "{binary} is missing: tests/run.sh installs Debian's chromium and chromium-driver"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port, _profile: tempfile::tempdir().expect("profile dir") }
    }

    /// A headless Chromium session with a window of `width` x `height`.
    async fn browser(&self, width: u32, height: u32) -> Client {
        let chromium = std::env::var("LEADFLOW_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let profile = self._profile.path().join(format!("{width}x{height}"));
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
            }
        });
        let Value::Object(capabilities) = capabilities else { unreachable!("an object") };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page's text, once it contains `what` (pages load after a click).
async fn wait_for(browser: &Client, what: &str) -> String {
    let started = Instant::now();
    loop {
        let source = browser.source().await.expect("page source");
        if source.contains(what) {
            return source;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the page never showed {what:?}:\n{source}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn screenshot(browser: &Client, name: &str) {
    let dir = repo_root().join("target/browser");
    std::fs::create_dir_all(&dir).expect("target/browser");
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

/// Clicks the button whose text is `label`, inside the element with id `within` (anywhere when empty).
async fn press(browser: &Client, within: &str, label: &str) {
    let button = format!("//button[normalize-space(.)='{label}']");
    let xpath = if within.is_empty() { button } else { format!("//*[@id='{within}']{button}") };
    browser
        .find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no button {label:?}: {e}"))
        .click()
        .await
        .expect("click");
}

/// Signs `rep` in through the sign-in page and the link it sends them.
async fn sign_in(browser: &Client, server: &Server, rep: &str) {
    let sent = server.notifications("sign_in").len();
    browser.goto(&format!("{}/app/signin", server.base)).await.expect("sign-in page");
    browser
        .find(Locator::Css("input[name=email]"))
        .await
        .expect("email field")
        .send_keys(&format!("{rep}@example.com"))
        .await
        .expect("type");
    press(browser, "", "Send me a sign-in link").await;
    wait_for(browser, "a sign-in link is on its way").await;
    // The link is written to the outbox on its own time.
    let started = Instant::now();
    while server.notifications("sign_in").len() == sent {
        assert!(started.elapsed() < Duration::from_secs(10), "no sign-in link was sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sign_in = server.notifications("sign_in").pop().expect("a sign-in link");
    assert_eq!(sign_in["to"], json!([rep]));
    let sign_in_link = sign_in["sms"].as_str().expect("sms").rsplit(' ').next().expect("link").to_owned();
    browser.goto(&sign_in_link).await.expect("open the sign-in link");
    press(browser, "", "Sign in").await;
    wait_for(browser, "My leads").await;
}

fn vp(email: &str) -> Value {
    json!({ "email": email, "first_name": "Sam", "last_name": "Reyes", "company": "Initrode", "job_title": "VP Sales",
            "employees": 5000, "country": "US", "phone": "+14155550142" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reps_and_managers_work_their_leads_in_a_real_browser() {
    let driver = Driver::start();
    work_leads_in_a_browser(&driver, Server::start(), "embedded").await;
    work_leads_in_a_browser(&driver, Server::start_on_dynamodb(), "dynamodb").await;
}

/// The flows, on `leadflow serve` with the store `server` runs on; screenshots named after `store`.
async fn work_leads_in_a_browser(driver: &Driver, server: Server, store: &str) {
    let phone = driver.browser(390, 844).await;

    // A rep gets a hand-off, opens the link in the SMS and taps "Contacted": one tap.
    let (status, _) = server.lead("", vp("sam@initrode.com")).await;
    assert_eq!(status, 202);
    let handoff = server.notifications("handoff").pop().expect("a hand-off");
    let link = handoff["sms"].as_str().expect("sms").rsplit(' ').next().expect("a link").to_owned();
    assert!(link.starts_with(&server.base), "{link}");
    phone.goto(&link).await.expect("open the link");
    let page = wait_for(&phone, "Lead for").await;
    assert!(page.contains("Sam Reyes") && page.contains("tel:+14155550142"), "{page}");
    screenshot(&phone, &format!("action-link-phone-{store}")).await;
    press(&phone, "", "Contacted").await;
    wait_for(&phone, "Saved: Contacted.").await;
    let lead = server.show("sam@initrode.com");
    assert_eq!(lead["status"], "working");
    assert_eq!(lead["sla"], Value::Null, "the first-response clock stopped");

    // A manager signs in by the emailed link and marks Ana away today.
    sign_in(&phone, &server, "mia").await;
    phone.find(Locator::LinkText("Team")).await.expect("the team link").click().await.expect("click");
    wait_for(&phone, "rep-ana").await;
    phone.find(Locator::Css("#rep-ana summary")).await.expect("ana's changes").click().await.expect("open");
    press(&phone, "rep-ana", "Mark away").await;
    let team = wait_for(&phone, "Saved: away.").await;
    assert!(team.contains("no (away today)"), "{team}");
    for i in 0..2 {
        server.lead("", vp(&format!("buyer{i}@corp{i}.example"))).await;
        let owner = server.show(&format!("buyer{i}@corp{i}.example"))["owner"].clone();
        assert_eq!(owner, "ben", "Ana is away: the enterprise pool's leads go to Ben");
    }

    // Nobody can take the next lead; when Ben comes back, the SLA check gives it to him.
    for rep in ["ben", "eve", "fay"] {
        server.cli(&["team", "active", rep, "false"]);
    }
    server.lead("", vp("late@corp9.example")).await;
    assert_eq!(server.show("late@corp9.example")["status"], "unassigned");
    phone.find(Locator::LinkText("Unassigned")).await.expect("the queue link").click().await.expect("click");
    wait_for(&phone, "Unassigned (1)").await;
    screenshot(&phone, &format!("unassigned-phone-{store}")).await;
    phone.find(Locator::LinkText("Team")).await.expect("the team link").click().await.expect("click");
    wait_for(&phone, "rep-ben").await;
    phone.find(Locator::Css("#rep-ben summary")).await.expect("ben's changes").click().await.expect("open");
    press(&phone, "rep-ben", "Start assigning leads").await;
    wait_for(&phone, "Saved: active.").await;
    server.cli(&["sla-check", "--now", &Utc::now().to_rfc3339()]);
    let picked = server.show("late@corp9.example");
    assert_eq!((&picked["status"], &picked["owner"]), (&json!("assigned"), &json!("ben")));
    phone.find(Locator::LinkText("Unassigned")).await.expect("the queue link").click().await.expect("click");
    wait_for(&phone, "Nothing waiting.").await;
    phone.close().await.expect("close");

    // The same pages at desktop width.
    let desktop = driver.browser(1280, 900).await;
    desktop.goto(&link).await.expect("open the link");
    wait_for(&desktop, "Lead for").await;
    screenshot(&desktop, &format!("action-link-desktop-{store}")).await;
    desktop.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_reads_the_dashboard_on_a_phone_and_a_desktop() {
    let driver = Driver::start();
    let today = Utc::now().date_naive();
    // Twelve weeks of a generated pipeline on the embedded store, two on DynamoDB.
    for (server, store, leads, days) in
        [(Server::start(), "embedded", "400", 84), (Server::start_on_dynamodb(), "dynamodb", "40", 14)]
    {
        let from = (today - chrono::Duration::days(days)).to_string();
        server.cli(&["simulate", "--leads", leads, "--from", &from, "--days", &days.to_string(), "--seed", "3"]);
        // One session (a sign-in link is sent once a minute), the window resized.
        let browser = driver.browser(390, 3400).await;
        sign_in(&browser, &server, "mia").await;
        for (width, height, name) in [(390, 3400, "phone"), (1280, 2000, "desktop")] {
            browser.set_window_size(width, height).await.expect("resize");
            browser.goto(&format!("{}/app", server.base)).await.expect("my leads");
            browser
                .find(Locator::LinkText("Dashboard"))
                .await
                .expect("the dashboard link")
                .click()
                .await
                .expect("click");
            let page = wait_for(&browser, "Speed to lead by week").await;
            assert!(page.matches("<svg").count() >= 4, "{page}");
            assert!(page.contains("id=\"status-working\""), "{page}");
            // Charts fit the window: none is wider than the page.
            let overflow = browser
                .execute("return document.documentElement.scrollWidth > window.innerWidth;", Vec::new())
                .await
                .expect("script");
            assert_eq!(overflow, json!(false), "{store} at {width} px scrolls sideways");
            screenshot(&browser, &format!("dashboard-{name}-{store}")).await;
        }
        // One owner's pipeline.
        browser.goto(&format!("{}/app/dashboard?owner=eve", server.base)).await.expect("filtered");
        wait_for(&browser, "rep eve").await;
        browser.close().await.expect("close");
    }
}
