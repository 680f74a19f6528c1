//! `PcapIo`: replaying a capture through the pipeline, offline.
//!
//! RX is the frames of a classic pcap file (Ethernet linktype). Each frame is
//! copied into a buffer behind `headroom` bytes, handed to the pipeline, and
//! written by its verdict: `ToWire` to the output pcap, `ToHost` to the
//! optional host pcap, `Drop` to the optional dropped pcap. Every frame keeps
//! its input timestamp, so the outputs line up with the input in tshark.
//!
//! The reader stays one frame ahead of the pipeline, so [`PcapIo::is_exhausted`]
//! and [`PcapIo::next_timestamp`] know what comes next without consuming it.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapReader, PcapWriter, RawPcapPacket};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use super::{BatchCounts, FrameHandler, PacketIo};
use crate::frame::Frame;
use crate::verdict::Verdict;

/// Largest snapshot length libpcap accepts for Ethernet; written in the
/// output headers so that encapsulated (longer) frames still fit.
const OUTPUT_SNAPLEN: u32 = 262_144;

/// The first four bytes of a pcapng file (its section header block type).
const PCAPNG_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];

/// Files and buffer sizes of a [`PcapIo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapIoConfig {
    /// The capture to replay.
    pub input: PathBuf,
    /// Where `ToWire` frames (and `transmit_copy`) are written.
    pub output: PathBuf,
    /// Where `ToHost` frames are written; discarded when `None`.
    pub host_output: Option<PathBuf>,
    /// Where dropped frames are written; discarded when `None`.
    pub dropped_output: Option<PathBuf>,
    /// Bytes in the frame buffer; grown for a frame that does not fit behind
    /// the headroom, so large captured frames are replayed whole.
    pub buf_size: usize,
    /// Bytes free in front of each frame, for encapsulation.
    pub headroom: usize,
}

impl PcapIoConfig {
    /// Replays `input` into `output`, discarding host and dropped frames,
    /// with netmap's 2048-byte buffers and 128 bytes of headroom.
    pub fn new(input: impl Into<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Self {
            input: input.into(),
            output: output.into(),
            host_output: None,
            dropped_output: None,
            buf_size: 2048,
            headroom: 128,
        }
    }
}

/// Why a capture could not be read or an output written.
#[derive(Debug)]
pub enum PcapIoError {
    /// The input could not be opened.
    Open { path: PathBuf, source: io::Error },
    /// The input is not a classic pcap file.
    NotPcap { path: PathBuf, detail: String },
    /// The input's link layer is not Ethernet.
    UnsupportedLinktype { path: PathBuf, linktype: u32 },
    /// The file ends inside a frame's record.
    TruncatedRecord { path: PathBuf, frame: u64 },
    /// Reading the input failed.
    Read {
        path: PathBuf,
        frame: u64,
        detail: String,
    },
    /// An output file could not be created.
    Create { path: PathBuf, source: io::Error },
    /// Writing an output file failed.
    Write { path: PathBuf, detail: String },
}

impl fmt::Display for PcapIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { path, source } => {
                write!(f, "cannot open capture {}: {source}", path.display())
            }
            Self::NotPcap { path, detail } => write!(
                f,
                "{} is not a classic pcap file ({detail}); expected a pcap with magic \
                 a1b2c3d4 or a1b23c4d in either byte order (convert pcapng with \
                 `editcap -F pcap in.pcapng out.pcap`)",
                path.display()
            ),
            Self::UnsupportedLinktype { path, linktype } => write!(
                f,
                "{} has link type {linktype} ({:?}); only Ethernet (link type 1) can be replayed",
                path.display(),
                DataLink::from(*linktype)
            ),
            Self::TruncatedRecord { path, frame } => write!(
                f,
                "{}: the file ends inside the record of frame {frame} (counting from 1); \
                 the frames before it were replayed",
                path.display()
            ),
            Self::Read {
                path,
                frame,
                detail,
            } => write!(
                f,
                "{}: cannot read frame {frame} (counting from 1): {detail}",
                path.display()
            ),
            Self::Create { path, source } => {
                write!(f, "cannot create pcap {}: {source}", path.display())
            }
            Self::Write { path, detail } => {
                write!(f, "cannot write pcap {}: {detail}", path.display())
            }
        }
    }
}

impl std::error::Error for PcapIoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Open { source, .. } | Self::Create { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<PcapIoError> for io::Error {
    fn from(err: PcapIoError) -> Self {
        let kind = match &err {
            PcapIoError::Open { source, .. } | PcapIoError::Create { source, .. } => source.kind(),
            PcapIoError::NotPcap { .. }
            | PcapIoError::UnsupportedLinktype { .. }
            | PcapIoError::TruncatedRecord { .. } => io::ErrorKind::InvalidData,
            PcapIoError::Read { .. } | PcapIoError::Write { .. } => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

/// One output pcap.
#[derive(Debug)]
struct PcapSink {
    path: PathBuf,
    writer: PcapWriter<BufWriter<File>>,
}

impl PcapSink {
    fn create(path: &Path, ts_resolution: TsResolution) -> Result<Self, PcapIoError> {
        let file = File::create(path).map_err(|source| PcapIoError::Create {
            path: path.to_owned(),
            source,
        })?;
        let header = PcapHeader {
            snaplen: OUTPUT_SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(BufWriter::new(file), header)
            .map_err(|e| write_error(path, &e))?;
        Ok(Self {
            path: path.to_owned(),
            writer,
        })
    }

    fn write(&mut self, stamp: Stamp, data: &[u8]) -> Result<(), PcapIoError> {
        let incl_len = data.len() as u32;
        let record = RawPcapPacket {
            ts_sec: stamp.sec,
            ts_frac: stamp.frac,
            incl_len,
            // A frame cut short by the capture's snaplen stays cut short by
            // as much, even if the pipeline changed its length.
            orig_len: incl_len.saturating_add(stamp.missing),
            data: Cow::Borrowed(data),
        };
        self.writer
            .write_raw_packet(&record)
            .map(drop)
            .map_err(|e| write_error(&self.path, &e))
    }

    fn finish(self) -> Result<(), PcapIoError> {
        self.writer
            .into_writer()
            .flush()
            .map_err(|e| write_error(&self.path, &e))
    }
}

fn write_error(path: &Path, err: &dyn fmt::Display) -> PcapIoError {
    PcapIoError::Write {
        path: path.to_owned(),
        detail: err.to_string(),
    }
}

/// A frame's timestamp as recorded (seconds and a fraction in the file's
/// resolution), and how many bytes the capture's snaplen cut from it.
#[derive(Debug, Clone, Copy, Default)]
struct Stamp {
    sec: u32,
    frac: u32,
    missing: u32,
}

impl Stamp {
    fn to_duration(self, resolution: TsResolution) -> Duration {
        let nanos = match resolution {
            TsResolution::MicroSecond => u64::from(self.frac) * 1000,
            TsResolution::NanoSecond => u64::from(self.frac),
        };
        // An out-of-range fraction (seen in the wild) carries into seconds.
        Duration::from_secs(u64::from(self.sec)) + Duration::from_nanos(nanos)
    }
}

/// The frame read ahead of the pipeline: its bytes sit in the buffer behind
/// the headroom.
#[derive(Debug, Clone, Copy)]
struct Staged {
    stamp: Stamp,
    len: usize,
}

/// Replays a pcap through the pipeline. See the module documentation.
#[derive(Debug)]
pub struct PcapIo {
    input: PathBuf,
    reader: PcapReader<File>,
    ts_resolution: TsResolution,
    output: PcapSink,
    host_output: Option<PcapSink>,
    dropped_output: Option<PcapSink>,
    buf: Vec<u8>,
    headroom: usize,
    /// Records read so far (one ahead of the pipeline), for error messages.
    frames_read: u64,
    /// Frames handed to the pipeline so far.
    frames_replayed: u64,
    staged: Option<Staged>,
    /// The last frame handed to the pipeline.
    current: Option<Stamp>,
    /// A read error met while reading ahead, reported once the frames before
    /// it have been replayed.
    pending_error: Option<PcapIoError>,
}

impl PcapIo {
    /// Opens the input (checking that it is an Ethernet pcap), creates the
    /// outputs, and reads the first frame ahead.
    pub fn open(config: PcapIoConfig) -> Result<Self, PcapIoError> {
        let input = config.input;
        let file = File::open(&input).map_err(|source| PcapIoError::Open {
            path: input.clone(),
            source,
        })?;
        let reader = PcapReader::new(file).map_err(|e| header_error(&input, e))?;
        let header = reader.header();
        if header.datalink != DataLink::ETHERNET {
            return Err(PcapIoError::UnsupportedLinktype {
                path: input,
                linktype: header.datalink.into(),
            });
        }
        let ts_resolution = header.ts_resolution;
        let sink = |path: &Option<PathBuf>| {
            path.as_deref()
                .map(|p| PcapSink::create(p, ts_resolution))
                .transpose()
        };
        let mut io = Self {
            output: PcapSink::create(&config.output, ts_resolution)?,
            host_output: sink(&config.host_output)?,
            dropped_output: sink(&config.dropped_output)?,
            input,
            reader,
            ts_resolution,
            buf: vec![0; config.buf_size.max(config.headroom)],
            headroom: config.headroom,
            frames_read: 0,
            frames_replayed: 0,
            staged: None,
            current: None,
            pending_error: None,
        };
        io.read_ahead();
        Ok(io)
    }

    /// Timestamp of the last frame handed to the pipeline (`None` before the
    /// first): the replay's clock.
    pub fn current_timestamp(&self) -> Option<Duration> {
        self.current.map(|s| s.to_duration(self.ts_resolution))
    }

    /// Timestamp of the frame the next batch starts with, if there is one.
    pub fn next_timestamp(&self) -> Option<Duration> {
        self.staged.map(|s| s.stamp.to_duration(self.ts_resolution))
    }

    /// True when every frame has been handed out and no error is left to
    /// report: a further `run_batch` would return zero frames.
    pub fn is_exhausted(&self) -> bool {
        self.staged.is_none() && self.pending_error.is_none()
    }

    /// Frames handed to the pipeline so far.
    pub fn frames_replayed(&self) -> u64 {
        self.frames_replayed
    }

    /// Flushes and closes the output files.
    pub fn finish(self) -> Result<(), PcapIoError> {
        self.output.finish()?;
        if let Some(sink) = self.host_output {
            sink.finish()?;
        }
        if let Some(sink) = self.dropped_output {
            sink.finish()?;
        }
        Ok(())
    }

    /// Reads the next record into the buffer behind the headroom, or notes
    /// the end of the input or the error that stopped it.
    fn read_ahead(&mut self) {
        self.staged = None;
        let Some(next) = self.reader.next_raw_packet() else {
            return;
        };
        self.frames_read += 1;
        let raw = match next {
            Ok(raw) => raw,
            Err(err) => {
                self.pending_error = Some(read_error(&self.input, self.frames_read, err));
                return;
            }
        };
        // Frames cut by the capture's snaplen are replayed as captured.
        let len = raw.data.len();
        let needed = self.headroom + len;
        if self.buf.len() < needed {
            self.buf.resize(needed, 0);
        }
        self.buf[self.headroom..needed].copy_from_slice(&raw.data);
        self.staged = Some(Staged {
            stamp: Stamp {
                sec: raw.ts_sec,
                frac: raw.ts_frac,
                missing: raw.orig_len.saturating_sub(raw.incl_len),
            },
            len,
        });
    }
}

fn header_error(path: &Path, err: PcapError) -> PcapIoError {
    match err {
        PcapError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => PcapIoError::NotPcap {
            path: path.to_owned(),
            detail: "shorter than the 24-byte pcap file header".to_owned(),
        },
        PcapError::IoError(e) => PcapIoError::Read {
            path: path.to_owned(),
            frame: 0,
            detail: e.to_string(),
        },
        PcapError::InvalidField(_) => {
            let detail = if starts_with(path, PCAPNG_MAGIC) {
                "it is pcapng".to_owned()
            } else {
                "wrong magic number".to_owned()
            };
            PcapIoError::NotPcap {
                path: path.to_owned(),
                detail,
            }
        }
        other => PcapIoError::NotPcap {
            path: path.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// Whether the file at `path` begins with `magic` (read again only to
/// explain an error).
fn starts_with(path: &Path, magic: [u8; 4]) -> bool {
    let mut first = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut first))
        .is_ok_and(|()| first == magic)
}

fn read_error(path: &Path, frame: u64, err: PcapError) -> PcapIoError {
    match err {
        PcapError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            PcapIoError::TruncatedRecord {
                path: path.to_owned(),
                frame,
            }
        }
        other => PcapIoError::Read {
            path: path.to_owned(),
            frame,
            detail: other.to_string(),
        },
    }
}

impl PacketIo for PcapIo {
    /// Replays up to `budget` frames. Host and dropped frames go to their
    /// pcaps when configured and are discarded otherwise; there is no host
    /// input, so `host_to_wire` is always zero. A read error is returned by
    /// the first batch that has no frame before it.
    fn run_batch<H: FrameHandler>(
        &mut self,
        budget: usize,
        mut handler: H,
    ) -> io::Result<BatchCounts> {
        let mut counts = BatchCounts::default();
        while counts.from_wire < budget {
            let Some(staged) = self.staged else {
                break;
            };
            // One frame at a time: prefetching ahead buys nothing here.
            let mut frame = Frame::new(&mut self.buf, self.headroom, staged.len);
            let verdict = handler.decide(&mut frame);
            let (head, len) = (frame.head(), frame.len());
            let data = &self.buf[head..head + len];
            counts.from_wire += 1;
            let sink = match verdict {
                Verdict::ToWire => {
                    counts.to_wire += 1;
                    Some(&mut self.output)
                }
                Verdict::ToHost => {
                    counts.to_host += 1;
                    self.host_output.as_mut()
                }
                Verdict::Drop(_) => {
                    counts.dropped += 1;
                    self.dropped_output.as_mut()
                }
                // The pipeline kept a copy; it comes back through `transmit_copy`.
                Verdict::Held => {
                    counts.held += 1;
                    None
                }
            };
            if let Some(sink) = sink {
                sink.write(staged.stamp, data)?;
            }
            self.current = Some(staged.stamp);
            self.frames_replayed += 1;
            self.read_ahead();
        }
        if counts.from_wire == 0 {
            if let Some(err) = self.pending_error.take() {
                return Err(err.into());
            }
        }
        Ok(counts)
    }

    /// Writes `bytes` to the output pcap with the current frame's timestamp
    /// (zero before the first frame). Never full.
    fn transmit_copy(&mut self, bytes: &[u8]) -> io::Result<bool> {
        let stamp = Stamp {
            missing: 0,
            ..self.current.unwrap_or_default()
        };
        self.output.write(stamp, bytes)?;
        Ok(true)
    }

    /// Never blocks: a capture has no time to wait for.
    fn wait(&mut self, _timeout: Duration) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
