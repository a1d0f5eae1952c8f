//! `eventctl compare`: two runs of one script, side by side, and where they first differ.
//!
//! The runs are compared as *facts*, one line per observation in print order plus the summary
//! without the device name (the only field that must differ).

use std::fmt::Write as _;

use crate::backend::RunResult;
use crate::observation::{Observation, in_time_order};

/// The comparable lines of a run.
pub fn fact_lines(result: &RunResult) -> Vec<String> {
    let mut lines: Vec<String> = in_time_order(&result.observations)
        .into_iter()
        .map(|o| match o {
            Observation::Completed {
                t_ms,
                req,
                status,
                info,
                pending,
            } => format!(
                "{t_ms:>6} {req} {status} info={info} {}",
                if *pending { "pending" } else { "sync" }
            ),
            Observation::Signalled { t_ms, event } => format!("{t_ms:>6} {event} signalled"),
        })
        .collect();
    let s = result.summary("");
    lines.push(format!(
        "summary: {} requests, {} success, {} cancelled, {} failed, {} violations, {} leaks",
        s.requests, s.success, s.cancelled, s.failed, s.violations, s.leaks
    ));
    lines
}

/// The first line where two runs differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// 1-based line of the side-by-side listing.
    pub line: usize,
    /// The left run's line there, if it has one.
    pub left: Option<String>,
    /// The right run's line there, if it has one.
    pub right: Option<String>,
}

/// The outcome of a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    /// The side-by-side listing, ready to print, ending with a verdict line.
    pub text: String,
    /// The first difference, if any.
    pub first_difference: Option<Difference>,
}

/// Compares two runs named `left_name` and `right_name`.
pub fn compare(
    left_name: &str,
    left: &RunResult,
    right_name: &str,
    right: &RunResult,
) -> Comparison {
    let left_lines = fact_lines(left);
    let right_lines = fact_lines(right);
    let rows = left_lines.len().max(right_lines.len());
    let width = left_lines
        .iter()
        .map(|l| l.chars().count())
        .chain([left_name.len()])
        .max()
        .unwrap_or(0);
    let number_w = rows.to_string().len();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:>number_w$}  {left_name:<width$}   {right_name}",
        "#"
    );
    let mut first_difference = None;
    for i in 0..rows {
        let l = left_lines.get(i);
        let r = right_lines.get(i);
        let same = l == r;
        if !same && first_difference.is_none() {
            first_difference = Some(Difference {
                line: i + 1,
                left: l.cloned(),
                right: r.cloned(),
            });
        }
        let line = format!(
            "{:>number_w$}  {:<width$} {} {}",
            i + 1,
            l.map_or("", String::as_str),
            if same { '│' } else { '≠' },
            r.map_or("", String::as_str),
        );
        let _ = writeln!(text, "{}", line.trim_end());
    }
    text.push('\n');
    match &first_difference {
        None => {
            let _ = writeln!(
                text,
                "{left_name} and {right_name}: identical ({rows} lines)"
            );
        }
        Some(d) => {
            let show = |s: &Option<String>| {
                s.as_deref()
                    .map_or("(no line)".to_owned(), |s| format!("`{}`", s.trim_start()))
            };
            let _ = writeln!(
                text,
                "{left_name} and {right_name} differ; first difference on line {}: {left_name} {} vs {right_name} {}",
                d.line,
                show(&d.left),
                show(&d.right)
            );
        }
    }
    Comparison {
        text,
        first_difference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::NtStatus;

    fn run(observations: Vec<Observation>) -> RunResult {
        RunResult {
            observations,
            ..RunResult::default()
        }
    }

    fn done(t_ms: u64, req: &str, status: NtStatus) -> Observation {
        Observation::Completed {
            t_ms,
            req: req.to_owned(),
            status,
            info: 0,
            pending: true,
        }
    }

    #[test]
    fn identical_runs_have_no_difference() {
        let a = run(vec![done(1000, "r1", NtStatus::SUCCESS)]);
        let c = compare("startio", &a, "csq-serial", &a.clone());
        assert_eq!(c.first_difference, None);
        assert!(
            c.text
                .ends_with("startio and csq-serial: identical (2 lines)\n"),
            "{}",
            c.text
        );
        assert!(!c.text.contains('≠'));
    }

    #[test]
    fn reports_the_first_differing_line() {
        let a = run(vec![
            done(100, "r0", NtStatus::SUCCESS),
            done(1000, "r1", NtStatus::SUCCESS),
            done(1500, "r2", NtStatus::SUCCESS),
        ]);
        let b = run(vec![
            done(100, "r0", NtStatus::SUCCESS),
            done(500, "r2", NtStatus::SUCCESS),
            done(1000, "r1", NtStatus::SUCCESS),
        ]);
        let c = compare("startio", &a, "csq-concurrent", &b);
        let d = c.first_difference.unwrap();
        assert_eq!(d.line, 2);
        assert_eq!(
            d.left.as_deref(),
            Some("  1000 r1 STATUS_SUCCESS info=0 pending")
        );
        assert_eq!(
            d.right.as_deref(),
            Some("   500 r2 STATUS_SUCCESS info=0 pending")
        );
        assert!(c.text.contains(
            "first difference on line 2: startio `1000 r1 STATUS_SUCCESS info=0 pending` vs \
             csq-concurrent `500 r2 STATUS_SUCCESS info=0 pending`"
        ));
        let marked: Vec<&str> = c.text.lines().filter(|l| l.contains('≠')).collect();
        assert_eq!(marked.len(), 2);
        assert!(marked[0].starts_with("2  "));
    }

    #[test]
    fn a_missing_line_is_a_difference() {
        let a = run(vec![done(100, "r0", NtStatus::SUCCESS)]);
        let b = run(vec![]);
        let c = compare("startio", &a, "csq-serial", &b);
        let d = c.first_difference.unwrap();
        assert_eq!(d.line, 1);
        assert_eq!(
            d.right.as_deref(),
            Some("summary: 0 requests, 0 success, 0 cancelled, 0 failed, 0 violations, 0 leaks")
        );
        // Line 2 exists only on the left.
        assert!(
            c.text
                .lines()
                .any(|l| l.starts_with("2  summary") && l.ends_with('≠')),
            "{}",
            c.text
        );
    }

    #[test]
    fn violations_are_part_of_the_comparison() {
        let a = run(vec![]);
        let mut b = run(vec![]);
        b.violations = 1;
        let d = compare("startio", &a, "csq-serial", &b)
            .first_difference
            .unwrap();
        assert_eq!(d.line, 1);
    }
}
