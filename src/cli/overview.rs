//! What a terminal shows of a whole apply: one overall line (steps finished of the plan's,
//! elapsed time, what each host runs), a closing table per host, and the one line of a
//! step's output its spinner shows. Pure: the caller gives the times and the width, so
//! tests render with fixed ones.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

/// The row of steps that have no host of their own (cluster-wide resources in a plan).
const NO_HOST: &str = "-";
/// Up to this many hosts, the overall line names each one, idle ones too.
const NAMED_HOSTS: usize = 4;

/// One host's steps so far.
#[derive(Default, Debug, Clone, PartialEq)]
struct HostTally {
    /// The step it runs now, if any.
    running: Option<String>,
    done: usize,
    failed: usize,
    skipped: usize,
    /// The time its steps took, added up.
    busy: Duration,
}

/// Every step's outcome so far, per host.
#[derive(Debug, Clone)]
pub struct Tally {
    total: usize,
    hosts: BTreeMap<String, HostTally>,
    /// Where each step of the plan runs (for steps skipped before they start).
    planned_host: HashMap<String, String>,
}

impl Tally {
    /// A tally of `steps` (address, host), none started yet.
    pub fn new<'a>(steps: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Tally {
        let mut tally = Tally {
            total: 0,
            hosts: BTreeMap::new(),
            planned_host: HashMap::new(),
        };
        for (address, host) in steps {
            tally.total += 1;
            let host = host.unwrap_or(NO_HOST).to_string();
            tally.hosts.entry(host.clone()).or_default();
            tally.planned_host.insert(address.to_string(), host);
        }
        tally
    }

    fn host(&mut self, address: &str, host: Option<&str>) -> &mut HostTally {
        let host = host
            .map(str::to_string)
            .or_else(|| self.planned_host.get(address).cloned())
            .unwrap_or_else(|| NO_HOST.to_string());
        self.hosts.entry(host).or_default()
    }

    pub fn started(&mut self, address: &str, host: Option<&str>) {
        self.host(address, host).running = Some(address.to_string());
    }

    pub fn done(&mut self, address: &str, host: Option<&str>, seconds: f64) {
        let tally = self.host(address, host);
        tally.done += 1;
        tally.busy += Duration::from_secs_f64(seconds.max(0.0));
        tally.clear(address);
    }

    pub fn failed(&mut self, address: &str, host: Option<&str>) {
        let tally = self.host(address, host);
        tally.failed += 1;
        tally.clear(address);
    }

    pub fn skipped(&mut self, address: &str) {
        self.host(address, None).skipped += 1;
    }

    fn finished(&self) -> usize {
        self.hosts
            .values()
            .map(|h| h.done + h.failed + h.skipped)
            .sum()
    }

    fn failures(&self) -> usize {
        self.hosts.values().map(|h| h.failed).sum()
    }

    /// `[12/40] 1m03s · 10.0.0.2 kubernetes.init · 10.0.0.3 idle`, at most `width`
    /// characters: up to four hosts are each named; beyond, the busy ones are, then how many
    /// are idle, and what does not fit is counted (`+3 more busy`).
    pub fn line(&self, elapsed: Duration, width: usize) -> String {
        let failed = match self.failures() {
            0 => String::new(),
            n => format!(", {n} failed"),
        };
        let mut line = format!(
            "[{}/{}{failed}] {}",
            self.finished(),
            self.total,
            clock(elapsed)
        );
        let hosts: Vec<(&String, &HostTally)> =
            self.hosts.iter().filter(|(h, _)| *h != NO_HOST).collect();
        let busy: Vec<String> = hosts
            .iter()
            .filter_map(|(h, t)| t.running.as_ref().map(|step| format!("{h} {step}")))
            .collect();
        let idle = hosts.iter().filter(|(_, t)| t.running.is_none()).count();
        let parts: Vec<String> = if hosts.len() <= NAMED_HOSTS {
            hosts
                .iter()
                .map(|(h, t)| format!("{h} {}", t.running.as_deref().unwrap_or("idle")))
                .collect()
        } else {
            let mut parts = busy.clone();
            if idle > 0 {
                parts.push(format!("{idle} idle"));
            }
            parts
        };
        for (i, part) in parts.iter().enumerate() {
            let rest = parts.len() - i - 1;
            // Room for this part, and for the count of those after it if they won't fit.
            let reserve = if rest > 0 { " · +NNNN more".len() } else { 0 };
            if line.chars().count() + 3 + part.chars().count() + reserve > width {
                let more = parts.len() - i;
                let _ = write!(line, " · +{more} more");
                break;
            }
            let _ = write!(line, " · {part}");
        }
        truncate(&line, width)
    }

    /// The closing table: per host, its steps done, failed and skipped and the time they
    /// took; then the totals and the elapsed time.
    pub fn table(&self, elapsed: Duration) -> String {
        let mut rows: Vec<[String; 5]> = vec![[
            "HOST".into(),
            "DONE".into(),
            "FAILED".into(),
            "SKIPPED".into(),
            "TIME".into(),
        ]];
        for (host, t) in &self.hosts {
            if *t == HostTally::default() {
                continue;
            }
            rows.push([
                host.clone(),
                t.done.to_string(),
                t.failed.to_string(),
                t.skipped.to_string(),
                clock(t.busy),
            ]);
        }
        let sum = |f: fn(&HostTally) -> usize| self.hosts.values().map(f).sum::<usize>();
        rows.push([
            "all".into(),
            sum(|t| t.done).to_string(),
            sum(|t| t.failed).to_string(),
            sum(|t| t.skipped).to_string(),
            format!("{} elapsed", clock(elapsed)),
        ]);
        let widths: Vec<usize> = (0..5)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in &rows {
            let mut line = format!("{:<w$}", row[0], w = widths[0]);
            for c in 1..4 {
                let _ = write!(line, "  {:>w$}", row[c], w = widths[c]);
            }
            let _ = write!(line, "  {}", row[4]);
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

impl HostTally {
    fn clear(&mut self, address: &str) {
        if self.running.as_deref() == Some(address) {
            self.running = None;
        }
    }
}

/// `4s`, `1m03s`, `2h05m`: whole seconds, as a clock reads.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// What a step's spinner shows of its output: the last meaningful line, never the body of a
/// PEM block (a certificate, a key) nor any long base64 run (a kubeconfig's embedded
/// certificate): those are replaced by a summary. The lines come redacted of the plan's
/// secrets (the executor does that before any sink sees them); this keeps what is not a
/// declared secret but is unreadable noise, or key material, off the screen.
#[derive(Default)]
pub struct SpinnerText {
    /// Inside `-----BEGIN X-----` ... `-----END X-----`: X.
    pem: Option<String>,
}

/// The longest run of base64 characters shown as is.
const BASE64_RUN: usize = 32;
/// How much of a line the spinner shows.
const SPINNER_CHARS: usize = 80;

impl SpinnerText {
    /// The text to show for `line`, or `None` to keep showing the previous one.
    pub fn next(&mut self, line: &str) -> Option<String> {
        let line = line.trim();
        if let Some(label) = pem_marker(line, "-----BEGIN ") {
            self.pem = Some(label.clone());
            return Some(format!("({} …)", label.to_lowercase()));
        }
        if self.pem.is_some() {
            if let Some(label) = pem_marker(line, "-----END ") {
                self.pem = None;
                return Some(format!("({} received)", label.to_lowercase()));
            }
            return None;
        }
        if line.is_empty() {
            return None;
        }
        let shown = elide_base64(line);
        if shown.trim() == "[…]" {
            return None;
        }
        Some(truncate(&shown, SPINNER_CHARS))
    }
}

/// `CERTIFICATE` of `-----BEGIN CERTIFICATE-----` (with `prefix` "-----BEGIN ").
fn pem_marker(line: &str, prefix: &str) -> Option<String> {
    let label = line.strip_prefix(prefix)?.strip_suffix("-----")?;
    Some(if label.is_empty() { "PEM block" } else { label }.to_string())
}

/// `line` with every run of more than [`BASE64_RUN`] base64 characters that mixes upper and
/// lower case letters and digits (encoded bytes; a path or a name rarely does) as `[…]`.
fn elide_base64(line: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_');
    let encoded = |run: &str| {
        run.chars().count() > BASE64_RUN
            && run.chars().any(|c| c.is_ascii_uppercase())
            && run.chars().any(|c| c.is_ascii_lowercase())
            && run.chars().any(|c| c.is_ascii_digit())
    };
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if encoded(run) {
            out.push_str("[…]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in line.chars() {
        if is_b64(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        Tally::new([
            ("host.10.0.0.2", Some("10.0.0.2")),
            ("host.10.0.0.3", Some("10.0.0.3")),
            ("kubernetes.init", Some("10.0.0.2")),
            ("kubernetes.join.10.0.0.3", Some("10.0.0.3")),
            ("app.calico", None),
        ])
    }

    #[test]
    fn the_overall_line_counts_finished_steps_and_names_what_each_host_runs() {
        let mut t = tally();
        assert_eq!(
            t.line(Duration::ZERO, 100),
            "[0/5] 0s · 10.0.0.2 idle · 10.0.0.3 idle"
        );
        t.started("host.10.0.0.2", Some("10.0.0.2"));
        t.started("host.10.0.0.3", Some("10.0.0.3"));
        t.done("host.10.0.0.2", Some("10.0.0.2"), 1.5);
        t.started("kubernetes.init", Some("10.0.0.2"));
        assert_eq!(
            t.line(Duration::from_secs(63), 100),
            "[1/5] 1m03s · 10.0.0.2 kubernetes.init · 10.0.0.3 host.10.0.0.3"
        );
        t.failed("host.10.0.0.3", Some("10.0.0.3"));
        t.skipped("kubernetes.join.10.0.0.3");
        assert_eq!(
            t.line(Duration::from_secs(3725), 100),
            "[3/5, 1 failed] 1h02m · 10.0.0.2 kubernetes.init · 10.0.0.3 idle"
        );
    }

    #[test]
    fn many_hosts_show_the_busy_ones_then_a_count_within_the_width() {
        let names: Vec<String> = (1..=40).map(|i| format!("10.0.0.{i}")).collect();
        let steps: Vec<String> = names.iter().map(|h| format!("host.{h}")).collect();
        let mut t = Tally::new(
            steps
                .iter()
                .zip(&names)
                .map(|(s, h)| (s.as_str(), Some(h.as_str()))),
        );
        for i in 0..3 {
            t.started(&steps[i], Some(&names[i]));
        }
        assert_eq!(
            t.line(Duration::from_secs(5), 200),
            "[0/40] 5s · 10.0.0.1 host.10.0.0.1 · 10.0.0.2 host.10.0.0.2 · 10.0.0.3 host.10.0.0.3 · 37 idle"
        );
        let narrow = t.line(Duration::from_secs(5), 60);
        assert_eq!(narrow, "[0/40] 5s · 10.0.0.1 host.10.0.0.1 · +3 more");
        assert!(narrow.chars().count() <= 60);
        assert!(t.line(Duration::from_secs(5), 8).chars().count() <= 8);
    }

    #[test]
    fn the_closing_table_has_a_row_per_host_and_the_totals() {
        let mut t = tally();
        t.started("host.10.0.0.2", Some("10.0.0.2"));
        t.done("host.10.0.0.2", Some("10.0.0.2"), 1.2);
        t.done("kubernetes.init", Some("10.0.0.2"), 61.0);
        t.failed("host.10.0.0.3", Some("10.0.0.3"));
        t.skipped("kubernetes.join.10.0.0.3");
        t.skipped("app.calico");
        assert_eq!(
            t.table(Duration::from_secs(75)),
            "HOST      DONE  FAILED  SKIPPED  TIME\n\
             -            0       0        1  0s\n\
             10.0.0.2     2       0        0  1m02s\n\
             10.0.0.3     0       1        1  0s\n\
             all          2       1        2  1m15s elapsed\n"
        );
    }

    #[test]
    fn a_spinner_never_shows_a_pem_body_nor_a_base64_blob() {
        let mut s = SpinnerText::default();
        assert_eq!(s.next("writing the CA").as_deref(), Some("writing the CA"));
        assert_eq!(
            s.next("-----BEGIN CERTIFICATE-----").as_deref(),
            Some("(certificate …)")
        );
        for body in [
            "MIIBkTCB+wIJAKHBfpegPjMCMA0GCSqGSIb3DQEBCwUAMBExDzANBgNVBAMMBnVu",
            "dXNlZDAeFw0=",
            "",
        ] {
            assert_eq!(s.next(body), None, "{body}");
        }
        assert_eq!(
            s.next("-----END CERTIFICATE-----").as_deref(),
            Some("(certificate received)")
        );
        assert_eq!(
            s.next("-----BEGIN RSA PRIVATE KEY-----").as_deref(),
            Some("(rsa private key …)")
        );
        assert_eq!(s.next("c2VjcmV0"), None);
        assert_eq!(
            s.next("-----END RSA PRIVATE KEY-----").as_deref(),
            Some("(rsa private key received)")
        );
        // Outside a PEM block: a bare base64 line is skipped, an embedded one elided.
        assert_eq!(
            s.next("TUlJQmtUQ0Ird0lKQUtIQmZwZWdQak1DTUEwR0NTcUdTSWIzRFFFQkN3VUFNQkV4RHpB"),
            None
        );
        assert_eq!(
            s.next("    certificate-authority-data: TUlJQmtUQ0Ird0lKQUtIQmZwZWdQak1DTUEwR0NTcUdT")
                .as_deref(),
            Some("certificate-authority-data: […]")
        );
        assert_eq!(s.next("   ").as_deref(), None);
        let long = "x ".repeat(100);
        assert_eq!(s.next(&long).unwrap().chars().count(), SPINNER_CHARS);
        // Short words and paths stay as they are.
        assert_eq!(
            s.next("copied /var/lib/sealer/data/quickstart/rootfs/scripts/init-kube.sh")
                .as_deref(),
            Some("copied /var/lib/sealer/data/quickstart/rootfs/scripts/init-kube.sh")
        );
        assert_eq!(
            s.next("[init] Using Kubernetes version: v1.22.15")
                .as_deref(),
            Some("[init] Using Kubernetes version: v1.22.15")
        );
    }

    #[test]
    fn clocks_read_like_clocks() {
        assert_eq!(clock(Duration::from_millis(4900)), "4s");
        assert_eq!(clock(Duration::from_secs(60)), "1m00s");
        assert_eq!(clock(Duration::from_secs(7260)), "2h01m");
    }
}
