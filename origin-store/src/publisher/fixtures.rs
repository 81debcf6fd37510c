//! The demo media, embedded in the binary, and its rendition table.
//!
//! `fixtures/make-fixtures.sh` encodes a 12-second test pattern into three
//! renditions of twelve one-second MPEG-TS segments each, and measures the
//! table below into `fixtures/media/renditions.txt`. Each rendition comes from
//! one ffmpeg run, so consecutive segments are byte-concatenable; the
//! publisher builds a segment of D seconds from D consecutive fixtures. A unit
//! test fails when this table and the measured one disagree.

/// Length of the source loop in seconds.
pub(crate) const LOOP_SECS: u64 = 12;

/// Duration of each fixture segment in seconds (exact: 25 frames at 25 fps).
pub(crate) const FIXTURE_SEGMENT_SECS: u64 = 1;

/// Number of fixture segments in one loop of each rendition.
pub(crate) const FIXTURE_SEGMENTS: usize = (LOOP_SECS / FIXTURE_SEGMENT_SECS) as usize;

/// One rendition of the demo media: what the multivariant playlist says
/// about it, and its segments.
pub(crate) struct Rendition {
    /// Directory name in the store, e.g. `240p`.
    pub(crate) name: &'static str,
    /// Picture width in pixels.
    pub(crate) width: u64,
    /// Picture height in pixels.
    pub(crate) height: u64,
    /// RFC 6381 codecs string, read from the H.264 SPS and the AAC profile.
    pub(crate) codecs: &'static str,
    /// Peak bit rate of any one-second segment, MPEG-TS overhead included.
    /// Any longer segment averages over one-second ones, so this bounds it.
    pub(crate) bandwidth: u64,
    /// Bit rate over the whole loop, MPEG-TS overhead included.
    pub(crate) average_bandwidth: u64,
    /// Frames per second.
    pub(crate) frame_rate: f64,
    /// The one-second segments of one loop, in order.
    pub(crate) segments: [&'static [u8]; FIXTURE_SEGMENTS],
}

macro_rules! loop_segments {
    ($dir:literal) => {
        [
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-00.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-01.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-02.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-03.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-04.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-05.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-06.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-07.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-08.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-09.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-10.ts")),
            include_bytes!(concat!("../../fixtures/media/", $dir, "/seg-11.ts")),
        ]
    };
}

/// The renditions, lowest bit rate first. Copied from
/// `fixtures/media/renditions.txt`.
pub(crate) static RENDITIONS: [Rendition; 3] = [
    Rendition {
        name: "240p",
        width: 426,
        height: 240,
        codecs: "avc1.42c015,mp4a.40.2",
        bandwidth: 276_000,
        average_bandwidth: 248_000,
        frame_rate: 25.0,
        segments: loop_segments!("240p"),
    },
    Rendition {
        name: "360p",
        width: 640,
        height: 360,
        codecs: "avc1.4d401e,mp4a.40.2",
        bandwidth: 507_000,
        average_bandwidth: 413_000,
        frame_rate: 25.0,
        segments: loop_segments!("360p"),
    },
    Rendition {
        name: "480p",
        width: 854,
        height: 480,
        codecs: "avc1.64001f,mp4a.40.2",
        bandwidth: 775_000,
        average_bandwidth: 694_000,
        frame_rate: 25.0,
        segments: loop_segments!("480p"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    const MEASURED: &str = include_str!("../../fixtures/media/renditions.txt");
    const TS_PACKET: usize = 188;

    #[test]
    fn table_matches_the_measured_fixtures() {
        let rows: Vec<Vec<&str>> = MEASURED
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert_eq!(rows.len(), RENDITIONS.len(), "one row per rendition");
        for (row, r) in rows.iter().zip(RENDITIONS.iter()) {
            let expected = vec![
                r.name.to_owned(),
                r.width.to_string(),
                r.height.to_string(),
                r.codecs.to_owned(),
                r.bandwidth.to_string(),
                r.average_bandwidth.to_string(),
                r.frame_rate.to_string(),
                FIXTURE_SEGMENT_SECS.to_string(),
                FIXTURE_SEGMENTS.to_string(),
            ];
            assert_eq!(
                row, &expected,
                "RENDITIONS disagrees with fixtures/media/renditions.txt; copy the new values over"
            );
        }
    }

    #[test]
    fn segments_are_whole_transport_stream_packets() {
        for r in &RENDITIONS {
            for (i, seg) in r.segments.iter().enumerate() {
                assert!(!seg.is_empty(), "{} segment {i} is empty", r.name);
                assert_eq!(seg.len() % TS_PACKET, 0, "{} segment {i} length", r.name);
                assert!(
                    seg.chunks(TS_PACKET).all(|p| p[0] == 0x47),
                    "{} segment {i} lost MPEG-TS sync",
                    r.name
                );
            }
        }
    }

    #[test]
    fn bandwidth_bounds_every_segment_and_the_ladder_is_distinct() {
        for r in &RENDITIONS {
            let bits: Vec<u64> = r.segments.iter().map(|s| s.len() as u64 * 8).collect();
            let peak = bits.iter().copied().max().unwrap_or(0) / FIXTURE_SEGMENT_SECS;
            let average = bits.iter().sum::<u64>() / LOOP_SECS;
            assert!(r.bandwidth >= peak, "{}: {} < peak {peak}", r.name, r.bandwidth);
            assert!(r.average_bandwidth >= average, "{}", r.name);
            assert!(r.average_bandwidth <= r.bandwidth, "{}", r.name);
        }
        for pair in RENDITIONS.windows(2) {
            assert!(pair[0].bandwidth < pair[1].bandwidth);
            assert!(pair[0].height < pair[1].height);
            assert_ne!(pair[0].codecs, pair[1].codecs);
        }
    }
}
