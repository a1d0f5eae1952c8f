//! eventctl: drives the timer-event devices (issue 4).

fn main() {
    eprintln!("eventctl: not built yet (issue 4); see README.md");
    std::process::exit(2);
}
