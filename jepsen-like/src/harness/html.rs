//! The report page: one self-contained `index.html` (no scripts, no external files) with
//! the verdict, every anomaly example with the history events that show it, throughput and
//! latency over time as inline SVG with the fault windows shaded, the nemesis schedule and
//! what it did, the "two nodes down" example, and the tail of every node's log.
//!
//! Invariants: every text that comes from the run (errors, logs, events) is HTML-escaped;
//! plots are computed in one pass over the history (linear in its size).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::schedule::Schedule;
use super::{Checked, Options, TwoDown};
use crate::{History, Kind, Process, F};

/// Everything the page shows.
#[derive(Debug)]
pub struct Page<'a> {
    /// Run options.
    pub options: &'a Options,
    /// The schedule.
    pub schedule: &'a Schedule,
    /// Network mode name.
    pub network: &'a str,
    /// What topic was created.
    pub topic_note: &'a str,
    /// The history.
    pub history: &'a History,
    /// Monotonic ns at the start of the main phase (time 0 of the plots).
    pub start_ns: u64,
    /// Checker reports.
    pub checked: &'a [Checked],
    /// Final verdict.
    pub valid: bool,
    /// Harness problems.
    pub problems: &'a [String],
    /// The two-down example.
    pub two_down: Option<&'a TwoDown>,
    /// (node, log tail).
    pub logs: &'a [(u32, String)],
    /// What was planted, if anything.
    pub planted: Option<&'a str>,
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A shaded fault window in seconds since the start.
#[derive(Debug, Clone, PartialEq)]
pub struct Shade {
    /// Start, s.
    pub from_s: f64,
    /// End, s.
    pub to_s: f64,
    /// Fault kind (`kill`, `pause`, `partition`, `netem`).
    pub kind: String,
}

/// Fault windows from the nemesis events (`start-X` to the next `stop-X` or `heal`).
pub fn shades(history: &History, start_ns: u64) -> Vec<Shade> {
    let mut open: BTreeMap<String, f64> = BTreeMap::new();
    let mut shades = Vec::new();
    let seconds = |t: Option<u64>| t.unwrap_or(start_ns).saturating_sub(start_ns) as f64 / 1e9;
    for event in &history.events {
        if event.process != Process::Named("nemesis".into()) {
            continue;
        }
        let F::Other(f) = &event.f else { continue };
        let at = seconds(event.time);
        if let Some(kind) = f.strip_prefix("start-") {
            open.insert(kind.to_owned(), at);
        } else if let Some(kind) = f.strip_prefix("stop-") {
            if let Some(from_s) = open.remove(kind) {
                shades.push(Shade {
                    from_s,
                    to_s: at,
                    kind: kind.to_owned(),
                });
            }
        } else if f == "heal" {
            for (kind, from_s) in std::mem::take(&mut open) {
                shades.push(Shade {
                    from_s,
                    to_s: at,
                    kind,
                });
            }
        }
    }
    shades
}

/// Per-second completions and per-op latencies of client ops.
#[derive(Debug, Default)]
pub struct Series {
    /// (second, kind, f) -> completions.
    pub rate: BTreeMap<(u64, &'static str), u64>,
    /// (completion s, latency ms, kind) of every completed op.
    pub latency: Vec<(f64, f64, &'static str)>,
    /// Last second with an event.
    pub end_s: f64,
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Ok => "ok",
        Kind::Fail => "fail",
        Kind::Info => "info",
        Kind::Invoke => "invoke",
    }
}

/// One pass over the history.
pub fn series(history: &History, start_ns: u64) -> Series {
    let mut invoked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut series = Series::default();
    for event in &history.events {
        let Process::Client(process) = event.process else {
            continue;
        };
        let time = event.time.unwrap_or(start_ns);
        let at_s = time.saturating_sub(start_ns) as f64 / 1e9;
        series.end_s = series.end_s.max(at_s);
        if event.kind == Kind::Invoke {
            invoked.insert(process, time);
            continue;
        }
        if !matches!(event.f, F::Send | F::Poll | F::Txn) {
            continue;
        }
        let label = match (&event.f, event.kind) {
            (F::Poll, Kind::Ok) => "poll ok",
            (F::Poll, _) => "poll info/fail",
            (_, kind) => kind_name(kind),
        };
        *series.rate.entry((at_s as u64, label)).or_default() += 1;
        if let Some(begin) = invoked.remove(&process) {
            if event.f != F::Poll {
                let latency_ms = time.saturating_sub(begin) as f64 / 1e6;
                series
                    .latency
                    .push((at_s, latency_ms, kind_name(event.kind)));
            }
        }
    }
    series
}

const PLOT_W: f64 = 900.0;
const PLOT_H: f64 = 240.0;
const MARGIN: f64 = 45.0;

fn color(label: &str) -> &'static str {
    match label {
        "ok" | "poll ok" => "#2a7",
        "fail" => "#d33",
        "info" => "#e90",
        "poll info/fail" => "#a5d",
        "kill" => "#f88",
        "pause" => "#fc6",
        "partition" => "#8af",
        "netem" => "#bdb",
        _ => "#999",
    }
}

fn plot_frame(
    svg: &mut String,
    shades: &[Shade],
    end_s: f64,
    y_label: &str,
    y_max: f64,
    log: bool,
) {
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-size="11">"#,
        w = PLOT_W + 2.0 * MARGIN,
        h = PLOT_H + 2.0 * MARGIN
    );
    for shade in shades {
        let x0 = MARGIN + shade.from_s / end_s * PLOT_W;
        let x1 = MARGIN + shade.to_s / end_s * PLOT_W;
        let _ = write!(
            svg,
            concat!(
                r#"<rect x="{x0:.1}" y="{MARGIN}" width="{:.1}" height="{PLOT_H}" fill="{}""#,
                r#" opacity="0.35"><title>{}</title></rect>"#
            ),
            (x1 - x0).max(1.0),
            color(&shade.kind),
            escape(&shade.kind),
            x0 = x0,
            MARGIN = MARGIN,
            PLOT_H = PLOT_H,
        );
    }
    let _ = write!(
        svg,
        concat!(
            r#"<rect x="{MARGIN}" y="{MARGIN}" width="{PLOT_W}" height="{PLOT_H}""#,
            r#" fill="none" stroke="black"/>"#
        ),
        MARGIN = MARGIN,
        PLOT_W = PLOT_W,
        PLOT_H = PLOT_H,
    );
    let ticks = 10;
    for i in 0..=ticks {
        let x = MARGIN + PLOT_W * f64::from(i) / f64::from(ticks);
        let _ = write!(
            svg,
            r#"<text x="{x:.0}" y="{:.0}" text-anchor="middle">{:.0}s</text>"#,
            MARGIN + PLOT_H + 14.0,
            end_s * f64::from(i) / f64::from(ticks)
        );
        let value = if log {
            10f64.powf(y_max.log10() * f64::from(i) / f64::from(ticks))
        } else {
            y_max * f64::from(i) / f64::from(ticks)
        };
        if i % 2 == 0 {
            let y = MARGIN + PLOT_H - PLOT_H * f64::from(i) / f64::from(ticks);
            let _ = write!(
                svg,
                r#"<text x="{:.0}" y="{y:.0}" text-anchor="end">{value:.0}</text>"#,
                MARGIN - 4.0
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text x="12" y="{:.0}" transform="rotate(-90 12 {:.0})" text-anchor="middle">{}</text>"#,
        MARGIN + PLOT_H / 2.0,
        MARGIN + PLOT_H / 2.0,
        escape(y_label)
    );
}

fn legend(svg: &mut String, labels: &[&str]) {
    for (i, label) in labels.iter().enumerate() {
        let x = MARGIN + 110.0 * i as f64;
        let _ = write!(
            svg,
            concat!(
                r#"<rect x="{x}" y="12" width="10" height="10" fill="{}"/>"#,
                r#"<text x="{}" y="21">{}</text>"#
            ),
            color(label),
            x + 14.0,
            escape(label),
            x = x,
        );
    }
}

/// Throughput: completions per second by outcome, as lines.
pub fn throughput_svg(series: &Series, shades: &[Shade]) -> String {
    let end_s = series.end_s.max(1.0);
    let labels = ["ok", "info", "fail", "poll ok", "poll info/fail"];
    let y_max = series.rate.values().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let mut svg = String::new();
    plot_frame(&mut svg, shades, end_s, "ops/s", y_max, false);
    legend(&mut svg, &labels);
    for label in labels {
        let mut points = String::new();
        for second in 0..=(end_s as u64) {
            let count = series.rate.get(&(second, label)).copied().unwrap_or(0) as f64;
            let x = MARGIN + (second as f64 + 0.5) / end_s * PLOT_W;
            let y = MARGIN + PLOT_H - count / y_max * PLOT_H;
            let _ = write!(points, "{x:.1},{y:.1} ");
        }
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{points}"/>"#,
            color(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Latency of sends/txns: one dot per op, log scale.
pub fn latency_svg(series: &Series, shades: &[Shade]) -> String {
    let end_s = series.end_s.max(1.0);
    let y_max = series.latency.iter().map(|p| p.1).fold(10.0f64, f64::max) * 1.2;
    let mut svg = String::new();
    plot_frame(&mut svg, shades, end_s, "latency ms (log)", y_max, true);
    legend(&mut svg, &["ok", "info", "fail"]);
    let log_max = y_max.log10();
    for &(at_s, latency_ms, kind) in &series.latency {
        let x = MARGIN + at_s / end_s * PLOT_W;
        let y = MARGIN + PLOT_H - (latency_ms.max(1.0).log10() / log_max).clamp(0.0, 1.0) * PLOT_H;
        let _ = write!(
            svg,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="1.6" fill="{}"/>"#,
            color(kind)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The whole page.
pub fn render(page: &Page<'_>) -> String {
    let mut out = String::new();
    let verdict = if page.valid { "VALID" } else { "INVALID" };
    let banner = if page.valid { "#2a7" } else { "#d33" };
    let options = page.options;
    let _ = write!(
        out,
        r#"<!doctype html><html><head><meta charset="utf-8">
<title>weir-jepsen seed {seed}: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}
pre{{background:#f4f4f4;padding:.6em;overflow-x:auto;font-size:12px}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}
.v{{color:#fff;background:{banner};padding:.3em .8em;font-size:1.6em}}</style></head><body>
<h1>weir-jepsen <span class="v">{verdict}</span></h1>"#,
        seed = options.seed
    );
    let command = format!(
        "cargo xtask jepsen --nodes {} --time {} --nemesis {} --workload {} --seed {}",
        options.nodes,
        options.time_s,
        options
            .nemesis
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(","),
        options.workload.name(),
        options.seed
    );
    let clients = if options.rdkafka && options.workload == super::WorkloadKind::Queue {
        "weir-client (Rust), librdkafka via confluent-kafka (Python)"
    } else {
        "weir-client (Rust)"
    };
    let rows = [
        ("seed", options.seed.to_string()),
        ("nodes", options.nodes.to_string()),
        ("workload", options.workload.name().to_owned()),
        ("network", page.network.to_owned()),
        ("topic", page.topic_note.to_owned()),
        ("clients", clients.to_owned()),
        ("events", page.history.events.len().to_string()),
        ("reproduce", command),
    ];
    out.push_str("<table>");
    for (name, value) in rows {
        let _ = write!(
            out,
            "<tr><th>{name}</th><td><code>{}</code></td></tr>",
            escape(&value)
        );
    }
    out.push_str("</table>");
    if let Some(planted) = page.planted {
        let _ = write!(
            out,
            "<p><b>Planted bug:</b> {} — the checker must reject this run.</p>",
            escape(planted)
        );
    }
    if !page.problems.is_empty() {
        out.push_str("<h2>Harness problems</h2><ul>");
        for problem in page.problems {
            let _ = write!(out, "<li>{}</li>", escape(problem));
        }
        out.push_str("</ul>");
    }
    let shades = shades(page.history, page.start_ns);
    let series = series(page.history, page.start_ns);
    out.push_str("<h2>Throughput</h2>");
    out.push_str(&throughput_svg(&series, &shades));
    out.push_str("<h2>Latency (send / txn)</h2>");
    out.push_str(&latency_svg(&series, &shades));
    out.push_str("<p>Shaded: kill (red), pause (yellow), partition (blue), netem (green).</p>");
    two_down_section(&mut out, page);
    for checked in page.checked {
        checker_section(&mut out, page.history, checked);
    }
    let _ = write!(
        out,
        "<h2>Nemesis</h2><pre>{}</pre><table><tr><th>t (s)</th><th>f</th><th>value</th></tr>",
        escape(&page.schedule.to_string())
    );
    for event in &page.history.events {
        if event.process != Process::Named("nemesis".into()) {
            continue;
        }
        let at = event.time.unwrap_or(0).saturating_sub(page.start_ns) as f64 / 1e9;
        let value = serde_json::to_string(&event.value).unwrap_or_default();
        let F::Other(f) = &event.f else { continue };
        let _ = write!(
            out,
            "<tr><td>{at:.1}</td><td>{}</td><td>{}</td></tr>",
            escape(f),
            escape(&value)
        );
    }
    out.push_str("</table><h2>Node logs (tail)</h2>");
    for (id, tail) in page.logs {
        let _ = write!(
            out,
            "<details><summary>node {id}</summary><pre>{}</pre></details>",
            escape(tail)
        );
    }
    out.push_str("</body></html>\n");
    out
}

fn two_down_section(out: &mut String, page: &Page<'_>) {
    let Some(two) = page.two_down else { return };
    let acked: u64 = two.acked_per_key.values().sum();
    let verdict = if two.lost == 0 && acked > 0 {
        "holds"
    } else {
        "DOES NOT HOLD"
    };
    let _ = write!(
        out,
        "<h2>Two nodes down (5 nodes, RF=3, min.insync.replicas=2, acks=all): {verdict}</h2>\
         <p>Nodes {:?} were killed from {:.1}s to {:.1}s. \
         Acknowledged writes during the window: <b>{acked}</b> (per key: {}); \
         not acknowledged: {}; acknowledged but never read: <b>{}</b>.</p>",
        two.nodes,
        two.start_ms as f64 / 1000.0,
        two.end_ms as f64 / 1000.0,
        escape(&format!("{:?}", two.acked_per_key)),
        two.not_acked,
        two.lost
    );
}

fn checker_section(out: &mut String, history: &History, checked: &Checked) {
    let report = &checked.report;
    let _ = write!(
        out,
        "<h2>Checker: {} — {}</h2><p>config: <code>{}</code></p>",
        escape(&checked.title),
        escape(&format!("{:?}", report.verdict)),
        escape(&serde_json::to_string(&checked.config).unwrap_or_default())
    );
    if !report.unknown_reasons.is_empty() {
        let _ = write!(
            out,
            "<p>unknown because: {}</p>",
            escape(&report.unknown_reasons.join("; "))
        );
    }
    out.push_str("<table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th></tr>");
    for (f, stats) in &report.stats {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(f),
            stats.ok,
            stats.fail,
            stats.info
        );
    }
    out.push_str("</table>");
    if report.counts.is_empty() {
        out.push_str("<p>No anomalies.</p>");
        return;
    }
    out.push_str("<table><tr><th>anomaly</th><th>count</th><th>bad</th></tr>");
    for (name, count) in &report.counts {
        let bad = report.bad_types.contains(name);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{count}</td><td>{}</td></tr>",
            escape(name),
            if bad { "<b>bad</b>" } else { "informational" }
        );
    }
    out.push_str("</table>");
    for (name, examples) in &report.examples {
        let _ = write!(out, "<h3>{}</h3>", escape(name));
        for anomaly in examples.iter().take(8) {
            let _ = write!(out, "<p>{}</p><pre>", escape(&anomaly.explanation));
            for &op in anomaly.ops.iter().take(6) {
                if let Some(event) = history
                    .events
                    .get(usize::try_from(op).unwrap_or(usize::MAX))
                {
                    let _ = writeln!(out, "{op}: {}", escape(&event.to_json_line()));
                }
            }
            out.push_str("</pre>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Mop, Value};

    // Goal: run text cannot break out of the page, and shades pair start/stop/heal.
    // Method: escape a tag; build a tiny history with nemesis events and check the shades.
    #[test]
    fn escapes_and_shades() {
        assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
        let mut events = Vec::new();
        let nemesis = |f: &str, t: u64| {
            let mut e = Event::new(
                0,
                Kind::Info,
                F::Other(f.into()),
                Value::Other(serde_json::Value::Null),
            );
            e.process = Process::Named("nemesis".into());
            e.time = Some(t);
            e
        };
        events.push(nemesis("start-kill", 1_000_000_000));
        events.push(nemesis("stop-kill", 3_000_000_000));
        events.push(nemesis("start-partition", 4_000_000_000));
        events.push(nemesis("heal", 6_000_000_000));
        let mut send = Event::new(1, Kind::Invoke, F::Send, Value::Mops(vec![Mop::send(0, 1)]));
        send.time = Some(2_000_000_000);
        events.push(send.clone());
        send.kind = Kind::Ok;
        send.time = Some(2_500_000_000);
        events.push(send);
        let history = History {
            header: None,
            events,
        };
        let shades = shades(&history, 0);
        assert_eq!(shades.len(), 2);
        assert_eq!(
            (shades[0].from_s, shades[0].to_s, shades[0].kind.as_str()),
            (1.0, 3.0, "kill")
        );
        assert_eq!(shades[1].kind, "partition");
        let series = series(&history, 0);
        assert_eq!(series.latency.len(), 1);
        assert!((series.latency[0].1 - 500.0).abs() < 1e-6);
        assert!(throughput_svg(&series, &shades).starts_with("<svg"));
    }
}
