use std::fs;

use super::*;
use crate::verdict::DropReason;

/// One record as stored: seconds, fraction (file resolution), original
/// length, captured bytes.
type Record = (u32, u32, u32, Vec<u8>);

/// An Ethernet frame whose first payload byte (offset 14) is `marker`.
fn ethernet(marker: u8, payload_len: usize) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 0xB1, 0x02, 0, 0, 0, 0, 0xA1, 0x08, 0x00];
    frame.push(marker);
    frame.extend((1..payload_len).map(|i| i as u8));
    frame
}

fn write_pcap(
    path: &Path,
    datalink: DataLink,
    ts_resolution: TsResolution,
    endianness: Endianness,
    records: &[Record],
) {
    let header = PcapHeader {
        datalink,
        ts_resolution,
        endianness,
        ..PcapHeader::default()
    };
    let mut writer = PcapWriter::with_header(File::create(path).unwrap(), header).unwrap();
    for (sec, frac, orig_len, data) in records {
        writer
            .write_raw_packet(&RawPcapPacket {
                ts_sec: *sec,
                ts_frac: *frac,
                incl_len: data.len() as u32,
                orig_len: *orig_len,
                data: Cow::Borrowed(data),
            })
            .unwrap();
    }
}

fn read_pcap(path: &Path) -> (PcapHeader, Vec<Record>) {
    let mut reader = PcapReader::new(File::open(path).unwrap()).unwrap();
    let mut records = Vec::new();
    while let Some(raw) = reader.next_raw_packet() {
        let raw = raw.unwrap();
        records.push((raw.ts_sec, raw.ts_frac, raw.orig_len, raw.data.into_owned()));
    }
    (reader.header(), records)
}

fn record(sec: u32, frac: u32, data: Vec<u8>) -> Record {
    (sec, frac, data.len() as u32, data)
}

/// Marker byte 0 to the wire, 1 to the host, anything else dropped.
fn by_marker(frame: &mut Frame<'_>) -> Verdict {
    match frame.data().get(14) {
        Some(0) => Verdict::ToWire,
        Some(1) => Verdict::ToHost,
        _ => Verdict::Drop(DropReason::UnsupportedGreProtocol),
    }
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PcapIoConfig {
        PcapIoConfig {
            host_output: Some(self.path("host.pcap")),
            dropped_output: Some(self.path("dropped.pcap")),
            ..PcapIoConfig::new(self.path("in.pcap"), self.path("out.pcap"))
        }
    }

    fn input(&self, records: &[Record]) {
        write_pcap(
            &self.path("in.pcap"),
            DataLink::ETHERNET,
            TsResolution::NanoSecond,
            Endianness::Little,
            records,
        );
    }
}

fn replay_all(io: &mut PcapIo, budget: usize) -> BatchCounts {
    let mut total = BatchCounts::default();
    while !io.is_exhausted() {
        let c = io.run_batch(budget, by_marker).unwrap();
        total.from_wire += c.from_wire;
        total.to_wire += c.to_wire;
        total.to_host += c.to_host;
        total.dropped += c.dropped;
    }
    total
}

#[test]
fn each_verdict_is_written_to_its_pcap_with_the_input_timestamp() {
    let files = Files::new();
    let input = [
        record(100, 1, ethernet(0, 40)),
        record(100, 2, ethernet(1, 41)),
        record(101, 999_999_999, ethernet(2, 42)),
        record(102, 0, ethernet(0, 43)),
    ];
    files.input(&input);
    let mut io = PcapIo::open(files.config()).unwrap();

    let counts = replay_all(&mut io, 3);
    io.finish().unwrap();

    assert_eq!(
        (
            counts.from_wire,
            counts.to_wire,
            counts.to_host,
            counts.dropped
        ),
        (4, 2, 1, 1)
    );
    let (out_header, out) = read_pcap(&files.path("out.pcap"));
    let (host_header, host) = read_pcap(&files.path("host.pcap"));
    let (_, dropped) = read_pcap(&files.path("dropped.pcap"));
    assert_eq!(out, [input[0].clone(), input[3].clone()]);
    assert_eq!(host, [input[1].clone()]);
    assert_eq!(dropped, [input[2].clone()]);
    for header in [out_header, host_header] {
        assert_eq!(header.datalink, DataLink::ETHERNET);
        assert_eq!(header.ts_resolution, TsResolution::NanoSecond);
    }
}

#[test]
fn microsecond_captures_keep_microsecond_timestamps() {
    let files = Files::new();
    let input = [record(7, 123_456, ethernet(0, 20))];
    write_pcap(
        &files.path("in.pcap"),
        DataLink::ETHERNET,
        TsResolution::MicroSecond,
        Endianness::Big,
        &input,
    );
    let mut io = PcapIo::open(files.config()).unwrap();
    assert_eq!(io.next_timestamp(), Some(Duration::new(7, 123_456_000)));
    replay_all(&mut io, 8);
    assert_eq!(io.current_timestamp(), Some(Duration::new(7, 123_456_000)));
    io.finish().unwrap();
    let (header, out) = read_pcap(&files.path("out.pcap"));
    assert_eq!(header.ts_resolution, TsResolution::MicroSecond);
    assert_eq!(out, input);
}

#[test]
fn the_clock_follows_the_frames_handed_out() {
    let files = Files::new();
    files.input(&[
        record(1, 5, ethernet(0, 20)),
        record(2, 6, ethernet(0, 20)),
        record(3, 7, ethernet(0, 20)),
    ]);
    let mut io = PcapIo::open(files.config()).unwrap();
    assert_eq!(io.current_timestamp(), None);
    assert_eq!(io.next_timestamp(), Some(Duration::new(1, 5)));
    assert!(!io.is_exhausted());

    assert_eq!(io.run_batch(2, by_marker).unwrap().from_wire, 2);
    assert_eq!(io.current_timestamp(), Some(Duration::new(2, 6)));
    assert_eq!(io.next_timestamp(), Some(Duration::new(3, 7)));
    assert_eq!(io.frames_replayed(), 2);

    assert_eq!(io.run_batch(2, by_marker).unwrap().from_wire, 1);
    assert!(io.is_exhausted());
    assert_eq!(io.next_timestamp(), None);
    assert_eq!(io.run_batch(2, by_marker).unwrap(), BatchCounts::default());
}

#[test]
fn an_empty_capture_gives_zero_frames() {
    let files = Files::new();
    files.input(&[]);
    let mut io = PcapIo::open(files.config()).unwrap();
    assert!(io.is_exhausted());
    assert_eq!(io.run_batch(64, by_marker).unwrap(), BatchCounts::default());
    io.finish().unwrap();
    let (header, out) = read_pcap(&files.path("out.pcap"));
    assert_eq!(header.datalink, DataLink::ETHERNET);
    assert!(out.is_empty());
}

#[test]
fn frames_get_headroom_and_encapsulation_shows_in_the_output() {
    let files = Files::new();
    let original = ethernet(0, 30);
    files.input(&[record(1, 0, original.clone())]);
    let mut io = PcapIo::open(files.config()).unwrap();
    let mut headroom = 0;
    io.run_batch(1, |frame: &mut Frame<'_>| {
        headroom = frame.headroom();
        assert!(frame.push_front(4));
        frame.data_mut()[..4].copy_from_slice(b"GRE!");
        Verdict::ToWire
    })
    .unwrap();
    io.finish().unwrap();
    assert_eq!(headroom, 128);
    let (_, out) = read_pcap(&files.path("out.pcap"));
    let mut expected = b"GRE!".to_vec();
    expected.extend(&original);
    assert_eq!(out, [record(1, 0, expected)]);
}

#[test]
fn snaplen_truncated_frames_are_replayed_as_captured() {
    let files = Files::new();
    let captured = ethernet(0, 50);
    files.input(&[(9, 0, 1514, captured.clone())]);
    let mut io = PcapIo::open(files.config()).unwrap();
    let mut seen_len = 0;
    io.run_batch(1, |frame: &mut Frame<'_>| {
        seen_len = frame.len();
        Verdict::ToWire
    })
    .unwrap();
    io.finish().unwrap();
    assert_eq!(seen_len, captured.len());
    let (_, out) = read_pcap(&files.path("out.pcap"));
    assert_eq!(out, [(9, 0, 1514, captured)]);
}

#[test]
fn frames_larger_than_the_buffer_are_replayed_whole() {
    let files = Files::new();
    let jumbo = ethernet(0, 9000);
    files.input(&[record(1, 0, jumbo.clone())]);
    let mut io = PcapIo::open(files.config()).unwrap();
    replay_all(&mut io, 1);
    io.finish().unwrap();
    assert_eq!(read_pcap(&files.path("out.pcap")).1, [record(1, 0, jumbo)]);
}

#[test]
fn without_host_and_dropped_pcaps_those_frames_are_only_counted() {
    let files = Files::new();
    let wire = record(1, 0, ethernet(0, 20));
    files.input(&[
        wire.clone(),
        record(2, 0, ethernet(1, 20)),
        record(3, 0, ethernet(2, 20)),
    ]);
    let mut io = PcapIo::open(PcapIoConfig::new(
        files.path("in.pcap"),
        files.path("out.pcap"),
    ))
    .unwrap();
    let counts = replay_all(&mut io, 8);
    io.finish().unwrap();
    assert_eq!((counts.to_host, counts.dropped), (1, 1));
    assert_eq!(read_pcap(&files.path("out.pcap")).1, [wire]);
    assert!(!files.path("host.pcap").exists());
}

#[test]
fn transmit_copy_writes_to_the_output_at_the_current_time() {
    let files = Files::new();
    files.input(&[record(5, 50, ethernet(2, 20))]);
    let mut io = PcapIo::open(files.config()).unwrap();
    assert!(io.transmit_copy(b"early").unwrap());
    io.run_batch(1, by_marker).unwrap();
    assert!(io.transmit_copy(b"held").unwrap());
    io.wait(Duration::from_secs(10)).unwrap();
    io.finish().unwrap();
    let (_, out) = read_pcap(&files.path("out.pcap"));
    assert_eq!(
        out,
        [
            record(0, 0, b"early".to_vec()),
            record(5, 50, b"held".to_vec())
        ]
    );
}

#[test]
fn a_missing_input_is_an_error_naming_the_path() {
    let files = Files::new();
    let err = PcapIo::open(files.config()).unwrap_err();
    assert!(matches!(err, PcapIoError::Open { .. }));
    assert!(err.to_string().contains("in.pcap"), "{err}");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::NotFound);
}

#[test]
fn a_file_that_is_not_a_pcap_is_refused() {
    let files = Files::new();
    fs::write(
        files.path("in.pcap"),
        "this is a text file, not a capture\n",
    )
    .unwrap();
    let err = PcapIo::open(files.config()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, PcapIoError::NotPcap { .. }));
    assert!(message.contains("in.pcap"), "{message}");
    assert!(message.contains("wrong magic number"), "{message}");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidData);
}

#[test]
fn a_file_shorter_than_a_pcap_header_is_refused() {
    let files = Files::new();
    fs::write(files.path("in.pcap"), [0xD4, 0xC3, 0xB2, 0xA1, 2, 0]).unwrap();
    let err = PcapIo::open(files.config()).unwrap_err();
    assert!(err.to_string().contains("shorter than"), "{err}");
    fs::write(files.path("in.pcap"), []).unwrap();
    assert!(matches!(
        PcapIo::open(files.config()),
        Err(PcapIoError::NotPcap { .. })
    ));
}

#[test]
fn a_pcapng_file_is_refused_with_a_conversion_hint() {
    let files = Files::new();
    let mut bytes = PCAPNG_MAGIC.to_vec();
    bytes.extend([0x1C, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A]);
    bytes.resize(28, 0);
    fs::write(files.path("in.pcap"), bytes).unwrap();
    let message = PcapIo::open(files.config()).unwrap_err().to_string();
    assert!(message.contains("it is pcapng"), "{message}");
    assert!(message.contains("editcap"), "{message}");
}

#[test]
fn a_non_ethernet_linktype_is_refused_by_number() {
    let files = Files::new();
    write_pcap(
        &files.path("in.pcap"),
        DataLink::LINUX_SLL,
        TsResolution::MicroSecond,
        Endianness::Little,
        &[record(1, 0, vec![0; 20])],
    );
    let err = PcapIo::open(files.config()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, PcapIoError::UnsupportedLinktype { linktype: 113, .. }),
        "{message}"
    );
    assert!(message.contains("link type 113"), "{message}");
    assert!(message.contains("in.pcap"), "{message}");
    assert!(message.contains("Ethernet"), "{message}");
}

#[test]
fn a_capture_cut_inside_a_record_replays_the_frames_before_then_errors() {
    let files = Files::new();
    let first = record(1, 0, ethernet(0, 20));
    files.input(&[first.clone(), record(2, 0, ethernet(0, 20))]);
    let path = files.path("in.pcap");
    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..full.len() - 5]).unwrap();

    let mut io = PcapIo::open(files.config()).unwrap();
    assert_eq!(io.run_batch(8, by_marker).unwrap().from_wire, 1);
    assert!(!io.is_exhausted(), "the error is still to be reported");
    let err = io.run_batch(8, by_marker).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let message = err.to_string();
    assert!(message.contains("frame 2"), "{message}");
    assert!(message.contains("in.pcap"), "{message}");
    assert!(io.is_exhausted());
    io.finish().unwrap();
    assert_eq!(read_pcap(&files.path("out.pcap")).1, [first]);
}

#[test]
fn an_uncreatable_output_is_an_error_naming_it() {
    let files = Files::new();
    files.input(&[]);
    let config = PcapIoConfig {
        output: files.path("no/such/dir/out.pcap"),
        ..files.config()
    };
    let message = PcapIo::open(config).unwrap_err().to_string();
    assert!(message.contains("no/such/dir/out.pcap"), "{message}");
}
