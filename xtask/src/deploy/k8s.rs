//! The `k8s` target: the inventory rendered as Kubernetes objects (JSON, one file each, in
//! `[k8s] out_dir`), applied with `kubectl` when it is on the PATH and reaches a cluster,
//! else only written for the operator to apply.
//!
//! Objects: a ConfigMap with every node's `weir.toml` (pod N reads `node-N.toml`, N its
//! StatefulSet ordinal: the inventory's nodes sorted by id), a headless Service (stable
//! names `NAME-N.NAME-headless.NS.svc.cluster.local`, published before readiness so the
//! quorum can form), a client Service, a StatefulSet (a PersistentVolumeClaim per broker,
//! readiness on `/readyz`, liveness on `/healthz`, a preStop that sends SIGTERM, the
//! broker's controlled shutdown, and waits for the exit, anti-affinity by host and spread
//! by zone), a PodDisruptionBudget (one broker down at a time), and a Dockerfile for the
//! image (`weir` on debian-slim: the pod's command needs `sh`).
//!
//! Every node listens on the same ports (one pod template); the inventory's hosts are
//! replaced by the pods' DNS names, the listeners keep their names (`SSL://...`).
//!
//! With `[tls]`, a Secret `NAME-tls` holds the CA, each node's keystore and the admin
//! client's certificate; every pod mounts it at `/etc/weir-tls` and its config names its own
//! directory there (`node-N/`). Every pod can read every node's key (one Secret, one pod
//! template): use one certificate naming all pods (`keystore` without `{id}`) or a
//! per-pod issuer such as cert-manager where that matters. In-pod admin commands (the
//! upgrade's preferred-leader election, status) use `client.properties` from the
//! ConfigMap and reach the broker by its DNS name, which its certificate must name.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::inventory::{host_port, listener_addresses, Inventory, K8sSection, NodeSpec};

/// Where the persistent volume is mounted; data lives in `data/` below it.
const VOLUME_MOUNT: &str = "/var/lib/weir";
/// Where the ConfigMap is mounted.
const CONFIG_MOUNT: &str = "/etc/weir";
/// Where the TLS Secret is mounted (`node-N/` per node, `admin/` for the admin client).
const TLS_MOUNT: &str = "/etc/weir-tls";
/// The image's user and group (debian-slim's "nonroot"-style unprivileged id).
const IMAGE_UID: u32 = 65532;

/// The rendered objects: (file name, object).
pub(crate) struct Manifests {
    pub objects: Vec<(String, Value)>,
    pub dockerfile: String,
}

struct Ports {
    kafka: u16,
    controller: u16,
    metrics: u16,
}

fn ports_of(node: &NodeSpec) -> Result<Ports> {
    let kafka = listener_addresses(&node.listeners)?;
    if kafka.len() != 1 {
        bail!("node {}: the k8s target takes one Kafka listener", node.id);
    }
    Ok(Ports {
        kafka: kafka[0].1,
        controller: host_port(&node.controller_listener)?.1,
        metrics: host_port(&node.metrics_listener)?.1,
    })
}

/// Renders every object of the inventory's cluster.
pub(crate) fn render(inventory: &Inventory, section: &K8sSection) -> Result<Manifests> {
    let mut nodes: Vec<NodeSpec> = inventory.nodes.clone();
    nodes.sort_by_key(|n| n.id);
    let ports = ports_of(&nodes[0])?;
    for node in &nodes {
        let these = ports_of(node)?;
        if (these.kafka, these.controller, these.metrics)
            != (ports.kafka, ports.controller, ports.metrics)
        {
            bail!(
                "node {}: the k8s target needs the same ports on every node (one pod template)",
                node.id
            );
        }
    }
    let (name, ns) = (&section.name, &section.namespace);
    let headless = format!("{name}-headless");
    let dns = |ordinal: usize| format!("{name}-{ordinal}.{headless}.{ns}.svc.cluster.local");
    // The pods' view of the cluster: hosts are DNS names, every listener binds all addresses.
    let mut pods = inventory.clone();
    for (ordinal, node) in pods.nodes.iter_mut().enumerate() {
        *node = nodes[ordinal].clone();
        let listener = listener_name(&node.listeners).to_owned();
        node.host = dns(ordinal);
        node.listeners = format!("{listener}://0.0.0.0:{}", ports.kafka);
        node.advertised_listeners = Some(format!("{listener}://{}:{}", node.host, ports.kafka));
        node.controller_listener = format!("{}:{}", node.host, ports.controller);
        node.metrics_listener = format!("0.0.0.0:{}", ports.metrics);
    }
    let mut configs = serde_json::Map::new();
    let mut digest = Fnv::default();
    for (ordinal, node) in pods.nodes.iter().enumerate() {
        let tls_dir = format!("{TLS_MOUNT}/node-{ordinal}");
        let text = pods.render_config(node, &format!("{VOLUME_MOUNT}/data"), &tls_dir)?;
        digest.write(text.as_bytes());
        configs.insert(format!("node-{ordinal}.toml"), Value::String(text));
    }
    let tls = tls_secret(inventory, &nodes)?;
    if let Some(properties) = pod_client_properties(&pods) {
        digest.write(properties.as_bytes());
        configs.insert("client.properties".to_owned(), Value::String(properties));
    }
    let labels = json!({
        "app.kubernetes.io/name": "weir",
        "app.kubernetes.io/instance": name,
    });
    let meta = |object: &str| json!({"name": object, "namespace": ns, "labels": labels});
    let config_map = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": meta(&format!("{name}-config")),
        "data": configs,
    });
    let port_list = json!([
        {"name": "kafka", "port": ports.kafka, "targetPort": "kafka"},
        {"name": "controller", "port": ports.controller, "targetPort": "controller"},
        {"name": "metrics", "port": ports.metrics, "targetPort": "metrics"},
    ]);
    let headless_service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(&headless),
        "spec": {
            "clusterIP": "None",
            // Peers must resolve each other before they are ready: the quorum forms first.
            "publishNotReadyAddresses": true,
            "selector": labels,
            "ports": port_list,
        },
    });
    let client_service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(name),
        "spec": {
            "type": "ClusterIP",
            "selector": labels,
            "ports": [{"name": "kafka", "port": ports.kafka, "targetPort": "kafka"}],
        },
    });
    let termination_grace = inventory.timeouts.stop_s + 10;
    let mut container = json!({
        "name": "weir",
        "image": section.image,
        "command": ["/bin/sh", "-c",
            format!("exec weir serve --config {CONFIG_MOUNT}/node-${{HOSTNAME##*-}}.toml")],
        "ports": [
            {"name": "kafka", "containerPort": ports.kafka},
            {"name": "controller", "containerPort": ports.controller},
            {"name": "metrics", "containerPort": ports.metrics},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "metrics"},
            "periodSeconds": 2, "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "metrics"},
            "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 6,
        },
        "lifecycle": {"preStop": {"exec": {"command": ["/bin/sh", "-c",
            "kill -TERM 1; while kill -0 1 2>/dev/null; do sleep 1; done"]}}},
        "volumeMounts": [
            {"name": "data", "mountPath": VOLUME_MOUNT},
            {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": true},
        ],
    });
    let mut volumes = vec![json!({
        "name": "config",
        "configMap": {"name": format!("{name}-config")},
    })];
    if let Some((_, items)) = &tls {
        if let Some(mounts) = container["volumeMounts"].as_array_mut() {
            mounts.push(json!({"name": "tls", "mountPath": TLS_MOUNT, "readOnly": true}));
        }
        volumes.push(json!({
            "name": "tls",
            // Owner-readable only (0400); the pod's fsGroup lets the broker's user read it.
            "secret": {"secretName": format!("{name}-tls"), "defaultMode": 256, "items": items},
        }));
    }
    if let Some(resources) = &section.resources {
        container["resources"] =
            serde_json::to_value(resources).context("[k8s] resources is not a table")?;
    }
    let mut claim_spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": section.storage}},
    });
    if let Some(class) = &section.storage_class {
        claim_spec["storageClassName"] = json!(class);
    }
    let stateful_set = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": meta(name),
        "spec": {
            "serviceName": headless,
            "replicas": nodes.len(),
            // Pods start together (a quorum needs its voters); updates roll one at a time,
            // each waiting for the previous pod's readiness (/readyz: ISR refilled).
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": labels},
            "template": {
                // A changed config changes the template, so apply rolls the pods onto it
                // (a ConfigMap change alone restarts nothing).
                "metadata": {
                    "labels": labels,
                    "annotations": {"weir/config-fnv1a64": format!("{:016x}", digest.0)},
                },
                "spec": {
                    "terminationGracePeriodSeconds": termination_grace,
                    // The image's user (Dockerfile below) owns the volume.
                    "securityContext": {
                        "runAsUser": IMAGE_UID, "runAsGroup": IMAGE_UID,
                        "runAsNonRoot": true, "fsGroup": IMAGE_UID,
                    },
                    "affinity": {"podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [{
                            "labelSelector": {"matchLabels": labels},
                            "topologyKey": "kubernetes.io/hostname",
                        }],
                    }},
                    "topologySpreadConstraints": [{
                        "maxSkew": 1,
                        "topologyKey": section.topology_key,
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": labels},
                    }],
                    "containers": [container],
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data", "labels": labels},
                "spec": claim_spec,
            }],
        },
    });
    let budget = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": meta(name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
    });
    let mut objects = vec![
        ("10-configmap.json".to_owned(), config_map),
        ("20-service-headless.json".to_owned(), headless_service),
        ("21-service.json".to_owned(), client_service),
        ("30-statefulset.json".to_owned(), stateful_set),
        ("40-poddisruptionbudget.json".to_owned(), budget),
    ];
    if let Some((files, _)) = tls {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": meta(&format!("{name}-tls")),
            "type": "Opaque",
            "stringData": files,
        });
        objects.insert(1, ("11-secret-tls.json".to_owned(), secret));
    }
    let dockerfile = "# The image the StatefulSet runs: `weir` on a base with /bin/sh (the pod's\n\
         # command picks its config by ordinal). Build it next to a release binary:\n\
         #   cp target/release/weir . && docker build -t IMAGE .\n\
         FROM debian:bookworm-slim\n\
         COPY weir /usr/local/bin/weir\n\
         USER 65532:65532\n"
        .to_owned();
    Ok(Manifests {
        objects,
        dockerfile,
    })
}

/// The name of the first listener (`SSL`, `PLAINTEXT`, a custom name), as the pods keep it.
fn listener_name(listeners: &str) -> &str {
    (listeners.split(',').next())
        .and_then(|l| l.split_once("://"))
        .map_or("PLAINTEXT", |(name, _)| name.trim())
}

/// With `[tls]`: the Secret's files (PEM text by key) and the volume items that lay them
/// out as `node-N/{ca,keystore}.pem` and `admin/{cert,key}.pem`.
fn tls_secret(inventory: &Inventory, nodes: &[NodeSpec]) -> Result<Option<(Value, Value)>> {
    let Some(tls) = &inventory.tls else {
        return Ok(None);
    };
    let read = |path: PathBuf| -> Result<String> {
        std::fs::read_to_string(&path).with_context(|| format!("tls: reading {}", path.display()))
    };
    let mut files = serde_json::Map::new();
    let mut items = Vec::new();
    for (ordinal, node) in nodes.iter().enumerate() {
        for (source, file) in inventory.tls_files(node) {
            let key = match file {
                "ca.pem" => "ca.pem".to_owned(),
                other => format!("node-{ordinal}-{other}"),
            };
            if !files.contains_key(&key) {
                files.insert(key.clone(), Value::String(read(source)?));
            }
            items.push(json!({"key": key, "path": format!("node-{ordinal}/{file}")}));
        }
    }
    if let (Some(cert), Some(key)) = (&tls.admin_certificate, &tls.admin_key) {
        for (source, file) in [(cert, "cert.pem"), (key, "key.pem")] {
            let name = format!("admin-{file}");
            files.insert(
                name.clone(),
                Value::String(read(inventory.resolve(source))?),
            );
            items.push(json!({"key": name, "path": format!("admin/{file}")}));
        }
    }
    Ok(Some((Value::Object(files), Value::Array(items))))
}

/// `client.properties` for in-pod admin commands when the Kafka listener is TLS.
fn pod_client_properties(pods: &Inventory) -> Option<String> {
    let tls = pods.tls.as_ref()?;
    let node = pods.nodes.first()?;
    if !pods.first_listener_is_tls(node) {
        return None;
    }
    let mut text = format!("security.protocol=SSL\nssl.ca.location={TLS_MOUNT}/node-0/ca.pem\n");
    if tls.admin_certificate.is_some() && tls.admin_key.is_some() {
        text.push_str(&format!(
            "ssl.certificate.location={TLS_MOUNT}/admin/cert.pem\n\
             ssl.key.location={TLS_MOUNT}/admin/key.pem\n"
        ));
    }
    Some(text)
}

/// FNV-1a (64 bits): a digest that stays the same across builds and toolchains.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The k8s target's commands.
pub(crate) struct K8s {
    section: K8sSection,
    out_dir: PathBuf,
}

impl K8s {
    pub(crate) fn new(inventory: &Inventory) -> Result<K8s> {
        let section = inventory
            .k8s
            .clone()
            .context("target \"k8s\" needs a [k8s] section with image")?;
        let out_dir = inventory.resolve(&section.out_dir);
        Ok(K8s { section, out_dir })
    }

    fn kubectl(&self) -> Command {
        let mut command = Command::new("kubectl");
        command.args(["--namespace", &self.section.namespace]);
        command
    }

    /// kubectl on the PATH, wanted, and answering with a server version.
    fn cluster_reachable(&self) -> bool {
        self.section.kubectl
            && Command::new("kubectl")
                .args(["version", "--request-timeout=5s"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
    }

    fn write(&self, manifests: &Manifests) -> Result<()> {
        std::fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("creating {}", self.out_dir.display()))?;
        for (file, object) in &manifests.objects {
            let path = self.out_dir.join(file);
            let text = serde_json::to_string_pretty(object).context("rendering JSON")?;
            std::fs::write(&path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let path = self.out_dir.join("Dockerfile");
        std::fs::write(&path, &manifests.dockerfile)
            .with_context(|| format!("writing {}", path.display()))
    }

    fn run(&self, what: &str, mut command: Command) -> Result<String> {
        let output = command
            .output()
            .with_context(|| format!("{what}: running kubectl"))?;
        if !output.status.success() {
            bail!(
                "{what}: {} ({})",
                String::from_utf8_lossy(&output.stderr).trim(),
                output.status
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn needs_cluster(&self, action: &str) -> Result<()> {
        if !self.cluster_reachable() {
            bail!("{action} on the k8s target needs kubectl reaching the cluster");
        }
        Ok(())
    }

    /// Runs one deploy action; Ok(false) when status found the cluster unhealthy.
    /// How an admin command inside pod 0 reaches its broker: loopback, or over TLS its DNS
    /// name (what its certificate names) with the ConfigMap's `client.properties`.
    fn in_pod_bootstrap(&self, inventory: &Inventory, port: u16) -> Vec<String> {
        let tls = (inventory.nodes.first()).is_some_and(|n| inventory.first_listener_is_tls(n));
        if !tls {
            return vec!["--bootstrap".into(), format!("127.0.0.1:{port}")];
        }
        let (name, ns) = (&self.section.name, &self.section.namespace);
        vec![
            "--bootstrap".into(),
            format!("{name}-0.{name}-headless.{ns}.svc.cluster.local:{port}"),
            "--command-config".into(),
            format!("{CONFIG_MOUNT}/client.properties"),
        ]
    }

    pub(crate) fn act(&self, inventory: &Inventory, action: super::Action) -> Result<bool> {
        use super::Action;
        let manifests = render(inventory, &self.section)?;
        let name = &self.section.name;
        match action {
            Action::Plan => {
                for (file, object) in &manifests.objects {
                    println!(
                        "{} {}: {}",
                        object["kind"].as_str().unwrap_or("?"),
                        object["metadata"]["name"].as_str().unwrap_or("?"),
                        self.out_dir.join(file).display()
                    );
                }
                println!(
                    "apply {}",
                    if self.cluster_reachable() {
                        "with kubectl"
                    } else {
                        "writes the files only (kubectl absent, off or not reaching a cluster)"
                    }
                );
                Ok(true)
            }
            Action::Apply | Action::Upgrade => {
                self.write(&manifests)?;
                println!("wrote {}", self.out_dir.display());
                if !self.cluster_reachable() {
                    println!(
                        "kubectl absent, off or not reaching a cluster: apply them with \
                         `kubectl apply -f {}`",
                        self.out_dir.display()
                    );
                    return Ok(action == Action::Apply);
                }
                let mut apply = self.kubectl();
                apply.arg("apply").arg("-f").arg(&self.out_dir);
                print!("{}", self.run("kubectl apply", apply)?);
                let timeout = format!(
                    "--timeout={}s",
                    inventory.timeouts.isr_s * inventory.nodes.len() as u64
                );
                let mut rollout = self.kubectl();
                rollout.args([
                    "rollout",
                    "status",
                    &format!("statefulset/{name}"),
                    &timeout,
                ]);
                print!("{}", self.run("kubectl rollout status", rollout)?);
                if action == Action::Upgrade {
                    let mut elect = self.kubectl();
                    let port = ports_of(&inventory.nodes[0])?.kafka;
                    elect.args(["exec", &format!("{name}-0"), "--", "weir", "cluster"]);
                    elect
                        .arg("elect-leaders")
                        .args(self.in_pod_bootstrap(inventory, port));
                    print!("{}", self.run("preferred leader election", elect)?);
                }
                Ok(true)
            }
            Action::Status => {
                self.needs_cluster("status")?;
                let mut pods = self.kubectl();
                pods.args(["get", "pods", "-o", "wide", "-l"]);
                pods.arg(format!("app.kubernetes.io/instance={name}"));
                print!("{}", self.run("kubectl get pods", pods)?);
                let mut describe = self.kubectl();
                let port = ports_of(&inventory.nodes[0])?.kafka;
                describe.args(["exec", &format!("{name}-0"), "--", "weir", "cluster"]);
                describe
                    .arg("describe")
                    .args(self.in_pod_bootstrap(inventory, port));
                print!("{}", self.run("weir cluster describe", describe)?);
                let mut ready = self.kubectl();
                ready.args(["get", &format!("statefulset/{name}"), "-o"]);
                ready.arg("jsonpath={.status.readyReplicas}");
                let count = self.run("kubectl get statefulset", ready)?;
                Ok(count.trim() == inventory.nodes.len().to_string())
            }
            Action::Stop => {
                self.needs_cluster("stop")?;
                let mut scale = self.kubectl();
                scale.args(["scale", &format!("statefulset/{name}"), "--replicas=0"]);
                print!("{}", self.run("kubectl scale", scale)?);
                Ok(true)
            }
            Action::Destroy => {
                self.needs_cluster("destroy")?;
                let mut delete = self.kubectl();
                delete
                    .args(["delete", "--ignore-not-found", "-f"])
                    .arg(&self.out_dir);
                print!("{}", self.run("kubectl delete", delete)?);
                let mut claims = self.kubectl();
                claims.args(["delete", "pvc", "-l"]);
                claims.arg(format!("app.kubernetes.io/instance={name}"));
                print!("{}", self.run("kubectl delete pvc", claims)?);
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const INVENTORY: &str = r#"
        [cluster]
        id = "k1"
        target = "k8s"
        [k8s]
        image = "registry.example/weir:0.1.0"
        namespace = "streams"
        storage = "50Gi"
        [settings]
        "default.replication.factor" = 3
    "#;

    fn inventory() -> Inventory {
        let mut text = INVENTORY.to_owned();
        for id in 1..=3 {
            text.push_str(&format!(
                "[[node]]\nid = {id}\nhost = \"h{id}\"\nrack = \"z{id}\"\n\
                 listeners = \"PLAINTEXT://0.0.0.0:9092\"\n\
                 controller_listener = \"h{id}:19092\"\nmetrics_listener = \"0.0.0.0:9192\"\n"
            ));
        }
        Inventory::parse(&text, Path::new("k.toml"), Path::new("/inv")).expect("valid")
    }

    #[test]
    fn renders_the_objects_issue_16_names() {
        let inventory = inventory();
        let section = inventory.k8s.clone().expect("[k8s]");
        let manifests = render(&inventory, &section).expect("renders");
        let kinds: Vec<&str> = (manifests.objects.iter())
            .map(|(_, o)| o["kind"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            kinds,
            [
                "ConfigMap",
                "Service",
                "Service",
                "StatefulSet",
                "PodDisruptionBudget"
            ]
        );
        let config = &manifests.objects[0].1["data"]["node-1.toml"];
        let config: toml::Table = toml::from_str(config.as_str().expect("text")).expect("TOML");
        let host = "weir-1.weir-headless.streams.svc.cluster.local";
        assert_eq!(config["node.id"].as_integer(), Some(2));
        assert_eq!(
            config["advertised.listeners"].as_str(),
            Some(format!("PLAINTEXT://{host}:9092").as_str())
        );
        assert!(config["controller.quorum.voters"]
            .as_str()
            .is_some_and(|v| v.contains(&format!("2@{host}:19092"))));
        let set = &manifests.objects[3].1;
        let pod = &set["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert!(container["lifecycle"]["preStop"]["exec"]["command"][2]
            .as_str()
            .is_some_and(|c| c.contains("kill -TERM 1")));
        assert_eq!(
            set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "50Gi"
        );
        assert_eq!(set["spec"]["replicas"], 3);
        assert_eq!(
            pod["topologySpreadConstraints"][0]["topologyKey"],
            "topology.kubernetes.io/zone"
        );
        assert_eq!(manifests.objects[1].1["spec"]["clusterIP"], "None");
        assert_eq!(manifests.objects[4].1["spec"]["maxUnavailable"], 1);
        let target = K8s::new(&inventory).expect("k8s target");
        assert_eq!(target.out_dir, PathBuf::from("/inv/k8s"));
    }

    #[test]
    fn the_shipped_k8s_inventory_renders() {
        let path = crate::project_root().join("deploy/k8s-3.toml");
        let inventory = Inventory::load(&path).expect("deploy/k8s-3.toml is valid");
        let section = inventory.k8s.clone().expect("[k8s]");
        let manifests = render(&inventory, &section).expect("renders");
        let set = &manifests.objects[3].1;
        assert_eq!(
            set["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
            "4Gi"
        );
    }

    #[test]
    fn a_config_change_changes_the_pod_template() {
        let annotation = |inventory: &Inventory| {
            let section = inventory.k8s.clone().expect("[k8s]");
            let manifests = render(inventory, &section).expect("renders");
            manifests.objects[3].1["spec"]["template"]["metadata"]["annotations"].clone()
        };
        let mut inventory = inventory();
        let before = annotation(&inventory);
        assert_eq!(before, annotation(&inventory), "rendering is deterministic");
        inventory
            .settings
            .insert("num.partitions".into(), toml::Value::Integer(6));
        assert_ne!(before, annotation(&inventory));
        let mut empty = Fnv::default();
        empty.write(b"a");
        assert_eq!(empty.0, 0xaf63_dc4c_8601_ec8c, "FNV-1a of \"a\"");
    }

    #[test]
    fn one_pod_template_needs_one_set_of_ports() {
        let mut inventory = inventory();
        inventory.nodes[2].metrics_listener = "0.0.0.0:9999".into();
        let section = inventory.k8s.clone().expect("[k8s]");
        let error = render(&inventory, &section).err().expect("refused");
        assert!(format!("{error:#}").contains("same ports"), "{error:#}");
    }

    // Goal: [tls] renders as a Secret every pod mounts, each node's config naming its own
    // keystore there, SSL listeners kept, and in-pod admin commands going over TLS by DNS name.
    #[test]
    fn tls_renders_a_secret_and_per_node_paths() {
        let dir = std::env::temp_dir().join(format!("weir-k8s-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for file in [
            "ca.pem",
            "node-1.pem",
            "node-2.pem",
            "node-3.pem",
            "admin.pem",
            "admin.key",
        ] {
            std::fs::write(dir.join(file), format!("PEM of {file}")).expect("write");
        }
        let mut text = INVENTORY.to_owned();
        text.push_str(&format!(
            "[tls]\nca = \"{0}/ca.pem\"\nkeystore = \"{0}/node-{{id}}.pem\"\n\
             client_auth = \"required\"\nadmin_certificate = \"{0}/admin.pem\"\n\
             admin_key = \"{0}/admin.key\"\n",
            dir.display()
        ));
        for id in 1..=3 {
            text.push_str(&format!(
                "[[node]]\nid = {id}\nhost = \"h{id}\"\nlisteners = \"SSL://0.0.0.0:9093\"\n\
                 controller_listener = \"h{id}:19092\"\nmetrics_listener = \"0.0.0.0:9192\"\n"
            ));
        }
        let inventory = Inventory::parse(&text, Path::new("k.toml"), &dir).expect("valid");
        let section = inventory.k8s.clone().expect("[k8s]");
        let manifests = render(&inventory, &section).expect("renders");
        let (_, secret) = (manifests.objects.iter())
            .find(|(_, o)| o["kind"] == "Secret")
            .expect("a Secret");
        assert_eq!(secret["metadata"]["name"], "weir-tls");
        assert_eq!(
            secret["stringData"]["node-1-keystore.pem"],
            "PEM of node-2.pem"
        );
        assert_eq!(secret["stringData"]["ca.pem"], "PEM of ca.pem");
        assert_eq!(secret["stringData"]["admin-cert.pem"], "PEM of admin.pem");
        let config_map = &manifests.objects[0].1["data"];
        let node1: toml::Table =
            toml::from_str(config_map["node-1.toml"].as_str().expect("text")).expect("TOML");
        assert_eq!(
            node1["ssl.keystore.location"].as_str(),
            Some("/etc/weir-tls/node-1/keystore.pem")
        );
        assert_eq!(node1["ssl.client.auth"].as_str(), Some("required"));
        let host = "weir-1.weir-headless.streams.svc.cluster.local";
        assert_eq!(
            node1["advertised.listeners"].as_str(),
            Some(format!("SSL://{host}:9093").as_str())
        );
        let properties = config_map["client.properties"]
            .as_str()
            .expect("client.properties");
        assert!(properties.contains("ssl.key.location=/etc/weir-tls/admin/key.pem"));
        let (_, set) = (manifests.objects.iter())
            .find(|(_, o)| o["kind"] == "StatefulSet")
            .expect("a StatefulSet");
        let pod = &set["spec"]["template"]["spec"];
        let volume = &pod["volumes"][1];
        assert_eq!(volume["secret"]["secretName"], "weir-tls");
        let paths: Vec<&str> = (volume["secret"]["items"].as_array().expect("items").iter())
            .filter_map(|item| item["path"].as_str())
            .collect();
        assert!(paths.contains(&"node-2/keystore.pem") && paths.contains(&"admin/key.pem"));
        assert_eq!(
            pod["containers"][0]["volumeMounts"][2]["mountPath"],
            "/etc/weir-tls"
        );
        let k8s = K8s {
            section: section.clone(),
            out_dir: dir.clone(),
        };
        let args = k8s.in_pod_bootstrap(&inventory, 9093);
        assert_eq!(
            args[1],
            "weir-0.weir-headless.streams.svc.cluster.local:9093"
        );
        assert_eq!(args[3], "/etc/weir/client.properties");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
