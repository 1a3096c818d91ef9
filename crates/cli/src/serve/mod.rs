//! `keyhold serve`: temporary credentials for the programs of this machine, over the two
//! protocols every AWS SDK reads, from one server: IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`)
//! and the ECS container endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`). `keyhold exec` runs
//! the same server on a random loopback port for its command.
//!
//! The credentials come from `sdk-credentials`' provider: refreshed ahead of expiry in the
//! background, one refresh at a time however many clients ask, the last good credentials
//! kept through failed refreshes until a margin before they expire, then 503 with the
//! reason; never empty or expired credentials.

mod routes;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use sdk_credentials::CredentialsProvider;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tokio::net::TcpListener;

pub use routes::ECS_PATH;

use crate::args::{RefreshArgs, ServeArgs, SourceArgs};
use crate::credential_source::{self, Refresh};
use crate::error::CliError;
use tokens::{EcsToken, ImdsTokens};

/// How long SIGTERM waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// What the handlers share.
pub struct Server {
    /// The credentials.
    pub provider: CredentialsProvider,
    /// The role name IMDS lists.
    pub role_name: String,
    /// The region IMDS gives, if any.
    pub region: Option<String>,
    /// Live IMDSv2 tokens.
    pub imds_tokens: ImdsTokens,
    /// The ECS endpoint's token.
    pub ecs_token: EcsToken,
    /// Host header names accepted besides IP addresses and localhost.
    pub allowed_hosts: Vec<String>,
    /// The replies for the current credentials.
    rendered: std::sync::RwLock<Option<routes::Rendered>>,
}

impl Server {
    /// A server handing out `provider`'s credentials, IMDS listing them as `role_name`.
    pub fn new(
        provider: CredentialsProvider,
        role_name: String,
        region: Option<String>,
        ecs_token: EcsToken,
        allowed_hosts: Vec<String>,
    ) -> Self {
        Self {
            provider,
            role_name,
            region,
            imds_tokens: ImdsTokens::default(),
            ecs_token,
            allowed_hosts,
            rendered: std::sync::RwLock::new(None),
        }
    }
}

/// The refresh timing for `source`'s duration and the flags.
pub fn refresh(source: &SourceArgs, flags: &RefreshArgs) -> Result<Refresh, CliError> {
    let mut refresh = Refresh::for_lifetime(source.duration);
    if let Some(ahead) = flags.refresh_ahead {
        refresh.ahead = ahead;
        refresh.jitter = Refresh::jitter(source.duration, ahead);
        refresh.stop_before = refresh.stop_before.min(ahead / 2);
    }
    if let Some(stop) = flags.stop_before_expiry {
        refresh.stop_before = stop;
    }
    if refresh.ahead >= source.duration || refresh.stop_before >= refresh.ahead {
        return Err(CliError::Usage(format!(
            "refreshing {}s ahead and stopping {}s before expiry do not fit credentials lasting \
             {}s: make --stop-before-expiry < --refresh-ahead < --duration-seconds",
            refresh.ahead.as_secs(),
            refresh.stop_before.as_secs(),
            source.duration.as_secs()
        )));
    }
    Ok(refresh)
}

/// The provider for a long-running command, with its first credentials fetched (a source
/// that cannot give any is an error now rather than a 503 later).
pub async fn first_credentials(
    args: &SourceArgs,
    refresh: &Refresh,
) -> Result<CredentialsProvider, CliError> {
    let opened = credential_source::open(args)?;
    let provider = opened.provider(refresh);
    let first = provider
        .refresh_now()
        .await
        .map_err(|e| opened.failure(e, args))?;
    tracing::info!(access_key_id = %first.credentials.access_key_id(), expiration = %first.expires, "temporary credentials received");
    Ok(provider)
}

/// The role name IMDS lists: the flag's, else the role ARN's last part, else "keyhold".
fn role_name(args: &ServeArgs) -> String {
    args.role_name.clone().unwrap_or_else(|| {
        args.source
            .role_arn
            .as_deref()
            .and_then(|arn| arn.rsplit('/').next())
            .unwrap_or("keyhold")
            .to_owned()
    })
}

/// Runs `keyhold serve` until SIGTERM or SIGINT.
pub fn run(args: &ServeArgs, signals: crate::Signals) -> Result<(), CliError> {
    let refresh = refresh(&args.source, &args.refresh)?;
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        return Err(CliError::Usage(format!(
            "--listen {} is reachable from other machines: pass --allow-remote to mean it (then \
             replies leave with IP TTL 1), or listen on 127.0.0.1",
            args.listen
        )));
    }
    let runtime = crate::server_runtime()?;
    runtime.block_on(async {
        let provider = first_credentials(&args.source, &refresh).await?;
        let server = Arc::new(Server::new(
            provider,
            role_name(args),
            args.source.sts.region_or_env(),
            EcsToken::create(args.ecs_token_file.as_deref())?,
            args.allowed_host.clone(),
        ));
        let listener = listen(args.listen).await?;
        let address = local_address(&listener)?;
        print_exports(&server, address);
        let reload = |server: &Server| reload(server, &args.source);
        serve(
            server,
            listener,
            !address.ip().is_loopback(),
            signals,
            reload,
        )
        .await
    })
}

/// Binds `address`.
pub async fn listen(address: SocketAddr) -> Result<TcpListener, CliError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| CliError::Serve {
            what: format!("could not listen on {address}"),
            source,
        })
}

/// The address a listener got (its port, when 0 was asked for).
pub fn local_address(listener: &TcpListener) -> Result<SocketAddr, CliError> {
    listener.local_addr().map_err(|source| CliError::Serve {
        what: "has no local address".into(),
        source,
    })
}

/// Re-opens the key or certificate (SIGHUP) and makes the next request refresh through it;
/// if it cannot be opened the old one stays.
fn reload(server: &Server, args: &SourceArgs) {
    match credential_source::open(args) {
        Ok(opened) => {
            server.provider.replace_source(opened.source);
            tracing::warn!("SIGHUP: the key and certificate were read again");
        }
        Err(e) => {
            tracing::warn!(error = %crate::error::one_line(&e), "SIGHUP: could not read the key or certificate again; keeping the old one");
        }
    }
}

/// Prints the lines that point programs at this server.
fn print_exports(server: &Server, address: SocketAddr) {
    println!(
        "# keyhold serve: credentials for role {} on http://{address}/",
        server.role_name
    );
    println!("# IMDSv2 (AWS CLI, SDKs):");
    println!("export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://{address}/");
    println!("# or the ECS container endpoint:");
    println!("export AWS_CONTAINER_CREDENTIALS_FULL_URI=http://{address}{ECS_PATH}");
    match &server.ecs_token {
        EcsToken::File { path, .. } => {
            println!(
                "export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}",
                path.display()
            );
        }
        EcsToken::Fixed(token) => {
            println!(
                "export AWS_CONTAINER_AUTHORIZATION_TOKEN={}",
                token.as_str()
            );
        }
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
}

/// Serves until SIGTERM or SIGINT, then lets requests in flight finish (at most 10 s).
/// SIGHUP calls `reload`. `remote`: replies leave with IP TTL 1.
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    remote: bool,
    mut signals: crate::Signals,
    reload: impl Fn(&Server),
) -> Result<(), CliError> {
    let refresher = tokio::spawn({
        let provider = server.provider.clone();
        async move { provider.keep_fresh().await }
    });
    let graceful = GracefulShutdown::new();
    loop {
        let signal = crate::signals::next(&mut signals);
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if remote && let Err(e) = stream.set_ttl(1) {
                    tracing::warn!(%peer, error = %e, "could not set IP TTL 1; closing");
                    continue;
                }
                let server = server.clone();
                let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let server = server.clone();
                    async move {
                        let reply = routes::answer(&server, request.method(), request.uri().path(), request.headers()).await;
                        tracing::debug!(%peer, method = %request.method(), path = request.uri().path(), status = reply.status().as_u16(), "request");
                        Ok::<_, std::convert::Infallible>(reply)
                    }
                });
                let connection = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                });
            }
            signal = signal => match signal {
                Some(SIGHUP) => reload(&server),
                Some(SIGTERM | SIGINT) | None => break,
                Some(other) => tracing::debug!(signal = other, "ignored"),
            },
        }
    }
    refresher.abort();
    drop(listener);
    tracing::info!("draining");
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN:?}; exiting anyway");
    }
    Ok(())
}
