//! Scenario scripts: the parser of `eventctl`'s input.
//!
//! The grammar and its semantics are the contract in `shared/design/scenarios.md` ("Input"):
//! one `at <ms> <verb> <args>` per line, `#` comments, blank lines ignored. [`parse`] checks
//! everything that can be checked without a device — syntax, arguments, numbers, and the life of
//! every label — so that a backend only ever sees a well-formed [`Script`] whose actions are
//! already in the order they run.
//!
//! Labels live in one namespace: the completion of an event-based registration is reported under
//! the event's label, so an event and a request cannot share a name. A label's kind (handle,
//! request, event) is fixed by the action that creates it.

use std::collections::HashMap;
use std::fmt;

/// `IOCTL_REGISTER_EVENT` = `CTL_CODE(FILE_DEVICE_UNKNOWN, 0x800, METHOD_BUFFERED,
/// FILE_ANY_ACCESS)`: the event sample's only IOCTL.
pub const IOCTL_REGISTER_EVENT: u32 = 0x0022_2000;

/// Size in bytes of `REGISTER_EVENT` on x64: `u32 Type` at 0, `HANDLE hEvent` at 8, `i64 DueTime`
/// at 16. Shorter inputs are invalid; longer ones are accepted.
pub const REGISTER_EVENT_SIZE: u32 = 24;

/// A parsed script: its actions in the order they run (by time, ties in file order). The last
/// action is always [`ActionKind::End`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// The actions, stably sorted by [`Action::at_ms`].
    pub actions: Vec<Action>,
}

/// One line of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// 1-based line number in the script text.
    pub line: usize,
    /// Virtual milliseconds from the start of the run.
    pub at_ms: u64,
    /// What the client does.
    pub kind: ActionKind,
}

/// A script label (`h1`, `r1`, `e1`): letters, digits, `-` and `_`, never empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(String);

impl Label {
    /// Checks `text` against the label alphabet.
    pub fn new(text: &str) -> Option<Label> {
        let ok = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        ok.then(|| Label(text.to_owned()))
    }

    /// The label's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The due time of an IRP-based registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// `due=<ms>`: relative milliseconds (0 expires at once). The backend passes
    /// `DueTime = -(ms * 10_000)`.
    Ms(u64),
    /// `due100ns=<n>`: the raw 64-bit `DueTime` as given (negative relative, positive, or 0).
    Raw100ns(i64),
}

/// The largest `due=<ms>`: its `DueTime` in 100 ns units still fits an `i64`.
pub const MAX_DUE_MS: u64 = i64::MAX as u64 / 10_000;

impl Due {
    /// The `REGISTER_EVENT.DueTime` to send: `-(ms * 10_000)` (relative) for `due=<ms>`, the value
    /// as given for `due100ns=<n>`. The parser keeps `ms` within [`MAX_DUE_MS`].
    pub fn due_time_100ns(self) -> i64 {
        match self {
            Due::Ms(ms) => -(ms.min(MAX_DUE_MS) as i64 * 10_000),
            Due::Raw100ns(n) => n,
        }
    }
}

/// What `badevent` passes as the event handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadHandle {
    /// `handle=invalid`: a handle value that names nothing in the client's process.
    Invalid,
    /// `handle=not-event`: a valid handle to an object that is not an event.
    NotEvent,
}

/// The verbs of the contract's table, with exactly their arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// `open <h>`: opens an overlapped handle to the device under test.
    Open {
        /// The new handle's label.
        handle: Label,
    },
    /// `irp <r> <h> due=<ms>|due100ns=<n>`: IRP-based registration.
    Irp {
        /// The new request's label.
        req: Label,
        /// An open handle.
        handle: Label,
        /// When the request is due.
        due: Due,
    },
    /// `event <e> <h> due=<ms>`: creates the manual-reset event `e` if the script has not
    /// already, and registers it event-based; the IOCTL's own completion is reported as `e`.
    Event {
        /// The event's label (new, or an event created earlier: a re-registration).
        event: Label,
        /// An open handle.
        handle: Label,
        /// Relative milliseconds until the signal.
        due_ms: u64,
    },
    /// `badevent <r> <h> handle=invalid|not-event`: event-based registration with a bad handle.
    BadEvent {
        /// The new request's label.
        req: Label,
        /// An open handle.
        handle: Label,
        /// Which bad handle to pass.
        bad: BadHandle,
    },
    /// `raw <r> <h> len=<n> [type=<n>] [due=<ms>]`: `IOCTL_REGISTER_EVENT` with an input buffer of
    /// exactly `len` bytes; the `REGISTER_EVENT` fields past `len` are cut off (and bytes past 24
    /// are zero). `type` defaults to 0 (IRP_BASED), `due` to 0, `hEvent` is NULL.
    Raw {
        /// The new request's label.
        req: Label,
        /// An open handle.
        handle: Label,
        /// Input buffer length in bytes.
        len: u32,
        /// The `Type` field, if given.
        ty: Option<u32>,
        /// The due time in relative milliseconds, if given.
        due_ms: Option<u64>,
    },
    /// `ioctl <r> <h> code=<hex> [len=<n>]`: any other IOCTL code, with an input buffer of `len`
    /// zero bytes (none if `len` is absent).
    Ioctl {
        /// The new request's label.
        req: Label,
        /// An open handle.
        handle: Label,
        /// The IOCTL code.
        code: u32,
        /// Input buffer length in bytes, if given.
        len: Option<u32>,
    },
    /// `cancel <r>`: `CancelIoEx` for that request (no effect if it has completed). `r` may also
    /// be an event label: it names the registration IOCTL.
    Cancel {
        /// A request or event label.
        req: Label,
    },
    /// `close <h>`: `CloseHandle`.
    Close {
        /// An open handle.
        handle: Label,
    },
    /// `reset <e>`: `ResetEvent`.
    Reset {
        /// An event label.
        event: Label,
    },
    /// `end`: stops the run; remaining handles are closed, the driver is unloaded.
    End,
}

impl ActionKind {
    /// The verb as written in a script.
    pub fn verb(&self) -> &'static str {
        match self {
            ActionKind::Open { .. } => "open",
            ActionKind::Irp { .. } => "irp",
            ActionKind::Event { .. } => "event",
            ActionKind::BadEvent { .. } => "badevent",
            ActionKind::Raw { .. } => "raw",
            ActionKind::Ioctl { .. } => "ioctl",
            ActionKind::Cancel { .. } => "cancel",
            ActionKind::Close { .. } => "close",
            ActionKind::Reset { .. } => "reset",
            ActionKind::End => "end",
        }
    }

    /// For an action that submits an IOCTL: its request label (the event's label for `event`)
    /// and the handle it goes through.
    pub fn submits(&self) -> Option<(&Label, &Label)> {
        match self {
            ActionKind::Irp { req, handle, .. }
            | ActionKind::BadEvent { req, handle, .. }
            | ActionKind::Raw { req, handle, .. }
            | ActionKind::Ioctl { req, handle, .. } => Some((req, handle)),
            ActionKind::Event { event, handle, .. } => Some((event, handle)),
            _ => None,
        }
    }
}

impl fmt::Display for ActionKind {
    /// Writes the action back in script syntax (without `at <ms>`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = self.verb();
        match self {
            ActionKind::Open { handle } => write!(f, "{verb} {handle}"),
            ActionKind::Irp { req, handle, due } => match due {
                Due::Ms(ms) => write!(f, "{verb} {req} {handle} due={ms}"),
                Due::Raw100ns(n) => write!(f, "{verb} {req} {handle} due100ns={n}"),
            },
            ActionKind::Event {
                event,
                handle,
                due_ms,
            } => write!(f, "{verb} {event} {handle} due={due_ms}"),
            ActionKind::BadEvent { req, handle, bad } => {
                let which = match bad {
                    BadHandle::Invalid => "invalid",
                    BadHandle::NotEvent => "not-event",
                };
                write!(f, "{verb} {req} {handle} handle={which}")
            }
            ActionKind::Raw {
                req,
                handle,
                len,
                ty,
                due_ms,
            } => {
                write!(f, "{verb} {req} {handle} len={len}")?;
                if let Some(ty) = ty {
                    write!(f, " type={ty}")?;
                }
                if let Some(ms) = due_ms {
                    write!(f, " due={ms}")?;
                }
                Ok(())
            }
            ActionKind::Ioctl {
                req,
                handle,
                code,
                len,
            } => {
                write!(f, "{verb} {req} {handle} code={code:#x}")?;
                if let Some(len) = len {
                    write!(f, " len={len}")?;
                }
                Ok(())
            }
            ActionKind::Cancel { req } => write!(f, "{verb} {req}"),
            ActionKind::Close { handle } => write!(f, "{verb} {handle}"),
            ActionKind::Reset { event } => write!(f, "{verb} {event}"),
            ActionKind::End => f.write_str(verb),
        }
    }
}

/// A script error: the line it is on and what is wrong. Displays as `<line>: <message>`; the CLI
/// prefixes the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScriptError {}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ScriptError> {
    Err(ScriptError {
        line,
        message: message.into(),
    })
}

/// Parses a script. On success the actions are sorted by time (stably: same-time actions keep
/// their file order) and every label is created by an action that runs before its uses.
///
/// # Errors
/// The first problem found, with its line: a line that is not `at <ms> <verb> ...`, an unknown
/// verb or argument, a missing, duplicate or conflicting argument, a bad number or label, an
/// action after `end`, a missing `end`; then, in run order, a label used before the action that
/// creates it (or never created), a label created twice, a label of the wrong kind (a request
/// where a handle is expected, ...), or a handle used after its `close`.
pub fn parse(text: &str) -> Result<Script, ScriptError> {
    let mut actions = Vec::new();
    let mut end_line = None;
    let mut last_line = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        last_line = line;
        let content = raw.split('#').next().unwrap_or("");
        let tokens: Vec<&str> = content.split_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        if let Some(end) = end_line {
            return err(
                line,
                format!("action after `end` (the script ends on line {end})"),
            );
        }
        let action = parse_line(line, &tokens)?;
        if action.kind == ActionKind::End {
            end_line = Some(line);
        }
        actions.push(action);
    }
    let Some(end_line) = end_line else {
        return err(
            last_line.max(1),
            "missing `end`: the last action must be `at <ms> end`",
        );
    };
    let end_ms = actions.last().map_or(0, |a| a.at_ms);
    if let Some(late) = actions.iter().find(|a| a.at_ms > end_ms) {
        return err(
            late.line,
            format!(
                "action at {} ms runs after `end` at {end_ms} ms (line {end_line})",
                late.at_ms
            ),
        );
    }
    // The contract: actions run in time order, same-time actions in file order. `sort_by_key` is
    // stable, so it gives exactly that.
    actions.sort_by_key(|a| a.at_ms);
    check_labels(&actions)?;
    Ok(Script { actions })
}

fn parse_line(line: usize, tokens: &[&str]) -> Result<Action, ScriptError> {
    if tokens[0] != "at" {
        return err(
            line,
            format!(
                "expected `at <ms> <verb> ...`, found `{}`",
                tokens.join(" ")
            ),
        );
    }
    let Some(ms) = tokens.get(1) else {
        return err(line, "`at` needs a time in milliseconds and a verb");
    };
    let at_ms = parse_u64(line, "time", ms)?;
    let Some(verb) = tokens.get(2) else {
        return err(line, format!("`at {ms}` needs a verb"));
    };
    let kind = parse_verb(line, verb, &tokens[3..])?;
    Ok(Action { line, at_ms, kind })
}

/// The shape of one verb: its positional labels and its `key=value` arguments.
struct Shape {
    verb: &'static str,
    usage: &'static str,
    positional: &'static [&'static str],
    keys: &'static [&'static str],
}

const SHAPES: &[Shape] = &[
    Shape {
        verb: "open",
        usage: "open <h>",
        positional: &["handle"],
        keys: &[],
    },
    Shape {
        verb: "irp",
        usage: "irp <r> <h> due=<ms> | due100ns=<n>",
        positional: &["request", "handle"],
        keys: &["due", "due100ns"],
    },
    Shape {
        verb: "event",
        usage: "event <e> <h> due=<ms>",
        positional: &["event", "handle"],
        keys: &["due"],
    },
    Shape {
        verb: "badevent",
        usage: "badevent <r> <h> handle=invalid|not-event",
        positional: &["request", "handle"],
        keys: &["handle"],
    },
    Shape {
        verb: "raw",
        usage: "raw <r> <h> len=<n> [type=<n>] [due=<ms>]",
        positional: &["request", "handle"],
        keys: &["len", "type", "due"],
    },
    Shape {
        verb: "ioctl",
        usage: "ioctl <r> <h> code=<hex> [len=<n>]",
        positional: &["request", "handle"],
        keys: &["code", "len"],
    },
    Shape {
        verb: "cancel",
        usage: "cancel <r>",
        positional: &["request"],
        keys: &[],
    },
    Shape {
        verb: "close",
        usage: "close <h>",
        positional: &["handle"],
        keys: &[],
    },
    Shape {
        verb: "reset",
        usage: "reset <e>",
        positional: &["event"],
        keys: &[],
    },
    Shape {
        verb: "end",
        usage: "end",
        positional: &[],
        keys: &[],
    },
];

/// Arguments of one line, split by [`Shape`].
struct Args<'a> {
    line: usize,
    shape: &'static Shape,
    labels: Vec<Label>,
    keys: HashMap<&'static str, &'a str>,
}

impl<'a> Args<'a> {
    fn split(line: usize, shape: &'static Shape, tokens: &[&'a str]) -> Result<Self, ScriptError> {
        let usage = shape.usage;
        let mut labels = Vec::new();
        let mut keys: HashMap<&'static str, &'a str> = HashMap::new();
        for token in tokens {
            if let Some((key, value)) = token.split_once('=') {
                let Some(known) = shape.keys.iter().find(|k| **k == key) else {
                    return err(
                        line,
                        format!(
                            "unknown argument `{token}` for `{}` (usage: {usage})",
                            shape.verb
                        ),
                    );
                };
                if keys.insert(known, value).is_some() {
                    return err(
                        line,
                        format!("duplicate argument `{key}=` (usage: {usage})"),
                    );
                }
            } else {
                let Some(what) = shape.positional.get(labels.len()) else {
                    return err(
                        line,
                        format!("unexpected argument `{token}` (usage: {usage})"),
                    );
                };
                let Some(label) = Label::new(token) else {
                    return err(
                        line,
                        format!(
                            "bad {what} label `{token}`: labels are letters, digits, `-` and `_`"
                        ),
                    );
                };
                labels.push(label);
            }
        }
        if let Some(what) = shape.positional.get(labels.len()) {
            return err(line, format!("missing {what} label (usage: {usage})"));
        }
        Ok(Args {
            line,
            shape,
            labels,
            keys,
        })
    }

    fn label(&self, index: usize) -> Label {
        self.labels[index].clone()
    }

    fn required(&self, key: &str) -> Result<&'a str, ScriptError> {
        match self.keys.get(key) {
            Some(value) => Ok(value),
            None => err(
                self.line,
                format!("missing argument `{key}=` (usage: {})", self.shape.usage),
            ),
        }
    }

    fn optional(&self, key: &str) -> Option<&'a str> {
        self.keys.get(key).copied()
    }
}

fn parse_verb(line: usize, verb: &str, tokens: &[&str]) -> Result<ActionKind, ScriptError> {
    let Some(shape) = SHAPES.iter().find(|s| s.verb == verb) else {
        let verbs: Vec<&str> = SHAPES.iter().map(|s| s.verb).collect();
        return err(
            line,
            format!("unknown verb `{verb}` (verbs: {})", verbs.join(", ")),
        );
    };
    let args = Args::split(line, shape, tokens)?;
    let kind = match verb {
        "open" => ActionKind::Open {
            handle: args.label(0),
        },
        "irp" => {
            let due = match (args.optional("due"), args.optional("due100ns")) {
                (Some(ms), None) => Due::Ms(parse_due(line, ms)?),
                (None, Some(n)) => Due::Raw100ns(parse_i64(line, "due100ns", n)?),
                (Some(_), Some(_)) => {
                    return err(line, "`due=` and `due100ns=` exclude each other");
                }
                (None, None) => {
                    return err(
                        line,
                        format!(
                            "missing argument `due=` or `due100ns=` (usage: {})",
                            shape.usage
                        ),
                    );
                }
            };
            ActionKind::Irp {
                req: args.label(0),
                handle: args.label(1),
                due,
            }
        }
        "event" => ActionKind::Event {
            event: args.label(0),
            handle: args.label(1),
            due_ms: parse_due(line, args.required("due")?)?,
        },
        "badevent" => {
            let bad = match args.required("handle")? {
                "invalid" => BadHandle::Invalid,
                "not-event" => BadHandle::NotEvent,
                other => {
                    return err(
                        line,
                        format!("bad value `handle={other}`: expected `invalid` or `not-event`"),
                    );
                }
            };
            ActionKind::BadEvent {
                req: args.label(0),
                handle: args.label(1),
                bad,
            }
        }
        "raw" => ActionKind::Raw {
            req: args.label(0),
            handle: args.label(1),
            len: parse_u32(line, "len", args.required("len")?)?,
            ty: args
                .optional("type")
                .map(|v| parse_u32(line, "type", v))
                .transpose()?,
            due_ms: args
                .optional("due")
                .map(|v| parse_due(line, v))
                .transpose()?,
        },
        "ioctl" => ActionKind::Ioctl {
            req: args.label(0),
            handle: args.label(1),
            code: parse_hex(line, "code", args.required("code")?)?,
            len: args
                .optional("len")
                .map(|v| parse_u32(line, "len", v))
                .transpose()?,
        },
        "cancel" => ActionKind::Cancel { req: args.label(0) },
        "close" => ActionKind::Close {
            handle: args.label(0),
        },
        "reset" => ActionKind::Reset {
            event: args.label(0),
        },
        _ => ActionKind::End,
    };
    Ok(kind)
}

fn bad_number<T>(line: usize, what: &str, text: &str, expected: &str) -> Result<T, ScriptError> {
    err(
        line,
        format!("bad number `{text}` for {what}: expected {expected}"),
    )
}

fn parse_u64(line: usize, what: &str, text: &str) -> Result<u64, ScriptError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse() {
            return Ok(n);
        }
    }
    bad_number(line, what, text, "a decimal number of milliseconds")
}

fn parse_due(line: usize, text: &str) -> Result<u64, ScriptError> {
    let ms = parse_u64(line, "due", text)?;
    if ms > MAX_DUE_MS {
        return err(
            line,
            format!(
                "due={ms} is too large: the most is {MAX_DUE_MS} ms (DueTime is an i64 of 100 ns)"
            ),
        );
    }
    Ok(ms)
}

fn parse_u32(line: usize, what: &str, text: &str) -> Result<u32, ScriptError> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u32::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse().ok(),
        None => None,
    };
    match parsed {
        Some(n) => Ok(n),
        None => bad_number(
            line,
            what,
            text,
            "a 32-bit unsigned number (decimal, or hex with 0x)",
        ),
    }
}

fn parse_i64(line: usize, what: &str, text: &str) -> Result<i64, ScriptError> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse() {
            return Ok(n);
        }
    }
    bad_number(line, what, text, "a signed 64-bit decimal number")
}

fn parse_hex(line: usize, what: &str, text: &str) -> Result<u32, ScriptError> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Ok(n) = u32::from_str_radix(hex, 16) {
            return Ok(n);
        }
    }
    bad_number(
        line,
        what,
        text,
        "a 32-bit hexadecimal number (0x optional)",
    )
}

/// What a label names, fixed by the action that creates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Handle,
    Request,
    Event,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Handle => "handle",
            Kind::Request => "request",
            Kind::Event => "event",
        }
    }
}

fn article(noun: &str) -> String {
    let an = noun.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {noun}", if an { "an" } else { "a" })
}

struct Entry {
    kind: Kind,
    line: usize,
    closed_on: Option<usize>,
}

/// Walks the actions in run order and checks that every label is created once, before its uses,
/// and used as what it is.
fn check_labels<'a>(actions: &'a [Action]) -> Result<(), ScriptError> {
    // Where each label is created, in file terms, to tell "used too early" from "never created".
    let mut creators: HashMap<&Label, usize> = HashMap::new();
    for action in actions {
        let created = match &action.kind {
            ActionKind::Open { handle } => Some(handle),
            ActionKind::Event { event, .. } => Some(event),
            other => other.submits().map(|(req, _)| req),
        };
        if let Some(label) = created {
            creators.entry(label).or_insert(action.line);
        }
    }

    let mut table: HashMap<&'a Label, Entry> = HashMap::new();
    for action in actions {
        let line = action.line;
        let use_as = |table: &HashMap<&Label, Entry>, label: &Label, kinds: &[Kind]| {
            let Some(entry) = table.get(label) else {
                return match creators.get(label) {
                    Some(at) => err(
                        line,
                        format!(
                            "`{label}` is used before the action that creates it (line {at}) runs"
                        ),
                    ),
                    None => err(
                        line,
                        format!("unknown label `{label}`: no action creates it"),
                    ),
                };
            };
            if !kinds.contains(&entry.kind) {
                let wanted: Vec<&str> = kinds.iter().map(|k| k.noun()).collect();
                return err(
                    line,
                    format!(
                        "`{label}` is {} (created on line {}), not {}",
                        article(entry.kind.noun()),
                        entry.line,
                        article(&wanted.join(" or "))
                    ),
                );
            }
            if let Some(closed) = entry.closed_on {
                return err(
                    line,
                    format!("handle `{label}` is used after its `close` on line {closed}"),
                );
            }
            Ok(())
        };
        let create = |table: &mut HashMap<&'a Label, Entry>, label: &'a Label, kind| {
            if let Some(entry) = table.get(label) {
                return err(
                    line,
                    format!(
                        "label `{label}` is created twice (first as {} on line {})",
                        article(entry.kind.noun()),
                        entry.line
                    ),
                );
            }
            table.insert(
                label,
                Entry {
                    kind,
                    line,
                    closed_on: None,
                },
            );
            Ok(())
        };
        match &action.kind {
            ActionKind::Open { handle } => create(&mut table, handle, Kind::Handle)?,
            ActionKind::Event { event, handle, .. } => {
                use_as(&table, handle, &[Kind::Handle])?;
                // "creates a manual-reset event e (if the script has not already)": a second
                // `event e` re-registers the same event.
                match table.get(event) {
                    Some(entry) if entry.kind == Kind::Event => {}
                    _ => create(&mut table, event, Kind::Event)?,
                }
            }
            ActionKind::Irp { req, handle, .. }
            | ActionKind::BadEvent { req, handle, .. }
            | ActionKind::Raw { req, handle, .. }
            | ActionKind::Ioctl { req, handle, .. } => {
                use_as(&table, handle, &[Kind::Handle])?;
                create(&mut table, req, Kind::Request)?;
            }
            ActionKind::Cancel { req } => use_as(&table, req, &[Kind::Request, Kind::Event])?,
            ActionKind::Close { handle } => {
                use_as(&table, handle, &[Kind::Handle])?;
                if let Some(entry) = table.get_mut(handle) {
                    entry.closed_on = Some(line);
                }
            }
            ActionKind::Reset { event } => use_as(&table, event, &[Kind::Event])?,
            ActionKind::End => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(s: &str) -> Label {
        Label::new(s).unwrap()
    }

    fn error_of(text: &str) -> ScriptError {
        parse(text).expect_err("the script should be rejected")
    }

    fn assert_error(text: &str, line: usize, needle: &str) {
        let e = error_of(text);
        assert_eq!(e.line, line, "wrong line for {e}");
        assert!(
            e.message.contains(needle),
            "message `{}` lacks `{needle}`",
            e.message
        );
    }

    #[test]
    fn parses_every_verb_with_its_arguments() {
        let text = "\
# a comment
at 0 open h1   # trailing comment

at 0 irp r1 h1 due=1000
at 0 irp r2 h1 due100ns=-50000
at 1 event e1 h1 due=700
at 2 badevent b1 h1 handle=invalid
at 2 badevent b2 h1 handle=not-event
at 3 raw x1 h1 len=8
at 3 raw x2 h1 len=24 type=1 due=5
at 4 ioctl i1 h1 code=0x222004
at 4 ioctl i2 h1 code=222008 len=16
at 5 cancel r1
at 5 reset e1
at 6 close h1
at 7 end
";
        let script = parse(text).unwrap();
        let kinds: Vec<ActionKind> = script.actions.iter().map(|a| a.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                ActionKind::Open {
                    handle: label("h1")
                },
                ActionKind::Irp {
                    req: label("r1"),
                    handle: label("h1"),
                    due: Due::Ms(1000)
                },
                ActionKind::Irp {
                    req: label("r2"),
                    handle: label("h1"),
                    due: Due::Raw100ns(-50000)
                },
                ActionKind::Event {
                    event: label("e1"),
                    handle: label("h1"),
                    due_ms: 700
                },
                ActionKind::BadEvent {
                    req: label("b1"),
                    handle: label("h1"),
                    bad: BadHandle::Invalid
                },
                ActionKind::BadEvent {
                    req: label("b2"),
                    handle: label("h1"),
                    bad: BadHandle::NotEvent
                },
                ActionKind::Raw {
                    req: label("x1"),
                    handle: label("h1"),
                    len: 8,
                    ty: None,
                    due_ms: None
                },
                ActionKind::Raw {
                    req: label("x2"),
                    handle: label("h1"),
                    len: 24,
                    ty: Some(1),
                    due_ms: Some(5)
                },
                ActionKind::Ioctl {
                    req: label("i1"),
                    handle: label("h1"),
                    code: 0x222004,
                    len: None
                },
                ActionKind::Ioctl {
                    req: label("i2"),
                    handle: label("h1"),
                    code: 0x222008,
                    len: Some(16)
                },
                ActionKind::Cancel { req: label("r1") },
                ActionKind::Reset { event: label("e1") },
                ActionKind::Close {
                    handle: label("h1")
                },
                ActionKind::End,
            ]
        );
        assert_eq!(script.actions[0].line, 2);
        assert_eq!(script.actions[1].line, 4);
        assert_eq!(script.actions.last().unwrap().at_ms, 7);
    }

    #[test]
    fn display_round_trips_every_verb() {
        let text = "at 0 open h1\nat 0 irp r1 h1 due=10\nat 0 irp r2 h1 due100ns=5\n\
                    at 0 event e1 h1 due=7\nat 0 badevent b h1 handle=not-event\n\
                    at 0 raw x h1 len=8 type=2 due=3\nat 0 ioctl i h1 code=0x222004 len=4\n\
                    at 0 cancel r1\nat 0 reset e1\nat 0 close h1\nat 0 end\n";
        let script = parse(text).unwrap();
        let again: String = script
            .actions
            .iter()
            .map(|a| format!("at {} {}\n", a.at_ms, a.kind))
            .collect();
        assert_eq!(again, text);
    }

    #[test]
    fn sorts_by_time_keeping_file_order_for_ties() {
        let text = "\
at 0 open h1
at 500 irp late h1 due=1
at 100 irp a h1 due=1
at 100 irp b h1 due=1
at 0 irp first h1 due=1
at 100 irp c h1 due=1
at 500 end
";
        let script = parse(text).unwrap();
        let order: Vec<(u64, usize)> = script.actions.iter().map(|a| (a.at_ms, a.line)).collect();
        assert_eq!(
            order,
            vec![
                (0, 1),
                (0, 5),
                (100, 3),
                (100, 4),
                (100, 6),
                (500, 2),
                (500, 7)
            ]
        );
    }

    #[test]
    fn label_created_later_in_the_file_but_earlier_in_time_is_fine() {
        let script = parse("at 10 irp r1 h1 due=1\nat 0 open h1\nat 10 end\n").unwrap();
        assert_eq!(script.actions[0].line, 2);
    }

    #[test]
    fn rejects_a_line_without_at() {
        assert_error("open h1\nat 0 end\n", 1, "expected `at <ms> <verb> ...`");
    }

    #[test]
    fn rejects_at_without_time_or_verb() {
        assert_error("at\n", 1, "needs a time");
        assert_error("at 5\n", 1, "`at 5` needs a verb");
    }

    #[test]
    fn rejects_a_bad_time() {
        assert_error("at -5 open h1\nat 0 end\n", 1, "bad number `-5` for time");
        assert_error("at 1.5 open h1\nat 0 end\n", 1, "bad number `1.5`");
        assert_error(
            "at 99999999999999999999 open h1\nat 0 end\n",
            1,
            "bad number",
        );
    }

    #[test]
    fn rejects_an_unknown_verb() {
        assert_error(
            "at 0 open h1\nat 0 frobnicate h1\nat 0 end\n",
            2,
            "unknown verb `frobnicate`",
        );
    }

    #[test]
    fn rejects_an_unknown_argument() {
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1 due=5 prio=2\nat 0 end\n",
            2,
            "unknown argument `prio=2` for `irp`",
        );
        assert_error(
            "at 0 open h1\nat 0 event e1 h1 due100ns=5\nat 0 end\n",
            2,
            "unknown argument `due100ns=5`",
        );
    }

    #[test]
    fn rejects_an_extra_positional_argument() {
        assert_error("at 0 open h1 h2\nat 0 end\n", 1, "unexpected argument `h2`");
        assert_error("at 0 end now\n", 1, "unexpected argument `now`");
    }

    #[test]
    fn rejects_a_missing_label() {
        assert_error("at 0 open\nat 0 end\n", 1, "missing handle label");
        assert_error(
            "at 0 open h1\nat 0 irp r1 due=5\nat 0 end\n",
            2,
            "missing handle label",
        );
        assert_error("at 0 cancel\nat 0 end\n", 1, "missing request label");
    }

    #[test]
    fn rejects_a_missing_argument() {
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1\nat 0 end\n",
            2,
            "missing argument `due=` or `due100ns=`",
        );
        assert_error(
            "at 0 open h1\nat 0 event e1 h1\nat 0 end\n",
            2,
            "missing argument `due=`",
        );
        assert_error(
            "at 0 open h1\nat 0 raw r1 h1 type=0\nat 0 end\n",
            2,
            "missing argument `len=`",
        );
        assert_error(
            "at 0 open h1\nat 0 ioctl r1 h1 len=4\nat 0 end\n",
            2,
            "missing argument `code=`",
        );
        assert_error(
            "at 0 open h1\nat 0 badevent r1 h1\nat 0 end\n",
            2,
            "missing argument `handle=`",
        );
    }

    #[test]
    fn rejects_a_duplicate_argument() {
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1 due=5 due=6\nat 0 end\n",
            2,
            "duplicate argument `due=`",
        );
        assert_error(
            "at 0 open h1\nat 0 raw r1 h1 len=4 len=8\nat 0 end\n",
            2,
            "duplicate argument `len=`",
        );
    }

    #[test]
    fn rejects_due_and_due100ns_together() {
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1 due=5 due100ns=-1\nat 0 end\n",
            2,
            "exclude each other",
        );
    }

    #[test]
    fn rejects_bad_numbers_in_arguments() {
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1 due=x\nat 0 end\n",
            2,
            "bad number `x` for due",
        );
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1 due=-5\nat 0 end\n",
            2,
            "bad number `-5` for due",
        );
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1 due100ns=--5\nat 0 end\n",
            2,
            "bad number `--5` for due100ns",
        );
        assert_error(
            "at 0 open h1\nat 0 raw r1 h1 len=4294967296\nat 0 end\n",
            2,
            "bad number `4294967296` for len",
        );
        assert_error(
            "at 0 open h1\nat 0 raw r1 h1 len=8 type=0x\nat 0 end\n",
            2,
            "for type",
        );
        assert_error(
            "at 0 open h1\nat 0 ioctl r1 h1 code=0xZZ\nat 0 end\n",
            2,
            "bad number `0xZZ` for code",
        );
        assert_error(
            "at 0 open h1\nat 0 ioctl r1 h1 code=\nat 0 end\n",
            2,
            "for code",
        );
    }

    #[test]
    fn rejects_a_due_time_beyond_i64() {
        let ok = format!("at 0 open h1\nat 0 irp r1 h1 due={MAX_DUE_MS}\nat 0 end\n");
        let script = parse(&ok).unwrap();
        let ActionKind::Irp { due, .. } = script.actions[1].kind else {
            panic!("not an irp");
        };
        assert_eq!(due.due_time_100ns(), -(MAX_DUE_MS as i64) * 10_000);
        let big = MAX_DUE_MS + 1;
        for verb in [
            format!("irp r1 h1 due={big}"),
            format!("event e1 h1 due={big}"),
            format!("raw r1 h1 len=24 due={big}"),
        ] {
            assert_error(
                &format!("at 0 open h1\nat 0 {verb}\nat 0 end\n"),
                2,
                "is too large",
            );
        }
        assert_eq!(Due::Ms(5).due_time_100ns(), -50_000);
        assert_eq!(Due::Raw100ns(7).due_time_100ns(), 7);
    }

    #[test]
    fn accepts_number_edge_cases() {
        let script = parse(
            "at 0 open h1\nat 0 irp r1 h1 due100ns=-9223372036854775808\n\
             at 0 irp r2 h1 due100ns=+7\nat 0 ioctl r3 h1 code=FFFFFFFF\nat 0 raw r4 h1 len=0x18\nat 0 end\n",
        )
        .unwrap();
        assert!(matches!(
            script.actions[1].kind,
            ActionKind::Irp {
                due: Due::Raw100ns(i64::MIN),
                ..
            }
        ));
        assert!(matches!(
            script.actions[2].kind,
            ActionKind::Irp {
                due: Due::Raw100ns(7),
                ..
            }
        ));
        assert!(matches!(
            script.actions[3].kind,
            ActionKind::Ioctl {
                code: 0xFFFF_FFFF,
                ..
            }
        ));
        assert!(matches!(
            script.actions[4].kind,
            ActionKind::Raw { len: 24, .. }
        ));
    }

    #[test]
    fn rejects_a_bad_badevent_handle() {
        assert_error(
            "at 0 open h1\nat 0 badevent r1 h1 handle=closed\nat 0 end\n",
            2,
            "bad value `handle=closed`",
        );
    }

    #[test]
    fn rejects_a_bad_label() {
        assert_error("at 0 open h.1\nat 0 end\n", 1, "bad handle label `h.1`");
        assert_error(
            "at 0 open h1\nat 0 irp r/1 h1 due=1\nat 0 end\n",
            2,
            "bad request label `r/1`",
        );
    }

    #[test]
    fn accepts_labels_with_dashes_and_underscores() {
        parse("at 0 open my-handle_2\nat 0 irp R_1-x my-handle_2 due=1\nat 0 end\n").unwrap();
    }

    #[test]
    fn rejects_a_missing_end() {
        assert_error("at 0 open h1\n\n# done\n", 3, "missing `end`");
        assert_error("", 1, "missing `end`");
    }

    #[test]
    fn rejects_an_action_after_end_in_the_file() {
        assert_error(
            "at 0 open h1\nat 5 end\nat 6 close h1\n",
            3,
            "action after `end`",
        );
        assert_error(
            "at 0 open h1\nat 5 end\nat 5 end\n",
            3,
            "action after `end`",
        );
    }

    #[test]
    fn rejects_an_action_that_runs_after_end() {
        assert_error(
            "at 0 open h1\nat 900 close h1\nat 500 end\n",
            2,
            "action at 900 ms runs after `end` at 500 ms (line 3)",
        );
    }

    #[test]
    fn rejects_a_label_used_before_its_creation_runs() {
        assert_error(
            "at 10 open h1\nat 5 irp r1 h1 due=1\nat 10 end\n",
            2,
            "`h1` is used before the action that creates it (line 1) runs",
        );
        // Same time: file order decides.
        assert_error(
            "at 0 cancel r1\nat 0 open h1\nat 0 irp r1 h1 due=1\nat 0 end\n",
            1,
            "`r1` is used before the action that creates it (line 3)",
        );
    }

    #[test]
    fn rejects_a_label_never_created() {
        assert_error("at 0 close h9\nat 0 end\n", 1, "unknown label `h9`");
        assert_error(
            "at 0 open h1\nat 0 reset e9\nat 0 end\n",
            2,
            "unknown label `e9`",
        );
    }

    #[test]
    fn rejects_a_label_created_twice() {
        assert_error(
            "at 0 open h1\nat 0 open h1\nat 0 end\n",
            2,
            "label `h1` is created twice (first as a handle on line 1)",
        );
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1 due=1\nat 1 raw r1 h1 len=2\nat 1 end\n",
            3,
            "label `r1` is created twice",
        );
        // An event and a request share the namespace of the output.
        assert_error(
            "at 0 open h1\nat 0 irp x h1 due=1\nat 1 event x h1 due=2\nat 1 end\n",
            3,
            "label `x` is created twice (first as a request on line 2)",
        );
        // In run order, not file order.
        assert_error(
            "at 0 open h1\nat 5 open h2\nat 1 open h2\nat 5 end\n",
            2,
            "label `h2` is created twice (first as a handle on line 3)",
        );
    }

    #[test]
    fn event_registers_again_under_the_same_label() {
        let script = parse(
            "at 0 open h1\nat 0 event e1 h1 due=5\nat 10 reset e1\nat 10 event e1 h1 due=5\nat 20 end\n",
        )
        .unwrap();
        assert_eq!(script.actions.len(), 5);
    }

    #[test]
    fn rejects_a_label_of_the_wrong_kind() {
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1 due=1\nat 0 close r1\nat 0 end\n",
            3,
            "`r1` is a request (created on line 2), not a handle",
        );
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1 due=1\nat 0 reset r1\nat 0 end\n",
            3,
            "`r1` is a request (created on line 2), not an event",
        );
        assert_error(
            "at 0 open h1\nat 0 cancel h1\nat 0 end\n",
            2,
            "`h1` is a handle (created on line 1), not a request or event",
        );
        assert_error(
            "at 0 open h1\nat 0 irp r1 h1 due=1\nat 0 irp r2 r1 due=1\nat 0 end\n",
            3,
            "not a handle",
        );
    }

    #[test]
    fn cancel_accepts_an_event_label() {
        parse("at 0 open h1\nat 0 event e1 h1 due=5\nat 1 cancel e1\nat 2 end\n").unwrap();
    }

    #[test]
    fn rejects_a_handle_used_after_close() {
        assert_error(
            "at 0 open h1\nat 5 close h1\nat 6 irp r1 h1 due=1\nat 6 end\n",
            3,
            "handle `h1` is used after its `close` on line 2",
        );
        assert_error(
            "at 0 open h1\nat 5 close h1\nat 6 close h1\nat 6 end\n",
            3,
            "used after its `close`",
        );
    }

    #[test]
    fn requests_outlive_their_handle_for_cancel() {
        // CancelIoEx after the handle closed: no effect at run time, not a script error.
        parse("at 0 open h1\nat 0 irp r1 h1 due=9\nat 1 close h1\nat 2 cancel r1\nat 3 end\n")
            .unwrap();
    }

    #[test]
    fn error_displays_line_and_message() {
        let e = error_of("at 0 bogus\n");
        assert_eq!(e.to_string(), format!("1: {}", e.message));
    }
}
