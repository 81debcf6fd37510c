//! What an HLS object is, by its name and (for playlists) its body:
//! `Content-Type` and the `Cache-Control` that fits it. Pure code.
//!
//! | object | `Cache-Control` |
//! |---|---|
//! | live playlist (no `EXT-X-ENDLIST`), multivariant playlist | `public, max-age=1` |
//! | VOD playlist (`EXT-X-ENDLIST`) | `public, max-age=31536000, immutable` |
//! | segment, part, init section, key, subtitle | `public, max-age=31536000, immutable` |
//! | anything else (e.g. JSON) | `public, max-age=60` |
//!
//! Segments are immutable because packagers never rewrite a published
//! segment name; a live playlist changes every target duration, so a one
//! second lifetime keeps players and caches at most a second behind.

/// `Content-Type` of HLS playlists.
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";
/// `Cache-Control` for live and multivariant playlists.
pub const CACHE_LIVE_PLAYLIST: &str = "public, max-age=1";
/// `Cache-Control` for objects that never change once published.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` for anything else.
pub const CACHE_OTHER: &str = "public, max-age=60";

/// The kind of object, from its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An `.m3u8` playlist.
    Playlist,
    /// Media: segments, parts, init sections, keys, subtitles.
    Media,
    /// Anything else.
    Other,
}

/// The object's kind and `Content-Type`, from its extension.
pub fn classify(extension: Option<&str>) -> (Kind, &'static str) {
    let ext = extension.unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "m3u8" | "m3u" => (Kind::Playlist, PLAYLIST_CONTENT_TYPE),
        "ts" => (Kind::Media, "video/mp2t"),
        "m4s" => (Kind::Media, "video/iso.segment"),
        "mp4" | "m4v" | "cmfv" => (Kind::Media, "video/mp4"),
        "m4a" | "cmfa" => (Kind::Media, "audio/mp4"),
        "aac" => (Kind::Media, "audio/aac"),
        "mp3" => (Kind::Media, "audio/mpeg"),
        "vtt" | "webvtt" => (Kind::Media, "text/vtt; charset=utf-8"),
        "key" => (Kind::Media, "application/octet-stream"),
        "json" => (Kind::Other, "application/json"),
        "jpg" | "jpeg" => (Kind::Media, "image/jpeg"),
        "png" => (Kind::Media, "image/png"),
        _ => (Kind::Other, "application/octet-stream"),
    }
}

/// Whether a playlist body is finished (VOD or an ended event): it holds an
/// `EXT-X-ENDLIST` tag line.
pub fn playlist_is_ended(body: &[u8]) -> bool {
    body.split(|&b| b == b'\n')
        .any(|line| line.trim_ascii().starts_with(b"#EXT-X-ENDLIST"))
}

/// The `Cache-Control` for an object; `playlist_body` is consulted only for playlists.
pub fn cache_control(kind: Kind, playlist_body: Option<&[u8]>) -> &'static str {
    match kind {
        Kind::Playlist if playlist_body.is_some_and(playlist_is_ended) => CACHE_IMMUTABLE,
        Kind::Playlist => CACHE_LIVE_PLAYLIST,
        Kind::Media => CACHE_IMMUTABLE,
        Kind::Other => CACHE_OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(classify(Some("m3u8")), (Kind::Playlist, PLAYLIST_CONTENT_TYPE));
        assert_eq!(classify(Some("TS")).1, "video/mp2t");
        assert_eq!(classify(Some("m4s")).1, "video/iso.segment");
        assert_eq!(classify(Some("mp4")).1, "video/mp4");
        assert_eq!(classify(Some("m4a")).1, "audio/mp4");
        assert_eq!(classify(Some("aac")).1, "audio/aac");
        assert_eq!(classify(Some("vtt")).1, "text/vtt; charset=utf-8");
        assert_eq!(classify(Some("webvtt")).1, "text/vtt; charset=utf-8");
        assert_eq!(classify(Some("key")).0, Kind::Media);
        assert_eq!(classify(Some("json")).1, "application/json");
        assert_eq!(classify(None).1, "application/octet-stream");
    }

    #[test]
    fn playlists_are_cached_by_liveness() {
        let live = b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n";
        let vod = b"#EXTM3U\r\n#EXTINF:2,\r\na.ts\r\n#EXT-X-ENDLIST\r\n";
        assert_eq!(cache_control(Kind::Playlist, Some(live)), CACHE_LIVE_PLAYLIST);
        assert_eq!(cache_control(Kind::Playlist, Some(vod)), CACHE_IMMUTABLE);
        assert_eq!(cache_control(Kind::Media, None), CACHE_IMMUTABLE);
        // A URI that merely contains the tag name does not end the playlist.
        let tricky = b"#EXTM3U\n#EXTINF:2,\nEXT-X-ENDLIST.ts\n";
        assert_eq!(cache_control(Kind::Playlist, Some(tricky)), CACHE_LIVE_PLAYLIST);
    }
}
