//! `cargo xtask bench --only security`: what TLS + SASL costs. One broker with a PLAINTEXT
//! and a SASL_SSL listener (TLS with a fresh rcgen CA, SCRAM-SHA-256); librdkafka produces
//! (acks=1) and consumes 100-byte and 1 KiB records through each listener, alternating
//! PLAINTEXT, SASL_SSL, SASL_SSL, PLAINTEXT, ... so the machine's noise (and the storage
//! engine's background work of the runs before) falls on both alike. The part
//! reports every run and the median ratio SASL_SSL / PLAINTEXT per measurement (the TLS
//! cost is one minus it; the goal is a cost of at most 30%), and the CPU seconds per million
//! records of the broker (/proc/PID/stat around each run) and of the load generator (this
//! process's cutime + cstime around its wait), which the machine's noise moves far less
//! than throughput. `--pin` runs the broker on CPU 0 and the load generator on CPU 1
//! (`taskset`), so client and broker do not compete for a core.
//!
//! Two load generators take turns in every round: librdkafka (rdkafka_load) and Weir's own
//! client (`weir bench produce|consume`, rustls). librdkafka's TLS path calls `SSL_write`
//! once per segment of a request's buffer, and at full speed it references most record
//! values as segments of their own, so a 1 KiB record costs it two TLS records and two
//! `write(2)` calls; Weir's client seals whole requests (16 KiB TLS records). The second
//! client shows what the broker's TLS costs when the client's does not dominate.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::baseline::{median, records_per_sec};
use super::peer::{children_cpu_seconds, clock_ticks, cpu_seconds};
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

/// One load generator run.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    /// records/s, as rdkafka_load reports it.
    rate: f64,
    /// The broker's CPU seconds (user + system, all threads) per million records.
    broker: f64,
    /// The same without the storage engine's background threads (`fjall:*`: memtable
    /// flushes and compactions, which fall into whichever run they happen in): the part of
    /// the broker that TLS can change.
    broker_front: f64,
    /// The load generator's CPU seconds per million records.
    client: f64,
}

/// What a round measured, per size: (produce, consume).
type Rates = Vec<(Run, Run)>;

/// The load generators, in the order each round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// bench/rdkafka_load.c on the system librdkafka (OpenSSL).
    Rdkafka,
    /// `weir bench produce|consume` (weir-client, rustls).
    Weir,
}

const CLIENTS: [Client; 2] = [Client::Rdkafka, Client::Weir];

impl Client {
    fn label(self) -> &'static str {
        match self {
            Client::Rdkafka => "librdkafka (rdkafka_load)",
            Client::Weir => "Weir's client (`weir bench`)",
        }
    }
}

/// Every round of one client: (PLAINTEXT rounds, SASL_SSL rounds).
type ClientRounds = (Vec<Rates>, Vec<Rates>);

/// The CPUs `--pin` puts the broker and the load generator on.
const BROKER_CPU: &str = "0";
const CLIENT_CPU: &str = "1";

/// How the part runs its processes.
struct Setup<'a> {
    weir: &'a Path,
    load: &'a Path,
    /// `--pin`: broker on CPU 0, load generator on CPU 1.
    pin: bool,
    /// /proc/PID/stat's clock ticks per second.
    ticks: f64,
}

impl Setup<'_> {
    /// `program`, under `taskset -c cpu` when pinning.
    fn command(&self, program: &Path, cpu: &str) -> Command {
        if self.pin {
            let mut command = Command::new("taskset");
            command.args(["-c", cpu]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

/// The part: `rounds` rounds, each PLAINTEXT then SASL_SSL for every size; `pin` pins the
/// broker and the load generator to a CPU each.
pub(crate) fn security_part(
    weir: &Path,
    load: &Path,
    records: u64,
    rounds: usize,
    pin: bool,
) -> Result<String> {
    let setup = Setup {
        weir,
        load,
        pin,
        ticks: clock_ticks()?,
    };
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
        let (mut broker, plain, sasl_ssl, props) = start(&setup, &dir)?;
        let properties = dir.join("client.properties");
        fs::write(&properties, props.join("\n") + "\n")?;
        let properties = properties.display().to_string();
        let listeners = Listeners {
            broker: broker.id(),
            plain: &plain,
            sasl_ssl: &sasl_ssl,
            props: &props,
            properties: &properties,
        };
        let measured = measure(&setup, &listeners, &sizes, rounds);
        let _ = broker.kill();
        let _ = broker.wait();
        measured
    })();
    let _ = fs::remove_dir_all(&dir);
    let by_client = result?;
    let mut text = render(&sizes, &by_client, rounds, pin);
    // The machine is shared: say how busy it was, so a noisy run is recognisable as one.
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.push_str(&format!(
        "\n`cat /proc/loadavg` at the end: `{}`\n",
        load.trim()
    ));
    Ok(text)
}

/// The running broker: its pid, its two listeners and the SASL_SSL client properties.
struct Listeners<'a> {
    broker: u32,
    plain: &'a str,
    sasl_ssl: &'a str,
    props: &'a [String],
    /// The same properties as a file, for `weir bench --command-config`.
    properties: &'a str,
}

/// Runs the rounds; returns every client's (PLAINTEXT rounds, SASL_SSL rounds), in
/// [`CLIENTS`] order.
fn measure(
    setup: &Setup,
    listeners: &Listeners,
    sizes: &[Size],
    rounds: usize,
) -> Result<Vec<ClientRounds>> {
    let (weir, plain) = (setup.weir, listeners.plain);
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
    let mut by_client: Vec<ClientRounds> = CLIENTS.iter().map(|_| Default::default()).collect();
    for index in 0..rounds.max(1) {
        eprintln!("==> security round {}", index + 1);
        let plain = (listeners.plain, &[][..]);
        let sasl_ssl = (listeners.sasl_ssl, listeners.props);
        // Which listener goes first alternates too (PLAINTEXT, SASL_SSL, SASL_SSL,
        // PLAINTEXT, ...): the storage engine flushes and compacts what a run wrote during
        // the runs after it, and a fixed order would put that work on one listener.
        let mut order = [true, false];
        if index % 2 == 1 {
            order.reverse();
        }
        for plaintext in order {
            for (client, (plain_rounds, tls_rounds)) in CLIENTS.iter().zip(&mut by_client) {
                let (listener, label, rounds) = if plaintext {
                    (plain, "PLAINTEXT", plain_rounds)
                } else {
                    (sasl_ssl, "SASL_SSL", tls_rounds)
                };
                let properties = (!plaintext).then_some(listeners.properties);
                let target = Target {
                    client: *client,
                    bootstrap: listener.0,
                    props: listener.1,
                    properties,
                };
                rounds.push(one_round(setup, listeners.broker, &target, sizes, label)?);
            }
        }
    }
    Ok(by_client)
}

/// Where one run's client connects, and how.
struct Target<'a> {
    client: Client,
    bootstrap: &'a str,
    /// librdkafka `-X` properties (empty for PLAINTEXT).
    props: &'a [String],
    /// The same as a properties file for `weir bench` (`None` for PLAINTEXT).
    properties: Option<&'a str>,
}

impl Target<'_> {
    /// The command of a produce (acks=1) or a consume of `size`.
    fn command(&self, setup: &Setup, size: &Size, consume: bool) -> Command {
        let records = size.records.to_string();
        let bytes = size.bytes.to_string();
        match self.client {
            Client::Rdkafka => {
                let mut command = setup.command(setup.load, CLIENT_CPU);
                for prop in self.props {
                    command.args(["-X", prop]);
                }
                if consume {
                    command.args(["consume", self.bootstrap, size.topic, &records, PARTITIONS]);
                } else {
                    command.args(["produce", self.bootstrap, size.topic, &records, &bytes, "1"]);
                }
                command
            }
            Client::Weir => {
                let mut command = setup.command(setup.weir, CLIENT_CPU);
                command.args(["bench", if consume { "consume" } else { "produce" }]);
                command.args(["--topic", size.topic, "--num-records", &records]);
                if !consume {
                    // rdkafka_load's batch.size, and Kafka's default of 5 requests in flight.
                    command.args(["--record-size", &bytes, "--acks", "1"]);
                    command.args(["--batch-size", "1000000", "--in-flight", "5"]);
                }
                command.args(["--bootstrap-server", self.bootstrap]);
                if let Some(properties) = self.properties {
                    command.args(["--command-config", properties]);
                }
                command
            }
        }
    }
}

/// Produce then consume every size through one listener with one client (`target`).
fn one_round(
    setup: &Setup,
    broker: u32,
    target: &Target,
    sizes: &[Size],
    label: &str,
) -> Result<Rates> {
    let mut rates = Vec::new();
    for size in sizes {
        // Produce, then consume: every round appends, and reading the first `records` of
        // the topic reads as many bytes.
        let mut runs = [Run::default(); 2];
        for (run, consume) in runs.iter_mut().zip([false, true]) {
            *run = load(
                setup,
                broker,
                target.command(setup, size, consume),
                size.records,
            )?;
        }
        let [produce, consume] = runs;
        eprintln!(
            "  {label} {:?} {} B: produce {:.0} records/s (CPU s/M records: broker {:.3}, \
             without storage threads {:.3}, client {:.3}), consume {:.0} records/s (broker \
             {:.3}, {:.3}, client {:.3})",
            target.client,
            size.bytes,
            produce.rate,
            produce.broker,
            produce.broker_front,
            produce.client,
            consume.rate,
            consume.broker,
            consume.broker_front,
            consume.client
        );
        rates.push((produce, consume));
    }
    Ok(rates)
}

/// One load generator run of `records` records, with the broker's and its own CPU time.
fn load(setup: &Setup, broker: u32, mut command: Command, records: u64) -> Result<Run> {
    let shown = format!("{command:?}");
    let broker_before = cpu_seconds(broker, setup.ticks)?;
    let storage_before = storage_cpu_seconds(broker, setup.ticks)?;
    let client_before = children_cpu_seconds(setup.ticks)?;
    let output = command.stderr(Stdio::inherit()).output()?;
    let client = children_cpu_seconds(setup.ticks)? - client_before;
    let broker_cpu = cpu_seconds(broker, setup.ticks)? - broker_before;
    let storage = storage_cpu_seconds(broker, setup.ticks)? - storage_before;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        bail!("{shown} failed: {stdout}");
    }
    let rate = records_per_sec(&stdout).with_context(|| format!("no records/sec in {stdout:?}"))?;
    let per_million = 1e6 / records.max(1) as f64;
    Ok(Run {
        rate,
        broker: broker_cpu * per_million,
        broker_front: (broker_cpu - storage).max(0.0) * per_million,
        client: client * per_million,
    })
}

/// CPU seconds of the broker's storage background threads (named `fjall:...`), from
/// /proc/PID/task/TID/stat.
fn storage_cpu_seconds(pid: u32, ticks: f64) -> Result<f64> {
    let mut total = 0.0;
    for task in fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread may end between the listing and the read: it is skipped.
        let Ok(stat) = fs::read_to_string(task?.path().join("stat")) else {
            continue;
        };
        if let Some(seconds) = storage_thread_seconds(&stat, ticks) {
            total += seconds;
        }
    }
    Ok(total)
}

/// utime + stime of one thread's stat line when the thread is one of the storage engine's.
fn storage_thread_seconds(stat: &str, ticks: f64) -> Option<f64> {
    let comm = &stat[stat.find('(')? + 1..stat.rfind(')')?];
    if !comm.starts_with("fjall") {
        return None;
    }
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks)
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
fn start(setup: &Setup, dir: &Path) -> Result<(Child, String, String, Vec<String>)> {
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
    let mut child = setup
        .command(setup.weir, BROKER_CPU)
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

fn render(sizes: &[Size], by_client: &[ClientRounds], rounds: usize, pin: bool) -> String {
    let (flag, placement) = if pin {
        (
            " --pin",
            "the broker pinned to CPU 0 and the load generator to CPU 1 (`taskset`)",
        )
    } else {
        (
            "",
            "broker and load generator on the same 2 cores (`--pin` puts them on one each)",
        )
    };
    let mut text = format!(
        "{SECURITY_HEADING}\n\n\
         `cargo xtask bench --only security --repeat {rounds}{flag}` (the default run \
         includes it): one broker (fsync durability) \
         with a PLAINTEXT and a SASL_SSL listener (rustls, ring, TLS 1.3; SCRAM-SHA-256 \
         users); librdkafka (rdkafka_load with `-X security.protocol=SASL_SSL -X \
         ssl.ca.location=... -X sasl.mechanisms=SCRAM-SHA-256 ...`) produces with acks=1 \
         and consumes (2 partitions, from offset 0) through each listener; {placement}. \
         Rounds alternate PLAINTEXT and SASL_SSL, in the order P S S P P S ..., and in \
         each both load generators run, librdkafka first: librdkafka (rdkafka_load), and \
         Weir's own client (`weir bench produce --acks 1 --batch-size 1000000 --in-flight \
         5`, `weir bench consume`, with `--command-config` holding the same properties). \
         Cost = 1 - median SASL_SSL / median PLAINTEXT; the goal is at most 30%. \
         librdkafka's TLS path calls SSL_write once per segment of a request's buffer, and \
         at full speed it references most record values as segments of their own (a 1 KiB \
         record: two TLS records, two write(2) calls); Weir's client seals whole requests.\n"
    );
    for (client, (plain, tls)) in CLIENTS.iter().zip(by_client) {
        text.push_str(&format!("\n### {}\n\n", client.label()));
        text.push_str(&client_tables(sizes, plain, tls));
    }
    text
}

/// The throughput, CPU and bound tables of one load generator's runs.
fn client_tables(sizes: &[Size], plain: &[Rates], tls: &[Rates]) -> String {
    let mut text = String::from(
        "| measurement | PLAINTEXT records/s | SASL_SSL records/s | median ratio | TLS cost |\n\
         |---|---|---|---|---|\n",
    );
    let show = |runs: &[f64], digits: usize| {
        runs.iter()
            .map(|r| format!("{r:.digits$}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Every measurement: its name and its runs on each listener.
    let mut measurements = Vec::new();
    for (index, size) in sizes.iter().enumerate() {
        for (kind, consume) in [("produce", false), ("consume", true)] {
            let pick = |round: &Rates| {
                let (produce_run, consume_run) = round[index];
                if consume {
                    consume_run
                } else {
                    produce_run
                }
            };
            let name = format!("{kind} {} B x {}", size.bytes, size.records);
            let plain_runs: Vec<Run> = plain.iter().map(pick).collect();
            let tls_runs: Vec<Run> = tls.iter().map(pick).collect();
            measurements.push((name, plain_runs, tls_runs));
        }
    }
    let medians = |runs: &[Run], field: fn(&Run) -> f64| -> (Vec<f64>, f64) {
        let values: Vec<f64> = runs.iter().map(field).collect();
        let middle = median(&mut values.clone());
        (values, middle)
    };
    for (name, plain_runs, tls_runs) in &measurements {
        let (plain_rates, plain_median) = medians(plain_runs, |run| run.rate);
        let (tls_rates, tls_median) = medians(tls_runs, |run| run.rate);
        let ratio = tls_median / plain_median.max(1.0);
        text.push_str(&format!(
            "| {name} | {} | {} | {ratio:.2} | {:.0}% |\n",
            show(&plain_rates, 0),
            show(&tls_rates, 0),
            (1.0 - ratio) * 100.0
        ));
    }
    text.push_str(
        "\nCPU seconds per million records (user + system), every run then the median ratio \
         SASL_SSL / PLAINTEXT. Broker: /proc/PID/stat around each run; broker front: the \
         same without the storage engine's background threads (`fjall:*` in \
         /proc/PID/task, whose flushes and compactions land in whichever run they happen \
         in), the part TLS can change; client: the load generator, from the bench's cutime \
         + cstime around its wait.\n\n\
         | measurement | broker PLAINTEXT | broker SASL_SSL | ratio | broker front \
         PLAINTEXT | broker front SASL_SSL | ratio | client PLAINTEXT | client SASL_SSL | \
         ratio |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let fields: [fn(&Run) -> f64; 3] = [|run| run.broker, |run| run.broker_front, |run| run.client];
    for (name, plain_runs, tls_runs) in &measurements {
        let mut row = format!("| {name} |");
        for field in fields {
            let (plain_cpu, plain_median) = medians(plain_runs, field);
            let (tls_cpu, tls_median) = medians(tls_runs, field);
            // Runs too short for the clock ticks of /proc read 0: no ratio then.
            let ratio = if plain_median > 0.0 {
                format!("{:.2}", tls_median / plain_median)
            } else {
                "n/a".to_string()
            };
            row.push_str(&format!(
                " {} | {} | {ratio} |",
                show(&plain_cpu, 3),
                show(&tls_cpu, 3),
            ));
        }
        row.push('\n');
        text.push_str(&row);
    }
    text.push_str(
        "\nWhat the CPU figures bound (median CPU s per million records; c = client, b = \
         broker, P = PLAINTEXT, S = SASL_SSL). Both CPU-bound on shared cores: cost = 1 - \
         (cP + bP) / (cS + bS). The same with the broker's TLS free (bS = bP): what the \
         client's TLS alone costs when both share the cores. The client alone: 1 - cP / cS, \
         the cost when the client is the bottleneck (as with `--pin`). A cost above 30% in \
         the last two columns is out of the broker's reach.\n\n\
         | measurement | both CPU-bound | broker's TLS free | client alone |\n\
         |---|---|---|---|\n",
    );
    for (name, plain_runs, tls_runs) in &measurements {
        let middle = |runs: &[Run], field: fn(&Run) -> f64| medians(runs, field).1;
        let bounds = CostBounds {
            client_plain: middle(plain_runs, |run| run.client),
            client_tls: middle(tls_runs, |run| run.client),
            broker_plain: middle(plain_runs, |run| run.broker),
            broker_tls: middle(tls_runs, |run| run.broker),
        };
        text.push_str(&format!(
            "| {name} | {:.0}% | {:.0}% | {:.0}% |\n",
            bounds.both() * 100.0,
            bounds.broker_free() * 100.0,
            bounds.client_alone() * 100.0
        ));
    }
    text
}

/// Median CPU seconds per million records of one measurement, and the throughput costs
/// they imply when CPU is what bounds the run.
struct CostBounds {
    client_plain: f64,
    client_tls: f64,
    broker_plain: f64,
    broker_tls: f64,
}

impl CostBounds {
    /// Client and broker share the cores and both are busy: records/s is inverse to
    /// their summed CPU per record.
    fn both(&self) -> f64 {
        cost(
            self.client_plain + self.broker_plain,
            self.client_tls + self.broker_tls,
        )
    }

    /// As [`CostBounds::both`], with the broker's SASL_SSL CPU at its PLAINTEXT figure.
    fn broker_free(&self) -> f64 {
        cost(
            self.client_plain + self.broker_plain,
            self.client_tls + self.broker_plain,
        )
    }

    /// The client is the bottleneck (it has a core to itself and uses all of it).
    fn client_alone(&self) -> f64 {
        cost(self.client_plain, self.client_tls)
    }
}

/// Throughput cost when records/s is inverse to CPU per record: 1 - plain / tls.
fn cost(plain: f64, tls: f64) -> f64 {
    if tls <= 0.0 {
        return 0.0;
    }
    1.0 - plain / tls
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the bounds read the CPU figures as stated (1 KiB produce, quiet pinned run of
    // 2026-12-06: client 1.60 -> 3.08, broker 1.76 -> 3.16 s per million records).
    #[test]
    fn cost_bounds_from_cpu() {
        let bounds = CostBounds {
            client_plain: 1.6,
            client_tls: 3.08,
            broker_plain: 1.76,
            broker_tls: 3.16,
        };
        let percent = |value: f64| (value * 100.0).round();
        assert_eq!(percent(bounds.both()), 46.0);
        assert_eq!(percent(bounds.broker_free()), 31.0);
        assert_eq!(percent(bounds.client_alone()), 48.0);
        assert_eq!(cost(1.0, 0.0), 0.0);
    }

    // Goal: only the storage engine's threads count as storage, whatever the comm holds.
    #[test]
    fn storage_threads_by_name() {
        let fjall = "12 (fjall:worker) S 1 1 1 0 -1 0 0 0 0 0 300 100 0 0 20 0";
        assert_eq!(storage_thread_seconds(fjall, 100.0), Some(4.0));
        let tokio = "13 (tokio-rt-worker) S 1 1 1 0 -1 0 0 0 0 0 300 100 0 0 20 0";
        assert_eq!(storage_thread_seconds(tokio, 100.0), None);
        assert_eq!(storage_thread_seconds("14 (fjall:x) S", 100.0), None);
    }
}
