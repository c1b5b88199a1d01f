//! `weir schema list|get|register|check`: the schema registry's REST API from the command
//! line (`--user NAME:PASSWORD` for `weir.http.authentication.method = BASIC`).
//!
//! `--url https://HOST:PORT` (a registry with `weir.http.ssl.enable`) needs `--ca FILE`, the
//! PEM certificates of the CA that signed the registry's (there are no built-in roots, as
//! for the Kafka client commands' `ssl.ca.location`); the certificate must name HOST.
//! rustls with the ring provider, as everywhere in weir.
//!
//! - `list [--deleted]`: one subject per line.
//! - `get SUBJECT [--version V|latest]` or `get --id N`: the registered schema as JSON.
//! - `register SUBJECT --file PATH|- [--type AVRO|PROTOBUF|JSON]`: prints the id.
//! - `check SUBJECT --file PATH|- [--type ...] [--version V|latest]`: prints `compatible`,
//!   or `incompatible` and what broke, and then fails (exit 1).
//!
//! Errors print the registry's `{"error_code", "message"}` answer.

use std::io::Read;

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use axum::body::Body;
use axum::http::{header, Method, Request};
use base64::Engine;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::{json, Value};

/// Largest answer read.
const ANSWER_BYTES_MAX: usize = 64 << 20;

/// `weir schema ...`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// The registry, http://HOST:PORT or https://HOST:PORT.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8081")]
    url: String,
    /// For an https:// --url: the PEM file of the CA that signed the registry's certificate.
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// Basic credentials, NAME:PASSWORD.
    #[arg(long, global = true, value_name = "NAME:PASSWORD")]
    user: Option<String>,
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SchemaCommand {
    /// List subjects.
    List {
        /// Include soft-deleted subjects.
        #[arg(long)]
        deleted: bool,
    },
    /// Show a subject's version, or a schema by id.
    Get {
        /// The subject (or --id).
        subject: Option<String>,
        /// A version number or `latest`.
        #[arg(long, default_value = "latest")]
        version: String,
        /// A schema id instead of a subject.
        #[arg(long)]
        id: Option<u32>,
    },
    /// Register a schema under a subject; prints its id.
    Register(SchemaFile),
    /// Check a schema against a subject's compatibility level.
    Check {
        #[command(flatten)]
        file: SchemaFile,
        /// Check against this version only (default: the versions the level names).
        #[arg(long)]
        version: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct SchemaFile {
    /// The subject.
    subject: String,
    /// The schema's file, or `-` for stdin.
    #[arg(long)]
    file: String,
    /// AVRO, PROTOBUF or JSON.
    #[arg(long = "type", default_value = "AVRO")]
    schema_type: String,
}

pub async fn run(args: SchemaArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.url, args.user.as_deref(), args.ca.as_deref())?;
    match args.command {
        SchemaCommand::List { deleted } => {
            let subjects = client
                .call(Method::GET, &format!("/subjects?deleted={deleted}"), None)
                .await?;
            for subject in subjects.as_array().into_iter().flatten() {
                println!("{}", subject.as_str().unwrap_or_default());
            }
        }
        SchemaCommand::Get {
            subject,
            version,
            id,
        } => {
            let path = match (id, subject) {
                (Some(id), _) => format!("/schemas/ids/{id}"),
                (None, Some(subject)) => {
                    format!(
                        "/subjects/{}/versions/{}",
                        encode(&subject),
                        encode(&version)
                    )
                }
                (None, None) => bail!("give a SUBJECT or --id"),
            };
            let answer = client.call(Method::GET, &path, None).await?;
            println!("{}", serde_json::to_string_pretty(&answer)?);
        }
        SchemaCommand::Register(file) => {
            let body = file.body()?;
            let path = format!("/subjects/{}/versions", encode(&file.subject));
            let answer = client.call(Method::POST, &path, Some(body)).await?;
            println!("{}", answer["id"]);
        }
        SchemaCommand::Check { file, version } => {
            let body = file.body()?;
            let mut path = format!("/compatibility/subjects/{}/versions", encode(&file.subject));
            if let Some(version) = version {
                path.push('/');
                path.push_str(&encode(&version));
            }
            path.push_str("?verbose=true");
            let answer = client.call(Method::POST, &path, Some(body)).await?;
            if answer["is_compatible"] == json!(true) {
                println!("compatible");
            } else {
                println!("incompatible");
                for message in answer["messages"].as_array().into_iter().flatten() {
                    println!("  {}", message.as_str().unwrap_or_default());
                }
                bail!("the schema is not compatible with subject {}", file.subject);
            }
        }
    }
    Ok(())
}

impl SchemaFile {
    fn body(&self) -> anyhow::Result<Value> {
        let mut text = String::new();
        if self.file == "-" {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the schema from stdin")?;
        } else {
            text = std::fs::read_to_string(&self.file)
                .with_context(|| format!("reading {}", self.file))?;
        }
        Ok(json!({"schema": text, "schemaType": self.schema_type.to_ascii_uppercase()}))
    }
}

/// Percent-encodes a path segment (subjects may hold any character).
fn encode(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Bound on the --ca file (real ones are a few KiB).
const CA_FILE_BYTES_MAX: u64 = 1 << 20;

/// One HTTP/1.1 request per call, over hyper's client connection (TLS for https).
struct Client {
    address: String,
    authorization: Option<String>,
    /// https: the connector (trusting --ca) and the name the certificate must carry.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl Client {
    fn new(url: &str, user: Option<&str>, ca: Option<&Path>) -> anyhow::Result<Client> {
        let (rest, https) = if let Some(rest) = url.strip_prefix("http://") {
            (rest, false)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (rest, true)
        } else {
            bail!("--url must be http://HOST:PORT or https://HOST:PORT, not {url}");
        };
        let address = rest.trim_end_matches('/').to_owned();
        if address.is_empty() || address.contains('/') {
            bail!("--url must be http://HOST:PORT or https://HOST:PORT, not {url}");
        }
        let tls = match (https, ca) {
            (true, Some(ca)) => Some(connector(&address, ca)?),
            (true, None) => bail!(
                "an https:// --url needs --ca FILE: the PEM certificate of the CA that signed \
                 the registry's (weir has no built-in root certificates)"
            ),
            (false, Some(_)) => bail!("--ca is for an https:// --url; {url} is plain http"),
            (false, None) => None,
        };
        let authorization = user.map(|user| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(user.as_bytes());
            format!("Basic {encoded}")
        });
        Ok(Client {
            address,
            authorization,
            tls,
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let stream = tokio::net::TcpStream::connect(&self.address)
            .await
            .with_context(|| format!("connecting to the registry at {}", self.address))?;
        let mut sender = match &self.tls {
            None => handshake(stream).await?,
            Some((connector, name)) => {
                let stream = (connector.connect(name.clone(), stream).await).map_err(|error| {
                    anyhow!(
                        "TLS handshake with the registry at {}: {error}{}",
                        self.address,
                        hint(&error)
                    )
                })?;
                handshake(stream).await?
            }
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.address)
            .header(header::ACCEPT, weir_registry::api::CONTENT_TYPE);
        if let Some(authorization) = &self.authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, weir_registry::api::CONTENT_TYPE);
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let response = sender.send_request(request.body(body)?).await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(Body::new(response.into_body()), ANSWER_BYTES_MAX).await?;
        let answer: Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)))?;
        if !status.is_success() {
            let code = &answer["error_code"];
            let message = answer["message"].as_str().unwrap_or_default();
            bail!("HTTP {status}, error {code}: {message}");
        }
        Ok(answer)
    }
}

/// An HTTP/1.1 connection over `stream`, its driver spawned.
async fn handshake<S>(stream: S) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Body>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// A TLS connector trusting the CA certificates of `ca`, for the host of `address`.
fn connector(
    address: &str,
    ca: &Path,
) -> anyhow::Result<(tokio_rustls::TlsConnector, ServerName<'static>)> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(ca).with_context(|| format!("cannot read --ca {}", ca.display()))?;
    let mut pem = Vec::new();
    // One byte more than allowed tells "too large" from "exactly at the bound".
    file.take(CA_FILE_BYTES_MAX + 1)
        .read_to_end(&mut pem)
        .with_context(|| format!("cannot read --ca {}", ca.display()))?;
    if pem.len() as u64 > CA_FILE_BYTES_MAX {
        bail!(
            "--ca {} is larger than {CA_FILE_BYTES_MAX} bytes",
            ca.display()
        );
    }
    let roots = weir::tls::root_store("--ca", &pem)?;
    let config = rustls::ClientConfig::builder_with_provider(weir::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned())
        .with_context(|| format!("{host} is not a valid TLS server name"))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}

/// What a failed handshake most likely means.
fn hint(error: &std::io::Error) -> &'static str {
    let text = error.to_string();
    if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        " (the registry's certificate is not signed by a CA in --ca)"
    } else if text.contains("NotValidForName") {
        " (the registry's certificate does not name the host of --url)"
    } else if error.kind() == std::io::ErrorKind::UnexpectedEof
        || error.kind() == std::io::ErrorKind::ConnectionReset
        || text.contains("InvalidContentType")
        || text.contains("corrupt message")
    {
        " (is the registry served over https? weir.http.ssl.enable)"
    } else {
        ""
    }
}
