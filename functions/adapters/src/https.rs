//! The HTTP client every AWS SDK client leadflow builds sends its requests
//! with: hyper's HTTP/1.1 client, TLS by rustls (ring for crypto, the system's
//! trusted roots), plain HTTP for an emulator's `http://` endpoint.
//!
//! It does what the SDK asks of a client and no more: one connection pool per
//! set of timeouts, the connect timeout over TCP and the TLS handshake, the
//! read timeout from sending until the response's head arrives (a connection
//! still opening counts against it), and errors sorted as the SDK's retry
//! rules expect (a timeout, a broken connection, a malformed request, or
//! anything else). DynamoDB, SNS and SSM speak HTTP/1.1, so HTTP/2 is not
//! offered; the SDK's own client would link it into every function.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::ErrorKind;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

type Pool = Client<Connect, SdkBody>;
type BoxError = Box<dyn StdError + Send + Sync>;

/// The SDK's HTTP client: TLS set up once (the system's roots are read
/// here, at a cold start, not on the first request), a pool per timeouts.
pub fn client() -> SharedHttpClient {
    SharedHttpClient::new(Https { tls: Arc::new(tls()), pools: Mutex::default() })
}

/// rustls on ring with the system's trusted roots. With none readable, TLS
/// trusts nothing and every HTTPS call fails (and says why), while plain
/// HTTP to an emulator still works.
fn tls() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "a trusted root certificate could not be read");
    }
    let (_, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::warn!(ignored, "trusted root certificates rustls cannot parse were left out");
    }
    trusting(roots)
}

fn trusting(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[derive(Debug)]
struct Https {
    tls: Arc<rustls::ClientConfig>,
    /// One pool per (connect, read) timeouts the SDK asked for; one in practice.
    pools: Mutex<Vec<(Timeouts, SharedHttpConnector)>>,
}

type Timeouts = (Option<Duration>, Option<Duration>);

impl HttpClient for Https {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        self.connector((settings.connect_timeout(), settings.read_timeout()))
    }
}

impl Https {
    fn connector(&self, timeouts: Timeouts) -> SharedHttpConnector {
        let mut pools = self.pools.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, connector)) = pools.iter().find(|(t, _)| *t == timeouts) {
            return connector.clone();
        }
        let connector =
            SharedHttpConnector::new(Connector { pool: pool(&self.tls, timeouts.0), read_timeout: timeouts.1 });
        pools.push((timeouts, connector.clone()));
        connector
    }
}

fn pool(tls: &Arc<rustls::ClientConfig>, connect_timeout: Option<Duration>) -> Pool {
    let mut tcp = TcpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(rustls::ClientConfig::clone(tls))
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    // The pool's timer lets it drop connections left idle.
    Client::builder(TokioExecutor::new()).pool_timer(TokioTimer::new()).build(Connect { https, limit: connect_timeout })
}

/// Opening a connection, TCP and then TLS, within the connect timeout: a
/// server that accepts but never finishes the handshake is a timeout too.
#[derive(Clone, Debug)]
struct Connect {
    https: HttpsConnector<TcpConnector>,
    limit: Option<Duration>,
}

impl tower_service::Service<http::Uri> for Connect {
    type Response = <HttpsConnector<TcpConnector> as tower_service::Service<http::Uri>>::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.https.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.https.call(uri);
        let limit = self.limit;
        Box::pin(async move {
            match limit {
                Some(limit) => match tokio::time::timeout(limit, connecting).await {
                    Ok(connected) => connected,
                    Err(_) => Err(TimedOut("no connection within the connect timeout").into()),
                },
                None => connecting.await,
            }
        })
    }
}

#[derive(Clone, Debug)]
struct Connector {
    pool: Pool,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(error) => return HttpConnectorFuture::ready(Err(ConnectorError::user(error.into()))),
        };
        let response = self.pool.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, response)
                    .await
                    .map_err(|_| ConnectorError::timeout(TimedOut("no response within the read timeout").into()))?,
                None => response.await,
            };
            let response = response.map_err(sort)?.map(SdkBody::from_body_1_x);
            HttpResponse::try_from(response).map_err(|error| ConnectorError::other(error.into(), None))
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TimedOut(&'static str);

/// Sorts what the pool returned as the SDK's retry rules read it: timeouts
/// and broken connections are retried, a request hyper refused is not.
fn sort(error: hyper_util::client::legacy::Error) -> ConnectorError {
    let timed_out = source::<TimedOut>(&error).is_some()
        || source::<std::io::Error>(&error).is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
    if timed_out || source::<hyper::Error>(&error).is_some_and(hyper::Error::is_timeout) {
        return ConnectorError::timeout(error.into());
    }
    if let Some(hyper) = source::<hyper::Error>(&error) {
        if hyper.is_user() {
            return ConnectorError::user(error.into());
        }
        if hyper.is_incomplete_message() {
            return ConnectorError::other(error.into(), Some(ErrorKind::TransientError));
        }
        if hyper.is_closed() || hyper.is_canceled() {
            return ConnectorError::io(error.into());
        }
    }
    if error.is_connect() || source::<std::io::Error>(&error).is_some() {
        return ConnectorError::io(error.into());
    }
    ConnectorError::other(error.into(), None)
}

/// The first error of type `E` in `error`'s chain of sources.
fn source<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    std::iter::successors(Some(error), |&e| e.source()).find_map(|e| e.downcast_ref::<E>())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What the test server does once it has read a request's head.
    #[derive(Clone, Copy)]
    enum Server {
        Answer,
        Silent,
        HangUpMidBody,
        HangUpAtOnce,
        /// Writes an HTTP answer as soon as a client connects, before any request.
        AnswerAtOnce,
    }

    /// A one-connection-at-a-time HTTP server on a free loopback port.
    async fn serve(how: Server) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Server::AnswerAtOnce = how {
                        let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello").await;
                        return;
                    }
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let reply: &[u8] = match how {
                        Server::Answer => b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-test: yes\r\n\r\nhello",
                        Server::Silent => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            return;
                        }
                        Server::HangUpMidBody => b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhel",
                        Server::HangUpAtOnce | Server::AnswerAtOnce => b"",
                    };
                    let _ = socket.write_all(reply).await;
                });
            }
        });
        format!("http://{address}/")
    }

    fn https(connect: Option<Duration>, read: Option<Duration>) -> (Https, SharedHttpConnector) {
        let https = Https { tls: Arc::new(tls()), pools: Mutex::default() };
        let connector = https.connector((connect, read));
        (https, connector)
    }

    fn get(url: &str) -> HttpRequest {
        let request = http::Request::builder().uri(url).body(SdkBody::empty()).expect("a valid request");
        HttpRequest::try_from(request).expect("an HTTP 1 request converts")
    }

    #[tokio::test]
    async fn a_response_arrives_with_its_status_headers_and_body() {
        let url = serve(Server::Answer).await;
        let (_, connector) = https(Some(Duration::from_secs(2)), Some(Duration::from_secs(2)));
        let response = connector.call(get(&url)).await.expect("answered");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers().get("x-test"), Some("yes"));
        let body = aws_smithy_types::byte_stream::ByteStream::new(response.into_body()).collect().await;
        assert_eq!(body.expect("the whole body").into_bytes().as_ref(), b"hello");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout() {
        let url = serve(Server::Silent).await;
        let (_, connector) = https(Some(Duration::from_secs(2)), Some(Duration::from_millis(200)));
        let error = connector.call(get(&url)).await.expect_err("no answer");
        assert!(error.is_timeout(), "{error:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_finishes_the_tls_handshake_is_a_connect_timeout() {
        // Accepts the connection, then says nothing: with no read timeout set,
        // only the connect timeout can end the wait.
        let url = serve(Server::Silent).await.replace("http://", "https://");
        let (_, connector) = https(Some(Duration::from_millis(200)), None);
        let called = tokio::time::timeout(Duration::from_secs(10), connector.call(get(&url))).await;
        let error = called.expect("the connect timeout ends the wait").expect_err("no handshake");
        assert!(error.is_timeout(), "{error:?}");
    }

    #[tokio::test]
    async fn a_refused_connection_and_a_hang_up_are_io_errors_the_sdk_retries() {
        let refused = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            format!("http://{}/", listener.local_addr().expect("bound"))
        };
        let (_, connector) = https(Some(Duration::from_secs(2)), Some(Duration::from_secs(2)));
        let error = connector.call(get(&refused)).await.expect_err("nobody listens");
        assert!(error.is_io(), "{error:?}");

        let hung_up = serve(Server::HangUpAtOnce).await;
        let error = connector.call(get(&hung_up)).await.expect_err("no answer");
        assert!(error.is_io() || error.as_other() == Some(ErrorKind::TransientError), "{error:?}");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_not_a_short_body() {
        let url = serve(Server::HangUpMidBody).await;
        let (_, connector) = https(Some(Duration::from_secs(2)), Some(Duration::from_secs(2)));
        let response = connector.call(get(&url)).await.expect("the head arrived");
        let body = aws_smithy_types::byte_stream::ByteStream::new(response.into_body()).collect().await;
        assert!(body.is_err(), "3 of 10 bytes read as a whole body");
    }

    #[tokio::test]
    async fn https_is_spoken_to_an_https_endpoint() {
        // A plain HTTP server cannot complete a TLS handshake: the request
        // fails rather than going out in clear text.
        let url = serve(Server::AnswerAtOnce).await.replace("http://", "https://");
        let (_, connector) = https(Some(Duration::from_secs(2)), Some(Duration::from_secs(2)));
        let error = connector.call(get(&url)).await.expect_err("no TLS on the other side");
        assert!(error.is_io(), "{error:?}");
    }

    #[tokio::test]
    async fn a_request_goes_over_tls_to_a_server_the_roots_trust_and_not_to_others() {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
        let key = rustls::pki_types::PrivateKeyDer::try_from(signing_key.serialize_der()).expect("a key");
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("a server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("https://localhost:{}/", listener.local_addr().expect("bound").port());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else { return };
                    let mut buf = [0u8; 4096];
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret").await;
                    let _ = tls.shutdown().await;
                });
            }
        });

        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).expect("the test root");
        let trusted = Https { tls: Arc::new(trusting(roots)), pools: Mutex::default() }
            .connector((Some(Duration::from_secs(2)), Some(Duration::from_secs(2))));
        let response = trusted.call(get(&url)).await.expect("answered over TLS");
        let body = aws_smithy_types::byte_stream::ByteStream::new(response.into_body()).collect().await;
        assert_eq!(body.expect("the whole body").into_bytes().as_ref(), b"secret");

        // The system's roots do not trust a certificate made a moment ago.
        let (_, system) = https(Some(Duration::from_secs(2)), Some(Duration::from_secs(2)));
        let error = system.call(get(&url)).await.expect_err("an untrusted certificate");
        assert!(error.is_io(), "{error:?}");
    }

    #[test]
    fn one_pool_per_timeouts() {
        let (https, _) = https(Some(Duration::from_secs(1)), None);
        let _ = https.connector((Some(Duration::from_secs(1)), None));
        assert_eq!(https.pools.lock().expect("not poisoned").len(), 1);
        let _ = https.connector((Some(Duration::from_secs(2)), None));
        assert_eq!(https.pools.lock().expect("not poisoned").len(), 2);
    }
}
