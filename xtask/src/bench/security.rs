//! `cargo xtask bench --only security`: what TLS + SASL costs. One broker with a PLAINTEXT
//! and a SASL_SSL listener (TLS with a fresh rcgen CA, SCRAM-SHA-256); librdkafka produces
//! (acks=1) and consumes 100-byte and 1 KiB records through each listener, alternating
//! PLAINTEXT, SASL_SSL, PLAINTEXT, ... so the machine's noise falls on both alike. The part
//! reports every run and the median ratio SASL_SSL / PLAINTEXT per measurement (the TLS
//! cost is one minus it; the goal is a cost of at most 30%).

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::baseline::{median, records_per_sec};
use super::{free_port, wait_ready};

/// Heading of this part in docs/benchmarks.md.
pub(crate) const SECURITY_HEADING: &str =
    "## Security: SASL_SSL (TLS + SCRAM-SHA-256) against PLAINTEXT";

/// The SCRAM user the SASL_SSL runs authenticate as.
const USER: &str = "bench";
const PASSWORD: &str = "bench-secret";
/// Partitions of each benchmark topic.
const PARTITIONS: &str = "2";

/// One record size: its topic, and how many records each run produces and consumes.
struct Size {
    bytes: usize,
    topic: &'static str,
    records: u64,
}

/// What a round measured, per size: (produce records/s, consume records/s).
type Rates = Vec<(f64, f64)>;

/// The part: `rounds` rounds, each PLAINTEXT then SASL_SSL for every size.
pub(crate) fn security_part(
    weir: &Path,
    load: &Path,
    records: u64,
    rounds: usize,
) -> Result<String> {
    let sizes = [
        Size {
            bytes: 100,
            topic: "sec-100",
            records: (records / 4).max(1000),
        },
        Size {
            bytes: 1024,
            topic: "sec-1k",
            records: (records / 8).max(1000),
        },
    ];
    let dir = std::env::temp_dir().join(format!("weir-bench-security-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let result = (|| {
        let (mut broker, plain, sasl_ssl, props) = start(weir, &dir)?;
        let measured = measure(weir, load, &plain, &sasl_ssl, &props, &sizes, rounds);
        let _ = broker.kill();
        let _ = broker.wait();
        measured
    })();
    let _ = fs::remove_dir_all(&dir);
    let (plain_rounds, tls_rounds) = result?;
    let mut text = render(&sizes, &plain_rounds, &tls_rounds, rounds);
    // The machine is shared: say how busy it was, so a noisy run is recognisable as one.
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.push_str(&format!(
        "\n`cat /proc/loadavg` at the end: `{}`\n",
        load.trim()
    ));
    Ok(text)
}

/// Runs the rounds; returns (PLAINTEXT rounds, SASL_SSL rounds).
fn measure(
    weir: &Path,
    load: &Path,
    plain: &str,
    sasl_ssl: &str,
    props: &[String],
    sizes: &[Size],
    rounds: usize,
) -> Result<(Vec<Rates>, Vec<Rates>)> {
    run_ok(
        Command::new(weir)
            .args(["user", "add", USER, "--mechanism", "SCRAM-SHA-256"])
            .args(["--password", PASSWORD, "--bootstrap-server", plain]),
        "weir user add",
    )?;
    for size in sizes {
        run_ok(
            Command::new(weir)
                .args(["topic", "create", size.topic, "--partitions", PARTITIONS])
                .args(["--bootstrap-server", plain]),
            "weir topic create",
        )?;
    }
    let mut plain_rounds = Vec::new();
    let mut tls_rounds = Vec::new();
    for index in 0..rounds.max(1) {
        eprintln!("==> security round {}", index + 1);
        plain_rounds.push(one_round(load, plain, &[], sizes, "PLAINTEXT")?);
        tls_rounds.push(one_round(load, sasl_ssl, props, sizes, "SASL_SSL")?);
    }
    Ok((plain_rounds, tls_rounds))
}

/// Produce then consume every size through one listener.
fn one_round(
    load: &Path,
    bootstrap: &str,
    props: &[String],
    sizes: &[Size],
    label: &str,
) -> Result<Rates> {
    let mut rates = Vec::new();
    for size in sizes {
        let records = size.records.to_string();
        let bytes = size.bytes.to_string();
        let produce = rdkafka(
            load,
            props,
            &["produce", bootstrap, size.topic, &records, &bytes, "1"],
        )?;
        // Every round appends; reading the first `records` of the topic reads as many bytes.
        let consume = rdkafka(
            load,
            props,
            &["consume", bootstrap, size.topic, &records, PARTITIONS],
        )?;
        eprintln!(
            "  {label} {} B: produce {produce:.0} records/s, consume {consume:.0} records/s",
            size.bytes
        );
        rates.push((produce, consume));
    }
    Ok(rates)
}

fn rdkafka(load: &Path, props: &[String], args: &[&str]) -> Result<f64> {
    let mut command = Command::new(load);
    for prop in props {
        command.args(["-X", prop]);
    }
    let output = command.args(args).stderr(Stdio::inherit()).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        bail!("rdkafka_load {} failed: {stdout}", args.join(" "));
    }
    records_per_sec(&stdout).with_context(|| format!("no records/sec in {stdout:?}"))
}

fn run_ok(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output()?;
    if !output.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// Writes the CA and the broker keystore, starts the broker; returns it, the PLAINTEXT and
/// SASL_SSL addresses and the librdkafka properties for SASL_SSL.
fn start(weir: &Path, dir: &Path) -> Result<(Child, String, String, Vec<String>)> {
    let (ca_pem, keystore_pem) = certificates()?;
    let ca = dir.join("ca.pem");
    let keystore = dir.join("broker.pem");
    fs::write(&ca, ca_pem)?;
    fs::write(&keystore, keystore_pem)?;
    let plain = format!("127.0.0.1:{}", free_port()?);
    let sasl_ssl = format!("127.0.0.1:{}", free_port()?);
    let config = dir.join("weir.toml");
    fs::write(
        &config,
        format!(
            "listeners = \"PLAINTEXT://{plain},SASL_SSL://{sasl_ssl}\"\n\
             \"ssl.keystore.type\" = \"PEM\"\n\
             \"ssl.keystore.location\" = \"{}\"\n\
             \"sasl.enabled.mechanisms\" = \"SCRAM-SHA-256\"\n\
             \"weir.gateway.listener\" = \"off\"\n",
            keystore.display()
        ),
    )?;
    let mut child = Command::new(weir)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting weir")?;
    wait_ready(&mut child)?;
    let props = [
        "security.protocol=SASL_SSL".to_string(),
        format!("ssl.ca.location={}", ca.display()),
        "sasl.mechanisms=SCRAM-SHA-256".to_string(),
        format!("sasl.username={USER}"),
        format!("sasl.password={PASSWORD}"),
    ];
    Ok((child, plain, sasl_ssl, props.to_vec()))
}

/// A fresh CA and a broker certificate for 127.0.0.1/localhost signed by it; returns
/// (CA PEM, Kafka's one-file keystore PEM: key then certificate).
fn certificates() -> Result<(String, String)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "weir bench CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    leaf.distinguished_name.push(DnType::CommonName, "broker");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok((
        issuer.pem(),
        format!("{}{}", key.serialize_pem(), cert.pem()),
    ))
}

fn render(sizes: &[Size], plain: &[Rates], tls: &[Rates], rounds: usize) -> String {
    let mut text = format!(
        "{SECURITY_HEADING}\n\n\
         `cargo xtask bench --only security --repeat {rounds}` (the default run includes \
         it): one broker (fsync durability) \
         with a PLAINTEXT and a SASL_SSL listener (rustls, ring, TLS 1.3; SCRAM-SHA-256 \
         users); librdkafka (rdkafka_load with `-X security.protocol=SASL_SSL -X \
         ssl.ca.location=... -X sasl.mechanisms=SCRAM-SHA-256 ...`) produces with acks=1 \
         and consumes (2 partitions, from offset 0) through each listener. Rounds alternate \
         PLAINTEXT and SASL_SSL. Cost = 1 - median SASL_SSL / median PLAINTEXT; the goal \
         is at most 30%.\n\n\
         | measurement | PLAINTEXT records/s | SASL_SSL records/s | median ratio | TLS cost |\n\
         |---|---|---|---|---|\n"
    );
    let show = |runs: &[f64]| {
        runs.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (index, size) in sizes.iter().enumerate() {
        for (kind, pick) in [("produce", 0), ("consume", 1)] {
            let value = |round: &Rates| {
                let (produce, consume) = round[index];
                if pick == 0 {
                    produce
                } else {
                    consume
                }
            };
            let plain_runs: Vec<f64> = plain.iter().map(value).collect();
            let tls_runs: Vec<f64> = tls.iter().map(value).collect();
            let ratio = median(&mut tls_runs.clone()) / median(&mut plain_runs.clone()).max(1.0);
            text.push_str(&format!(
                "| {kind} {} B x {} | {} | {} | {ratio:.2} | {:.0}% |\n",
                size.bytes,
                size.records,
                show(&plain_runs),
                show(&tls_runs),
                (1.0 - ratio) * 100.0
            ));
        }
    }
    text
}
