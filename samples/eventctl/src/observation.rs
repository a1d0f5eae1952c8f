//! What a user observes of a run, and how `eventctl run` prints it.
//!
//! A backend reports [`Observation`]s in the order they happened; the printers sort them by
//! virtual time, stably, so ties stay in that order (`shared/design/scenarios.md`, "Output").
//! `--json` prints the contract's JSON Lines byte for byte; without it the same facts print as an
//! aligned table.

use std::fmt;
use std::fmt::Write as _;

/// An NTSTATUS as the client sees it in `IoStatus.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NtStatus(pub i32);

impl NtStatus {
    /// `STATUS_SUCCESS`.
    pub const SUCCESS: NtStatus = NtStatus(0);
    /// `STATUS_PENDING`.
    pub const PENDING: NtStatus = NtStatus(0x0000_0103);
    /// `STATUS_NOT_IMPLEMENTED`.
    pub const NOT_IMPLEMENTED: NtStatus = NtStatus(0xC000_0002_u32 as i32);
    /// `STATUS_INVALID_HANDLE`.
    pub const INVALID_HANDLE: NtStatus = NtStatus(0xC000_0008_u32 as i32);
    /// `STATUS_INVALID_PARAMETER`.
    pub const INVALID_PARAMETER: NtStatus = NtStatus(0xC000_000D_u32 as i32);
    /// `STATUS_INVALID_DEVICE_REQUEST`.
    pub const INVALID_DEVICE_REQUEST: NtStatus = NtStatus(0xC000_0010_u32 as i32);
    /// `STATUS_ACCESS_DENIED`.
    pub const ACCESS_DENIED: NtStatus = NtStatus(0xC000_0022_u32 as i32);
    /// `STATUS_OBJECT_TYPE_MISMATCH`.
    pub const OBJECT_TYPE_MISMATCH: NtStatus = NtStatus(0xC000_0024_u32 as i32);
    /// `STATUS_DELETE_PENDING`.
    pub const DELETE_PENDING: NtStatus = NtStatus(0xC000_0056_u32 as i32);
    /// `STATUS_INSUFFICIENT_RESOURCES`.
    pub const INSUFFICIENT_RESOURCES: NtStatus = NtStatus(0xC000_009A_u32 as i32);
    /// `STATUS_CANCELLED`.
    pub const CANCELLED: NtStatus = NtStatus(0xC000_0120_u32 as i32);

    /// The statuses `eventctl` prints by name; the values match `ntsim::ntdef::status`.
    const NAMES: &'static [(NtStatus, &'static str)] = &[
        (NtStatus::SUCCESS, "STATUS_SUCCESS"),
        (NtStatus::CANCELLED, "STATUS_CANCELLED"),
        (NtStatus::INVALID_PARAMETER, "STATUS_INVALID_PARAMETER"),
        (NtStatus::NOT_IMPLEMENTED, "STATUS_NOT_IMPLEMENTED"),
        (NtStatus::INVALID_HANDLE, "STATUS_INVALID_HANDLE"),
        (
            NtStatus::OBJECT_TYPE_MISMATCH,
            "STATUS_OBJECT_TYPE_MISMATCH",
        ),
        (
            NtStatus::INSUFFICIENT_RESOURCES,
            "STATUS_INSUFFICIENT_RESOURCES",
        ),
        (NtStatus::DELETE_PENDING, "STATUS_DELETE_PENDING"),
        (NtStatus::ACCESS_DENIED, "STATUS_ACCESS_DENIED"),
        (
            NtStatus::INVALID_DEVICE_REQUEST,
            "STATUS_INVALID_DEVICE_REQUEST",
        ),
        (NtStatus::PENDING, "STATUS_PENDING"),
    ];

    /// The status's name if it is one of the few `eventctl` knows.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .find(|(status, _)| *status == self)
            .map(|(_, name)| *name)
    }

    /// How the summary counts a completion with this status.
    pub fn outcome(self) -> Outcome {
        match self {
            NtStatus::SUCCESS => Outcome::Success,
            NtStatus::CANCELLED => Outcome::Cancelled,
            _ => Outcome::Failed,
        }
    }
}

impl fmt::Display for NtStatus {
    /// The name (`STATUS_SUCCESS`), or `0xXXXXXXXX` for a status without one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "0x{:08X}", self.0 as u32),
        }
    }
}

/// The summary's classes of completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `STATUS_SUCCESS`.
    Success,
    /// `STATUS_CANCELLED`.
    Cancelled,
    /// Any other status.
    Failed,
}

impl Outcome {
    /// The timeline glyph: ✓ success, ✗ cancelled, ! failed.
    pub fn glyph(self) -> char {
        match self {
            Outcome::Success => '✓',
            Outcome::Cancelled => '✗',
            Outcome::Failed => '!',
        }
    }
}

/// One fact a user observes during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// A request completed (the IOCTL of `irp`, `event`, `badevent`, `raw` or `ioctl`).
    Completed {
        /// Virtual milliseconds from the start.
        t_ms: u64,
        /// The request's label (the event's label for an event-based registration).
        req: String,
        /// `IoStatus.Status`.
        status: NtStatus,
        /// `IoStatus.Information`.
        info: u64,
        /// Whether the dispatch routine returned `STATUS_PENDING` (false: completed
        /// synchronously).
        pending: bool,
    },
    /// A user event went from not signalled to signalled.
    Signalled {
        /// Virtual milliseconds from the start.
        t_ms: u64,
        /// The event's label.
        event: String,
    },
}

impl Observation {
    /// When it happened, in virtual milliseconds.
    pub fn t_ms(&self) -> u64 {
        match self {
            Observation::Completed { t_ms, .. } | Observation::Signalled { t_ms, .. } => *t_ms,
        }
    }

    /// The contract's JSON line (without the newline), e.g.
    /// `{"t":1000,"req":"r1","status":"STATUS_SUCCESS","info":0,"pending":true}`.
    pub fn to_json(&self) -> String {
        match self {
            Observation::Completed {
                t_ms,
                req,
                status,
                info,
                pending,
            } => format!(
                r#"{{"t":{t_ms},"req":{},"status":{},"info":{info},"pending":{pending}}}"#,
                json_string(req),
                json_string(&status.to_string()),
            ),
            Observation::Signalled { t_ms, event } => {
                format!(r#"{{"t":{t_ms},"event":{}}}"#, json_string(event))
            }
        }
    }
}

/// The last line of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The device's name (`startio`, `csq-serial`, `csq-concurrent`, or a device path).
    pub device: String,
    /// Completed requests.
    pub requests: u64,
    /// Completions with `STATUS_SUCCESS`.
    pub success: u64,
    /// Completions with `STATUS_CANCELLED`.
    pub cancelled: u64,
    /// Completions with any other status.
    pub failed: u64,
    /// Verifier reports.
    pub violations: u64,
    /// IRPs, timers, DPCs, threads, records or object references left after unload.
    pub leaks: u64,
}

impl Summary {
    /// Counts the completions among `observations`.
    pub fn new(device: &str, observations: &[Observation], violations: u64, leaks: u64) -> Self {
        let mut summary = Summary {
            device: device.to_owned(),
            requests: 0,
            success: 0,
            cancelled: 0,
            failed: 0,
            violations,
            leaks,
        };
        for observation in observations {
            if let Observation::Completed { status, .. } = observation {
                summary.requests += 1;
                match status.outcome() {
                    Outcome::Success => summary.success += 1,
                    Outcome::Cancelled => summary.cancelled += 1,
                    Outcome::Failed => summary.failed += 1,
                }
            }
        }
        summary
    }

    /// Whether the run left no violation and no leak (exit status 0 rather than 3).
    pub fn is_clean(&self) -> bool {
        self.violations == 0 && self.leaks == 0
    }

    /// The contract's summary line (without the newline).
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"summary":{{"device":{},"requests":{},"success":{},"cancelled":{},"failed":{},"violations":{},"leaks":{}}}}}"#,
            json_string(&self.device),
            self.requests,
            self.success,
            self.cancelled,
            self.failed,
            self.violations,
            self.leaks
        )
    }

    /// One sentence for people: `startio: 3 requests (2 success, 1 cancelled, 0 failed), 0
    /// violations, 0 leaks`.
    pub fn sentence(&self) -> String {
        format!(
            "{}: {} requests ({} success, {} cancelled, {} failed), {} violations, {} leaks",
            self.device,
            self.requests,
            self.success,
            self.cancelled,
            self.failed,
            self.violations,
            self.leaks
        )
    }
}

/// The observations in print order: by virtual time, ties in the order they happened.
pub fn in_time_order(observations: &[Observation]) -> Vec<&Observation> {
    let mut sorted: Vec<&Observation> = observations.iter().collect();
    sorted.sort_by_key(|o| o.t_ms());
    sorted
}

/// The `--json` output: one line per observation in time order, then the summary; every line
/// ends with `\n`.
pub fn format_json(observations: &[Observation], summary: &Summary) -> String {
    let mut out = String::new();
    for observation in in_time_order(observations) {
        out.push_str(&observation.to_json());
        out.push('\n');
    }
    out.push_str(&summary.to_json());
    out.push('\n');
    out
}

/// The readable output: an aligned table of the same facts, the summary sentence, then the
/// verifier's reports if there are any.
pub fn format_table(observations: &[Observation], summary: &Summary, reports: &[String]) -> String {
    const HEADER: [&str; 6] = ["t (ms)", "label", "what", "status", "info", "pending"];
    let rows: Vec<[String; 6]> = in_time_order(observations)
        .into_iter()
        .map(|o| match o {
            Observation::Completed {
                t_ms,
                req,
                status,
                info,
                pending,
            } => [
                t_ms.to_string(),
                req.clone(),
                "completed".to_owned(),
                status.to_string(),
                info.to_string(),
                if *pending { "yes" } else { "no" }.to_owned(),
            ],
            Observation::Signalled { t_ms, event } => [
                t_ms.to_string(),
                event.clone(),
                "signalled".to_owned(),
                String::new(),
                String::new(),
                String::new(),
            ],
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: [&str; 6]| {
        let [t, label, what, status, info, pending] = cells;
        let line = format!(
            "{t:>w0$}  {label:<w1$}  {what:<w2$}  {status:<w3$}  {info:>w4$}  {pending}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row(HEADER);
    for row in &rows {
        push_row(row.each_ref().map(String::as_str));
    }
    out.push('\n');
    out.push_str(&summary.sentence());
    out.push('\n');
    if !reports.is_empty() {
        let _ = writeln!(out, "\nverifier reports:");
        for report in reports {
            let _ = writeln!(out, "  {report}");
        }
    }
    out
}

/// A JSON string literal. Labels never need escaping; device paths (`\\.\StartIoEvent`) do.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed(t_ms: u64, req: &str, status: NtStatus, pending: bool) -> Observation {
        Observation::Completed {
            t_ms,
            req: req.to_owned(),
            status,
            info: 0,
            pending,
        }
    }

    fn signalled(t_ms: u64, event: &str) -> Observation {
        Observation::Signalled {
            t_ms,
            event: event.to_owned(),
        }
    }

    #[test]
    fn completion_json_is_the_contract_example() {
        let o = completed(1000, "r1", NtStatus::SUCCESS, true);
        assert_eq!(
            o.to_json(),
            r#"{"t":1000,"req":"r1","status":"STATUS_SUCCESS","info":0,"pending":true}"#
        );
    }

    #[test]
    fn signal_json_is_the_contract_example() {
        assert_eq!(signalled(500, "e1").to_json(), r#"{"t":500,"event":"e1"}"#);
    }

    #[test]
    fn summary_json_is_the_contract_example() {
        let observations = [
            completed(1000, "r1", NtStatus::SUCCESS, true),
            completed(300, "r2", NtStatus::CANCELLED, true),
            completed(1500, "r3", NtStatus::SUCCESS, true),
        ];
        let summary = Summary::new("startio", &observations, 0, 0);
        assert_eq!(
            summary.to_json(),
            r#"{"summary":{"device":"startio","requests":3,"success":2,"cancelled":1,"failed":0,"violations":0,"leaks":0}}"#
        );
    }

    #[test]
    fn json_escapes_a_device_path() {
        let summary = Summary::new(r"\\.\StartIoEvent", &[], 1, 2);
        assert_eq!(
            summary.to_json(),
            r#"{"summary":{"device":"\\\\.\\StartIoEvent","requests":0,"success":0,"cancelled":0,"failed":0,"violations":1,"leaks":2}}"#
        );
    }

    #[test]
    fn json_prints_info_pending_false_and_unnamed_status() {
        let o = Observation::Completed {
            t_ms: 0,
            req: "x".into(),
            status: NtStatus(0xC000_0001_u32 as i32),
            info: 24,
            pending: false,
        };
        assert_eq!(
            o.to_json(),
            r#"{"t":0,"req":"x","status":"0xC0000001","info":24,"pending":false}"#
        );
    }

    #[test]
    fn every_named_status_prints_its_name() {
        let expected = [
            (0x0000_0000_u32, "STATUS_SUCCESS"),
            (0xC000_0120, "STATUS_CANCELLED"),
            (0xC000_000D, "STATUS_INVALID_PARAMETER"),
            (0xC000_0002, "STATUS_NOT_IMPLEMENTED"),
            (0xC000_0008, "STATUS_INVALID_HANDLE"),
            (0xC000_0024, "STATUS_OBJECT_TYPE_MISMATCH"),
            (0xC000_009A, "STATUS_INSUFFICIENT_RESOURCES"),
            (0xC000_0056, "STATUS_DELETE_PENDING"),
            (0xC000_0022, "STATUS_ACCESS_DENIED"),
            (0xC000_0010, "STATUS_INVALID_DEVICE_REQUEST"),
            (0x0000_0103, "STATUS_PENDING"),
            (0x8000_0005, "0x80000005"),
            (0x0000_0001, "0x00000001"),
        ];
        for (value, name) in expected {
            assert_eq!(NtStatus(value as i32).to_string(), name);
        }
    }

    #[test]
    fn summary_counts_success_cancelled_and_everything_else_as_failed() {
        let observations = [
            completed(0, "a", NtStatus::SUCCESS, false),
            completed(0, "b", NtStatus::CANCELLED, true),
            completed(0, "c", NtStatus::INVALID_PARAMETER, false),
            completed(0, "d", NtStatus::PENDING, false),
            signalled(5, "e"),
        ];
        let s = Summary::new("csq-concurrent", &observations, 0, 0);
        assert_eq!((s.requests, s.success, s.cancelled, s.failed), (4, 1, 1, 2));
        assert!(s.is_clean());
        assert!(!Summary::new("x", &[], 0, 1).is_clean());
        assert!(!Summary::new("x", &[], 1, 0).is_clean());
    }

    #[test]
    fn json_output_sorts_by_time_keeping_ties_in_order() {
        let observations = [
            completed(1000, "r1", NtStatus::SUCCESS, true),
            signalled(500, "e1"),
            completed(500, "r3", NtStatus::CANCELLED, true),
            completed(0, "e1", NtStatus::SUCCESS, false),
        ];
        let summary = Summary::new("csq-concurrent", &observations, 0, 0);
        let expected = concat!(
            r#"{"t":0,"req":"e1","status":"STATUS_SUCCESS","info":0,"pending":false}"#,
            "\n",
            r#"{"t":500,"event":"e1"}"#,
            "\n",
            r#"{"t":500,"req":"r3","status":"STATUS_CANCELLED","info":0,"pending":true}"#,
            "\n",
            r#"{"t":1000,"req":"r1","status":"STATUS_SUCCESS","info":0,"pending":true}"#,
            "\n",
            r#"{"summary":{"device":"csq-concurrent","requests":3,"success":2,"cancelled":1,"failed":0,"violations":0,"leaks":0}}"#,
            "\n",
        );
        assert_eq!(format_json(&observations, &summary), expected);
    }

    #[test]
    fn table_aligns_the_same_facts() {
        let observations = [
            completed(1000, "r1", NtStatus::SUCCESS, true),
            signalled(950, "event-one"),
            completed(250, "event-one", NtStatus::SUCCESS, false),
        ];
        let summary = Summary::new("startio", &observations, 0, 0);
        let table = format_table(&observations, &summary, &[]);
        let expected = "\
t (ms)  label      what       status          info  pending
   250  event-one  completed  STATUS_SUCCESS     0  no
   950  event-one  signalled
  1000  r1         completed  STATUS_SUCCESS     0  yes

startio: 2 requests (2 success, 0 cancelled, 0 failed), 0 violations, 0 leaks
";
        assert_eq!(table, expected);
    }

    #[test]
    fn table_lists_verifier_reports() {
        let summary = Summary::new("startio", &[], 1, 0);
        let table = format_table(&[], &summary, &["C7: IRP completed twice".to_owned()]);
        assert!(table.ends_with("verifier reports:\n  C7: IRP completed twice\n"));
    }
}
