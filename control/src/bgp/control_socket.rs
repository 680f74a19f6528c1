//! BIRD's control socket, spoken directly: a Unix stream where each command
//! is one line and each reply is lines of `CODE-text` (more follows),
//! ` text` (continuing the previous code) and a last `CODE text`. Codes
//! 0xxx end a command that worked, 1xxx/2xxx carry data, 8xxx and 9xxx are
//! errors (runtime and syntax). Every read and write has a timeout, and a
//! reply is bounded in lines and bytes, so a stuck or hostile BIRD cannot
//! hang the supervisor.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long one read or write on the socket may block.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// Bounds of one reply: `show protocols all` of a few peers is far below.
const MAX_LINES: usize = 10_000;
const MAX_LINE_BYTES: u64 = 4096;

/// A connection to BIRD's control socket.
#[derive(Debug)]
pub struct ControlSocket {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

/// One reply: its last code and the text of every line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// `(code, text)` per line; a continuation line has the code before it.
    pub lines: Vec<(u16, String)>,
}

impl Reply {
    /// Codes below 8000 mean the command was done.
    pub fn ok(&self) -> bool {
        self.code < 8000
    }

    /// The lines' text, one per line.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl ControlSocket {
    /// Connects and reads BIRD's greeting (`0001 BIRD x.y ready.`).
    pub fn connect(path: &Path) -> io::Result<Self> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let writer = stream.try_clone()?;
        let mut socket = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let hello = socket.read_reply()?;
        if hello.code != 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not BIRD's greeting: {}", hello.text()),
            ));
        }
        Ok(socket)
    }

    /// Sends one command (a single line) and reads its reply.
    pub fn command(&mut self, command: &str) -> io::Result<Reply> {
        if command.contains(['\n', '\r']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a BIRD command is one line",
            ));
        }
        self.writer.write_all(format!("{command}\n").as_bytes())?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        let mut code = 0;
        for _ in 0..MAX_LINES {
            let mut raw = Vec::new();
            (&mut self.reader)
                .take(MAX_LINE_BYTES)
                .read_until(b'\n', &mut raw)?;
            if raw.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            match parse_line(line) {
                Line::Continued(text) => lines.push((code, text.to_owned())),
                Line::Coded {
                    code: c,
                    last,
                    text,
                } => {
                    code = c;
                    lines.push((c, text.to_owned()));
                    if last {
                        return Ok(Reply { code, lines });
                    }
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a reply longer than {MAX_LINES} lines"),
        ))
    }
}

enum Line<'a> {
    Coded {
        code: u16,
        last: bool,
        text: &'a str,
    },
    Continued(&'a str),
}

/// `CODE-text`, `CODE text` or ` text` (anything else is read as text).
fn parse_line(line: &str) -> Line<'_> {
    let coded = line.len() >= 5
        && line.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && matches!(line.as_bytes()[4], b'-' | b' ');
    if !coded {
        return Line::Continued(line.strip_prefix(' ').unwrap_or(line));
    }
    Line::Coded {
        code: line[..4].parse().unwrap_or(9999),
        last: line.as_bytes()[4] == b' ',
        text: &line[5..],
    }
}

/// One line of `show protocols`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProtocolRow {
    pub name: String,
    pub proto: String,
    pub state: String,
    pub since: String,
    /// For BGP: Established, Active, Connect, ... with the last error.
    pub info: String,
}

/// The rows of `show protocols` (header and blank lines left out).
pub fn parse_protocols(reply: &Reply) -> Vec<ProtocolRow> {
    reply
        .lines
        .iter()
        // 2002 is the header; 1002 and its continuations are the rows.
        .filter(|(code, _)| *code == 1002)
        .filter_map(|(_, text)| {
            let mut words = text.split_whitespace();
            let name = words.next()?.to_owned();
            let proto = words.next()?.to_owned();
            let _table = words.next()?;
            let state = words.next()?.to_owned();
            let since = words.next()?.to_owned();
            let info = words.collect::<Vec<_>>().join(" ");
            Some(ProtocolRow {
                name,
                proto,
                state,
                since,
                info,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What BIRD 2.0.12 answered to `show protocols`, byte for byte.
    const SHOW_PROTOCOLS: &str =
        "2002-Name       Proto      Table      State  Since         Info\n\
        1002-device1    Device     ---        up     17:57:01.429  \n \
        rr_announce Static     master4    up     17:57:04.437  \n \
        peer1      BGP        ---        up     17:57:05.643  Established   \n\
        0000 \n";

    fn reply_of(text: &str) -> Reply {
        let mut lines = Vec::new();
        let mut code = 0;
        for line in text.lines() {
            match parse_line(line) {
                Line::Continued(t) => lines.push((code, t.to_owned())),
                Line::Coded { code: c, text, .. } => {
                    code = c;
                    lines.push((c, text.to_owned()));
                }
            }
        }
        Reply { code, lines }
    }

    #[test]
    fn show_protocols_rows_are_read_with_their_continuations() {
        let rows = parse_protocols(&reply_of(SHOW_PROTOCOLS));
        let names: Vec<_> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.state.as_str()))
            .collect();
        assert_eq!(
            names,
            [("device1", "up"), ("rr_announce", "up"), ("peer1", "up")]
        );
        assert_eq!(rows[2].info, "Established");
        assert_eq!(rows[2].proto, "BGP");
    }

    #[test]
    fn replies_end_at_a_code_followed_by_a_space() {
        let mut server_side = None;
        let (a, b) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            let mut b = b;
            b.write_all(b"0001 BIRD 2.0.12 ready.\n").unwrap();
            let mut got = [0u8; 64];
            let n = b.read(&mut got).unwrap();
            b.write_all(b"0009-rr: disabled\n0000 \n").unwrap();
            let n2 = b.read(&mut got[n..]).unwrap();
            b.write_all(b"9001 syntax error, unexpected CF_SYM_UNDEFINED\n")
                .unwrap();
            String::from_utf8_lossy(&got[..n + n2]).into_owned()
        });
        a.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut socket = ControlSocket {
            reader: BufReader::new(a.try_clone().unwrap()),
            writer: a,
        };
        assert_eq!(socket.read_reply().unwrap().code, 1);
        let reply = socket.command("disable rr").unwrap();
        assert!(reply.ok());
        assert_eq!(reply.lines[0], (9, "rr: disabled".to_owned()));
        let reply = socket.command("disable nosuch").unwrap();
        assert!(!reply.ok(), "{reply:?}");
        server_side.replace(writer.join().unwrap());
        assert_eq!(server_side.as_deref(), Some("disable rr\ndisable nosuch\n"));
        assert!(socket.command("a\nb").is_err());
    }

    #[test]
    fn a_silent_or_closed_socket_is_an_error_not_a_hang() {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut socket = ControlSocket {
            reader: BufReader::new(a.try_clone().unwrap()),
            writer: a,
        };
        assert!(socket.read_reply().is_err());
        drop(b);
        assert!(socket.read_reply().is_err());
    }
}
