//! The demo's picture: one script run on several devices, drawn as a timeline a person reads at a
//! glance — in the terminal ([`Timeline::render_text`]) and as a standalone SVG
//! ([`Timeline::render_svg`], plain string building, no dependency).
//!
//! One lane per device, one row per request: a bar from submission to completion ending in the
//! outcome's glyph (✓ success, ✗ cancelled, ! failed); an event-based registration completes at
//! once (its glyph at submission) and then waits, dotted, for its signal (◆).

use std::fmt::Write as _;

use crate::backend::RunResult;
use crate::observation::{Observation, Outcome, Summary};
use crate::script::{ActionKind, Script};

/// One device's run of the script.
#[derive(Clone, Copy, Debug)]
pub struct Lane<'a> {
    /// The device's name (`startio`, ...).
    pub device: &'a str,
    /// What the run produced.
    pub result: &'a RunResult,
}

/// A request as the timeline draws it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    label: String,
    handle: String,
    submit_ms: u64,
    /// When and how it completed; `None` if the run never completed it.
    done: Option<(u64, Outcome)>,
    /// For an event-based registration: when the event is due, and when the signal came.
    event: Option<EventRow>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct EventRow {
    /// Submission + due, or the close of its handle if that comes first.
    wait_until_ms: u64,
    due_at_ms: u64,
    signal_ms: Option<u64>,
}

#[derive(Clone, Debug)]
struct LaneModel {
    device: String,
    rows: Vec<Row>,
    summary: Summary,
}

/// The timeline of one script on several devices, ready to draw.
#[derive(Clone, Debug)]
pub struct Timeline {
    title: String,
    end_ms: u64,
    lanes: Vec<LaneModel>,
}

/// What a device is, in a few words, for the lane header.
pub fn device_blurb(device: &str) -> &'static str {
    match device {
        "startio" => "model S, IoStartPacket/StartIo",
        "csq-serial" => "model S, csq SerialWorker",
        "csq-concurrent" => "model C, cancel-safe queue",
        _ => "installed driver",
    }
}

const LEGEND: [&str; 6] = [
    "━ pending",
    "✓ success",
    "✗ cancelled",
    "! failed",
    "┄ event armed",
    "◆ event signalled",
];

impl Timeline {
    /// Lays out `lanes`, each a run of `script`.
    pub fn build(title: &str, script: &Script, lanes: &[Lane<'_>]) -> Timeline {
        let end_of_script = script.actions.last().map_or(0, |a| a.at_ms);
        let mut end_ms = end_of_script;
        let lanes = lanes
            .iter()
            .map(|lane| {
                let rows = rows_of(script, lane.result);
                for o in &lane.result.observations {
                    end_ms = end_ms.max(o.t_ms());
                }
                LaneModel {
                    device: lane.device.to_owned(),
                    rows,
                    summary: lane.result.summary(lane.device),
                }
            })
            .collect();
        Timeline {
            title: title.to_owned(),
            end_ms: end_ms.max(1),
            lanes,
        }
    }

    /// The timeline for a terminal `width` columns wide (at least 40 are used); every line fits.
    pub fn render_text(&self, width: usize) -> String {
        let width = width.max(40);
        let label_w = self.column_width(|r| &r.label);
        let handle_w = self.column_width(|r| &r.handle);
        let prefix_w = 2 + label_w + 1 + handle_w + 2;
        let axis_w = width.saturating_sub(prefix_w + 1).max(10);
        let scale = Scale {
            end_ms: self.end_ms,
            cols: axis_w,
        };
        let pad = " ".repeat(prefix_w);
        let mut out = String::new();
        push_fitted(&mut out, &format!("{} (time in ms)", self.title), width);
        let ticks = scale.ticks();
        let mut labels = vec![' '; axis_w + 8];
        let mut ruler = vec!['─'; axis_w];
        let mut free_from = 0;
        for &t in &ticks {
            let col = scale.col(t);
            ruler[col] = '┬';
            let text = t.to_string();
            // Right-align the last labels so they do not run past the axis.
            let start = col.min(axis_w.saturating_sub(text.len()));
            if start >= free_from {
                for (i, c) in text.chars().enumerate() {
                    labels[start + i] = c;
                }
                free_from = start + text.len() + 1;
            }
        }
        push_fitted(
            &mut out,
            &format!("{pad}{}", String::from_iter(labels)),
            width,
        );
        push_fitted(
            &mut out,
            &format!("{pad}{}", String::from_iter(ruler)),
            width,
        );
        for lane in &self.lanes {
            out.push('\n');
            push_fitted(
                &mut out,
                &format!("{} ({})", lane.device, device_blurb(&lane.device)),
                width,
            );
            for row in &lane.rows {
                let bar = String::from_iter(draw_row(row, &scale));
                let line = format!(
                    "  {:<label_w$} {:<handle_w$}  {}",
                    truncate(&row.label, label_w),
                    truncate(&row.handle, handle_w),
                    bar
                );
                push_fitted(&mut out, &line, width);
            }
            let s = &lane.summary;
            push_fitted(
                &mut out,
                &format!(
                    "  {} requests: {} ✓  {} ✗  {} !   violations {}  leaks {}",
                    s.requests, s.success, s.cancelled, s.failed, s.violations, s.leaks
                ),
                width,
            );
        }
        out.push('\n');
        // The legend, wrapped to the width.
        let mut line = String::new();
        for item in LEGEND {
            if !line.is_empty() && line.chars().count() + 2 + item.chars().count() > width {
                push_fitted(&mut out, &line, width);
                line.clear();
            }
            if !line.is_empty() {
                line.push_str("  ");
            }
            line.push_str(item);
        }
        push_fitted(&mut out, &line, width);
        out
    }

    /// The same timeline as a standalone SVG document.
    pub fn render_svg(&self) -> String {
        const WIDTH: f64 = 960.0;
        const LEFT: f64 = 150.0;
        const RIGHT: f64 = 40.0;
        const TOP: f64 = 70.0;
        const ROW_H: f64 = 22.0;
        const LANE_HEAD: f64 = 28.0;
        const LANE_GAP: f64 = 14.0;
        const LEGEND_H: f64 = 50.0;

        let rows: usize = self.lanes.iter().map(|l| l.rows.len()).sum();
        let height =
            TOP + self.lanes.len() as f64 * (LANE_HEAD + LANE_GAP) + rows as f64 * ROW_H + LEGEND_H;
        let span = WIDTH - LEFT - RIGHT;
        let x = |t: u64| LEFT + span * t as f64 / self.end_ms as f64;

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="12">"#
        );
        let _ = writeln!(svg, "<title>{}</title>", xml(&self.title));
        let _ = writeln!(
            svg,
            r##"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="12" y="24" font-size="15" font-weight="bold">{} (time in ms)</text>"#,
            xml(&self.title)
        );

        // The axis: a tick, a label and a faint grid line per step.
        let scale = Scale {
            end_ms: self.end_ms,
            cols: 80,
        };
        let _ = writeln!(svg, r#"<g class="axis">"#);
        let axis_y = TOP - 18.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#555555"/>"##,
            LEFT + span
        );
        for t in scale.ticks() {
            let tx = x(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{tx:.1}" y1="{}" x2="{tx:.1}" y2="{}" stroke="#e0e0e0"/>"##,
                axis_y,
                height - LEGEND_H
            );
            let _ = writeln!(
                svg,
                r##"<text x="{tx:.1}" y="{}" text-anchor="middle" fill="#333333">{t} ms</text>"##,
                axis_y - 6.0
            );
        }
        let _ = writeln!(svg, "</g>");

        let mut y = TOP;
        for lane in &self.lanes {
            let s = &lane.summary;
            let _ = writeln!(svg, r#"<g class="lane">"#);
            let _ = writeln!(
                svg,
                r#"<text x="12" y="{:.1}" font-weight="bold">{} <tspan font-weight="normal">({})  {} requests: {} success, {} cancelled, {} failed; {} violations, {} leaks</tspan></text>"#,
                y + 16.0,
                xml(&lane.device),
                xml(device_blurb(&lane.device)),
                s.requests,
                s.success,
                s.cancelled,
                s.failed,
                s.violations,
                s.leaks
            );
            y += LANE_HEAD;
            for row in &lane.rows {
                let mid = y + ROW_H / 2.0;
                let _ = writeln!(
                    svg,
                    r##"<text x="24" y="{:.1}" fill="#222222">{} <tspan fill="#888888">{}</tspan></text>"##,
                    mid + 4.0,
                    xml(&row.label),
                    xml(&row.handle)
                );
                let (end_ms, outcome) = match row.done {
                    Some((t, o)) => (t, Some(o)),
                    None => (self.end_ms, None),
                };
                let colour = outcome.map_or("#9e9e9e", colour_of);
                let x0 = x(row.submit_ms);
                let w = (x(end_ms) - x0).max(3.0);
                let _ = writeln!(
                    svg,
                    r#"<rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="12" rx="2" fill="{colour}"/>"#,
                    mid - 6.0
                );
                if let Some(o) = outcome {
                    let _ = writeln!(
                        svg,
                        r#"<text x="{:.1}" y="{:.1}" fill="{colour}" font-weight="bold">{}</text>"#,
                        x0 + w + 3.0,
                        mid + 4.0,
                        o.glyph()
                    );
                }
                if let Some(ev) = &row.event {
                    let from = x0 + w + 12.0;
                    let until = ev.signal_ms.unwrap_or(ev.wait_until_ms);
                    let to = x(until).max(from);
                    let _ = writeln!(
                        svg,
                        r##"<line x1="{from:.1}" y1="{mid:.1}" x2="{to:.1}" y2="{mid:.1}" stroke="#1565c0" stroke-dasharray="4 3"/>"##
                    );
                    if let Some(t) = ev.signal_ms {
                        let sx = x(t).max(from);
                        let _ = writeln!(
                            svg,
                            r##"<polygon points="{:.1},{mid:.1} {sx:.1},{:.1} {:.1},{mid:.1} {sx:.1},{:.1}" fill="#1565c0"/>"##,
                            sx - 6.0,
                            mid - 6.0,
                            sx + 6.0,
                            mid + 6.0
                        );
                    }
                }
                y += ROW_H;
            }
            let _ = writeln!(svg, "</g>");
            y += LANE_GAP;
        }

        // The legend.
        let ly = height - LEGEND_H + 28.0;
        let _ = writeln!(svg, r#"<g class="legend">"#);
        let items = [
            ("#2e7d32", "✓ success"),
            ("#ef6c00", "✗ cancelled"),
            ("#c62828", "! failed"),
            ("#9e9e9e", "not completed"),
        ];
        let mut lx = 12.0;
        for (colour, text) in items {
            let _ = writeln!(
                svg,
                r#"<rect x="{lx}" y="{}" width="14" height="10" rx="2" fill="{colour}"/><text x="{}" y="{ly}">{}</text>"#,
                ly - 9.0,
                lx + 20.0,
                xml(text)
            );
            lx += 150.0;
        }
        let _ = writeln!(
            svg,
            r##"<polygon points="{lx},{y0} {x1},{y1} {x2},{y0} {x1},{y2}" fill="#1565c0"/><text x="{}" y="{ly}">◆ event signalled (┄ armed)</text>"##,
            lx + 20.0,
            y0 = ly - 4.0,
            x1 = lx + 6.0,
            y1 = ly - 10.0,
            x2 = lx + 12.0,
            y2 = ly + 2.0
        );
        let _ = writeln!(svg, "</g>");
        svg.push_str("</svg>\n");
        svg
    }

    fn column_width(&self, field: impl Fn(&Row) -> &String) -> usize {
        self.lanes
            .iter()
            .flat_map(|l| &l.rows)
            .map(|r| field(r).chars().count())
            .max()
            .unwrap_or(1)
            .clamp(1, 12)
    }
}

fn colour_of(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "#2e7d32",
        Outcome::Cancelled => "#ef6c00",
        Outcome::Failed => "#c62828",
    }
}

/// Virtual time to terminal columns.
struct Scale {
    end_ms: u64,
    cols: usize,
}

impl Scale {
    fn col(&self, t: u64) -> usize {
        // u128: a script may run to u64::MAX milliseconds.
        let last = (self.cols - 1) as u128;
        let (t, end) = (t.min(self.end_ms) as u128, self.end_ms as u128);
        ((t * last + end / 2) / end) as usize
    }

    /// Round tick times (1, 2, 2.5 or 5 times a power of ten) spaced so that their labels fit.
    fn ticks(&self) -> Vec<u64> {
        // u128 throughout: a script may run to u64::MAX milliseconds.
        let end = u128::from(self.end_ms);
        let label = self.end_ms.to_string().len() as u128 + 2;
        let cols = (self.cols as u128).saturating_sub(1).max(1);
        let mut step = end.max(1);
        'search: for power in 0..20 {
            let base = 10u128.pow(power);
            for m in [10, 20, 25, 50] {
                let candidate = base * m / 10;
                if m == 25 && base < 10 {
                    continue;
                }
                // Columns per step >= label width.
                if candidate * cols >= label * end {
                    step = candidate;
                    break 'search;
                }
            }
        }
        (0..=end / step)
            .filter_map(|i| u64::try_from(i * step).ok())
            .collect()
    }
}

fn draw_row(row: &Row, scale: &Scale) -> Vec<char> {
    let mut cells = vec![' '; scale.cols];
    let start = scale.col(row.submit_ms);
    let (end, glyph) = match row.done {
        Some((t, outcome)) => (scale.col(t), outcome.glyph()),
        None => (scale.cols - 1, '…'),
    };
    // A backend reporting a completion before the submission is wrong, but the picture must not
    // panic over it: such a bar is just its glyph.
    let end = end.max(start);
    for cell in &mut cells[start..end] {
        *cell = '━';
    }
    cells[end] = glyph;
    if let Some(ev) = &row.event {
        let (stop, marker) = match ev.signal_ms {
            Some(t) => (scale.col(t), Some('◆')),
            None => (scale.col(ev.wait_until_ms), None),
        };
        if end + 1 < scale.cols {
            let stop = stop.clamp(end + 1, scale.cols - 1);
            for cell in &mut cells[end + 1..stop] {
                *cell = '┄';
            }
            cells[stop] = marker.unwrap_or('┄');
        }
    }
    cells
}

/// The rows of one run: one per submitting action, in run order, matched with its completion and,
/// for an event registration, its signal.
fn rows_of(script: &Script, result: &RunResult) -> Vec<Row> {
    let end_ms = script.actions.last().map_or(0, |a| a.at_ms);
    let mut rows: Vec<Row> = Vec::new();
    for (index, action) in script.actions.iter().enumerate() {
        let Some((label, handle)) = action.kind.submits() else {
            continue;
        };
        let event = match &action.kind {
            ActionKind::Event { due_ms, .. } => {
                let due_at_ms = action.at_ms.saturating_add(*due_ms);
                // Closing the handle drops the registration unsignalled.
                let closed_at = script.actions[index..]
                    .iter()
                    .find(|a| matches!(&a.kind, ActionKind::Close { handle: h } if h == handle))
                    .map_or(end_ms, |a| a.at_ms);
                Some(EventRow {
                    wait_until_ms: due_at_ms.min(closed_at),
                    due_at_ms,
                    signal_ms: None,
                })
            }
            _ => None,
        };
        rows.push(Row {
            label: label.to_string(),
            handle: handle.to_string(),
            submit_ms: action.at_ms,
            done: None,
            event,
        });
    }
    for observation in &result.observations {
        match observation {
            Observation::Completed {
                t_ms, req, status, ..
            } => {
                // The k-th completion of a label belongs to its k-th submission.
                if let Some(row) = rows
                    .iter_mut()
                    .find(|r| r.label == *req && r.done.is_none())
                {
                    row.done = Some((*t_ms, status.outcome()));
                }
            }
            Observation::Signalled { t_ms, event } => {
                // A re-registered event: the signal belongs to the registration due closest to it.
                let row = rows
                    .iter_mut()
                    .filter(|r| r.label == *event && r.submit_ms <= *t_ms)
                    .filter(|r| r.event.as_ref().is_some_and(|e| e.signal_ms.is_none()))
                    .min_by_key(|r| {
                        r.event
                            .as_ref()
                            .map_or(u64::MAX, |e| e.due_at_ms.abs_diff(*t_ms))
                    });
                if let Some(ev) = row.and_then(|r| r.event.as_mut()) {
                    ev.signal_ms = Some(*t_ms);
                }
            }
        }
    }
    rows
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

fn push_fitted(out: &mut String, line: &str, width: usize) {
    out.push_str(truncate(line.trim_end(), width).as_str());
    out.push('\n');
}

/// Escapes text for XML content and attribute values.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, Model};
    use crate::fake::FakeBackend;
    use crate::script::parse;

    const DEMO: &str = include_str!("../scenarios/demo.evs");

    fn demo_timeline() -> Timeline {
        let script = parse(DEMO).unwrap();
        let devices = [
            ("startio", Model::Serialized),
            ("csq-serial", Model::Serialized),
            ("csq-concurrent", Model::Concurrent),
        ];
        let results: Vec<(&str, RunResult)> = devices
            .iter()
            .map(|(name, model)| (*name, FakeBackend::new(name, *model).run(&script).unwrap()))
            .collect();
        let lanes: Vec<Lane<'_>> = results
            .iter()
            .map(|(device, result)| Lane { device, result })
            .collect();
        Timeline::build("demo.evs", &script, &lanes)
    }

    #[test]
    fn text_has_a_lane_per_device_the_glyphs_and_the_legend() {
        let text = demo_timeline().render_text(100);
        for lane in [
            "startio (model S",
            "csq-serial (model S",
            "csq-concurrent (model C",
        ] {
            assert!(text.contains(lane), "no lane `{lane}` in\n{text}");
        }
        for glyph in ['✓', '✗', '◆', '┄', '━'] {
            assert!(text.contains(glyph), "no `{glyph}` in\n{text}");
        }
        assert!(text.contains("━ pending  ✓ success  ✗ cancelled  ! failed  ┄ event armed"));
        // Three IRP rows and one event row per lane.
        assert_eq!(text.lines().filter(|l| l.starts_with("  r1 ")).count(), 3);
        assert_eq!(text.lines().filter(|l| l.starts_with("  e1 ")).count(), 3);
    }

    #[test]
    fn text_fits_the_width() {
        let timeline = demo_timeline();
        for width in [40, 60, 80, 100, 160] {
            let text = timeline.render_text(width);
            assert!(
                text.contains("◆ event signalled"),
                "legend cut at {width}:\n{text}"
            );
            for line in text.lines() {
                assert!(
                    line.chars().count() <= width,
                    "line wider than {width}: `{line}`"
                );
            }
        }
    }

    #[test]
    fn text_draws_serialized_and_concurrent_differently() {
        let text = demo_timeline().render_text(100);
        let r3: Vec<&str> = text.lines().filter(|l| l.starts_with("  r3 ")).collect();
        assert_eq!(r3.len(), 3);
        assert_eq!(r3[0], r3[1], "startio and csq-serial draw alike");
        assert_ne!(r3[0], r3[2], "model C draws r3 differently");
        // Model C completes r3 (500 ms) successfully; model S cancels it at the close.
        assert!(r3[2].ends_with('✓'), "{}", r3[2]);
        assert!(r3[0].ends_with('✗'), "{}", r3[0]);
        // Model C's bar is the shorter.
        assert!(r3[2].chars().count() < r3[0].chars().count());
    }

    #[test]
    fn axis_starts_at_zero_and_places_bars_on_the_scale() {
        let script = parse("at 0 open h\nat 0 irp r h due=1000\nat 1000 end\n").unwrap();
        let result = FakeBackend::new("startio", Model::Serialized)
            .run(&script)
            .unwrap();
        let lanes = [Lane {
            device: "startio",
            result: &result,
        }];
        let text = Timeline::build("t", &script, &lanes).render_text(60);
        let lines: Vec<&str> = text.lines().collect();
        // Prefix: 2 + label 1 + 1 + handle 1 + 2 = 7 columns, axis 52 columns.
        assert_eq!(&lines[1][..8], "       0");
        assert!(lines[1].trim_end().ends_with("1000"), "{}", lines[1]);
        assert!(lines[2].starts_with("       ┬"));
        let bar = lines.iter().find(|l| l.starts_with("  r h")).unwrap();
        assert_eq!(bar.chars().count(), 7 + 52);
        assert!(bar.ends_with("━━✓"));
    }

    #[test]
    fn a_failed_request_gets_the_bang() {
        let script = parse("at 0 open h\nat 5 raw x h len=8\nat 10 end\n").unwrap();
        let result = FakeBackend::new("csq-serial", Model::Serialized)
            .run(&script)
            .unwrap();
        let lanes = [Lane {
            device: "csq-serial",
            result: &result,
        }];
        let text = Timeline::build("t", &script, &lanes).render_text(80);
        assert!(
            text.lines()
                .any(|l| l.starts_with("  x h") && l.ends_with('!')),
            "{text}"
        );
    }

    #[test]
    fn odd_backend_reports_do_not_panic() {
        use crate::observation::NtStatus;
        let script =
            parse("at 0 open h\nat 500 irp r h due=1\nat 1000 event e h due=0\nat 1000 end\n")
                .unwrap();
        let result = RunResult {
            observations: vec![
                // Before its submission, at the very end, and a stranger.
                Observation::Completed {
                    t_ms: 100,
                    req: "r".into(),
                    status: NtStatus::SUCCESS,
                    info: 0,
                    pending: true,
                },
                Observation::Completed {
                    t_ms: 1000,
                    req: "e".into(),
                    status: NtStatus::SUCCESS,
                    info: 0,
                    pending: false,
                },
                Observation::Signalled {
                    t_ms: 1000,
                    event: "e".into(),
                },
                Observation::Signalled {
                    t_ms: 5000,
                    event: "zz".into(),
                },
            ],
            ..RunResult::default()
        };
        let lanes = [Lane {
            device: "startio",
            result: &result,
        }];
        let timeline = Timeline::build("t", &script, &lanes);
        for width in [0, 40, 100] {
            let _ = timeline.render_text(width);
        }
        let _ = timeline.render_svg();
    }

    #[test]
    fn huge_times_do_not_overflow() {
        let script = parse(&format!("at 0 open h\nat {} end\n", u64::MAX)).unwrap();
        let result = RunResult::default();
        let lanes = [Lane {
            device: "startio",
            result: &result,
        }];
        let text = Timeline::build("t", &script, &lanes).render_text(100);
        assert!(text.lines().nth(1).unwrap().trim_start().starts_with('0'));
    }

    #[test]
    fn ticks_are_round_and_fit() {
        let scale = Scale {
            end_ms: 1600,
            cols: 80,
        };
        let ticks = scale.ticks();
        assert_eq!(ticks[0], 0);
        let step = ticks[1];
        assert!([100, 200, 250, 500].contains(&step), "step {step}");
        assert!(ticks.iter().all(|t| t % step == 0 && *t <= 1600));
    }

    /// A small well-formedness check: every tag closes in order, the root is `<svg ...>`, text
    /// has no stray `<` or `&`.
    fn check_well_formed(svg: &str) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg.trim();
        let mut root = None;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            if text.contains('>') {
                return Err(format!("stray `>` in text `{text}`"));
            }
            for (i, _) in text.match_indices('&') {
                let entity = &text[i..];
                if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| entity.starts_with(e))
                {
                    return Err(format!("bad entity in `{text}`"));
                }
            }
            if stack.is_empty() && root.is_some() {
                return Err("content after the root element".into());
            }
            let close = rest[open..].find('>').ok_or("unterminated tag")? + open;
            let tag = &rest[open + 1..close];
            if tag.contains('<') {
                return Err(format!("`<` inside tag `{tag}`"));
            }
            if tag.matches('"').count() % 2 != 0 {
                return Err(format!("unbalanced quotes in `{tag}`"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    other => return Err(format!("`</{name}>` closes {other:?}")),
                }
            } else {
                let name = tag
                    .trim_end_matches('/')
                    .split_whitespace()
                    .next()
                    .ok_or("empty tag")?
                    .to_owned();
                if root.is_none() {
                    root = Some(name.clone());
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        if !stack.is_empty() {
            return Err(format!("unclosed tags {stack:?}"));
        }
        if !rest.trim().is_empty() {
            return Err("text after the root element".into());
        }
        match root.as_deref() {
            Some("svg") => Ok(()),
            other => Err(format!("root is {other:?}")),
        }
    }

    #[test]
    fn svg_is_well_formed_with_lanes_bars_and_axis() {
        let svg = demo_timeline().render_svg();
        check_well_formed(&svg).unwrap();
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
        assert_eq!(svg.matches(r#"<g class="lane">"#).count(), 3);
        // Four rows per lane, each with a bar.
        assert_eq!(svg.matches(r#"rx="2" fill="#).count(), 3 * 4 + 4);
        for colour in ["#2e7d32", "#ef6c00"] {
            assert!(svg.contains(colour));
        }
        assert!(svg.contains(">0 ms</text>"));
        assert!(svg.contains("<polygon"));
    }

    #[test]
    fn svg_escapes_text() {
        let script = parse("at 0 end\n").unwrap();
        let result = RunResult::default();
        let lanes = [Lane {
            device: "a<b>&\"c\"",
            result: &result,
        }];
        let svg = Timeline::build("x & y", &script, &lanes).render_svg();
        check_well_formed(&svg).unwrap();
        assert!(svg.contains("a&lt;b&gt;&amp;&quot;c&quot;"));
    }

    #[test]
    fn the_checker_rejects_broken_documents() {
        assert!(check_well_formed("<svg><g></svg>").is_err());
        assert!(check_well_formed("<svg><g/></svg><x/>").is_err());
        assert!(check_well_formed("<html></html>").is_err());
        assert!(check_well_formed("<svg>a & b</svg>").is_err());
        assert!(check_well_formed(r#"<svg a="1></svg>"#).is_err());
        assert!(check_well_formed("<svg><g/></svg>").is_ok());
    }
}
