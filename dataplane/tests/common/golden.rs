//! Golden fixtures: one text file per case with the input frame, the
//! verdict and, for forwarded frames, the output frame, in hex.
//! `RR_BLESS=1` rewrites them after a deliberate change.

use std::fmt::Write as _;
use std::path::PathBuf;

use dataplane::Verdict;

fn verdict_name(v: Verdict) -> String {
    match v {
        Verdict::ToWire => "to_wire".into(),
        Verdict::ToHost => "to_host".into(),
        Verdict::Held => "held".into(),
        Verdict::Drop(r) => format!("drop {}", r.name()),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn render(about: &str, frame: &[u8], verdict: Verdict, out: &[u8]) -> String {
    let mut text = format!(
        "# {about}\nverdict: {}\nin: {}\n",
        verdict_name(verdict),
        hex(frame)
    );
    if verdict == Verdict::ToWire {
        let _ = writeln!(text, "out: {}", hex(out));
    }
    text
}

/// Compares case `name` (fixture `tests/{dir}/{name}.txt`) with what the
/// pipeline did: `None` when it matches (or was blessed), else the
/// difference to report.
pub fn mismatch(
    dir: &str,
    name: &str,
    about: &str,
    frame: &[u8],
    (verdict, out): (Verdict, &[u8]),
) -> Option<String> {
    let actual = render(about, frame, verdict, out);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir)
        .join(format!("{name}.txt"));
    if std::env::var_os("RR_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with RR_BLESS=1 to record it)", path.display()));
    (expected != actual).then(|| format!("{name}:\n--- expected\n{expected}--- actual\n{actual}"))
}
