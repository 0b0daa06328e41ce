//! The office console's files, built into the console function's binary
//! (`shared/lambda/console/`): plain HTML, CSS and JavaScript, no framework,
//! nothing fetched from elsewhere at run time. Each is served gzipped to a
//! browser that takes it (API Gateway's HTTP APIs do not compress), and
//! with a strong `ETag`, so a returning browser revalidates with a 304 and
//! no body.

use std::sync::OnceLock;

/// One file of the console.
#[derive(Debug)]
pub struct Asset {
    /// The name in the URL (`/console/{name}`; the page itself is `""`).
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The file.
    pub body: &'static str,
}

/// Every file, the page first.
pub const ASSETS: [Asset; 3] = [
    Asset {
        name: "",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../console/index.html"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../console/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../console/console.js"),
    },
];

/// The file served under `name`.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

impl Asset {
    /// A strong validator: the first 16 hex digits of the body's SHA-256.
    pub fn etag(&self) -> &'static str {
        static TAGS: OnceLock<Vec<String>> = OnceLock::new();
        let tags = TAGS.get_or_init(|| {
            ASSETS
                .iter()
                .map(|a| format!("\"{}\"", &messaging_core::app::auth::hash_key(a.body)[..16]))
                .collect()
        });
        ASSETS
            .iter()
            .position(|a| a.name == self.name)
            .and_then(|i| tags.get(i))
            .map_or("\"\"", String::as_str)
    }
}

impl Asset {
    /// The file gzipped (best compression), made once per cold start.
    pub fn gzipped(&self) -> &'static [u8] {
        static GZIPPED: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let all = GZIPPED.get_or_init(|| ASSETS.iter().map(|a| gzip(a.body)).collect());
        ASSETS
            .iter()
            .position(|a| a.name == self.name)
            .and_then(|i| all.get(i))
            .map_or(&[], Vec::as_slice)
    }

    /// The `ETag` of the gzipped form (another representation, another tag).
    pub fn gzip_etag(&self) -> String {
        format!("{}-gz\"", self.etag().trim_end_matches('"'))
    }
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to memory cannot fail; an empty result would only mean the
    // plain file is sent instead.
    encoder
        .write_all(text.as_bytes())
        .and_then(|()| encoder.finish())
        .unwrap_or_default()
}

/// The bytes a first visit downloads: the page, its stylesheet and script,
/// plain and gzipped (what a browser gets).
pub fn first_load_bytes() -> (usize, usize) {
    (
        ASSETS.iter().map(|a| a.body.len()).sum(),
        ASSETS.iter().map(|a| a.gzipped().len()).sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_served_and_nothing_comes_from_elsewhere() {
        let page = find("").unwrap().body;
        for asset in ASSETS.iter().skip(1) {
            assert!(
                page.contains(&format!("console/{}", asset.name)),
                "{} is linked",
                asset.name
            );
        }
        for asset in &ASSETS {
            for outside in ["http://", "https://", "//cdn", "@import"] {
                assert!(
                    !asset.body.contains(outside),
                    "{} refers to {outside}",
                    asset.name
                );
            }
        }
        assert!(find("nope.js").is_none());
    }

    #[test]
    fn etags_differ_per_file_and_the_first_load_stays_small() {
        let tags: Vec<&str> = ASSETS.iter().map(Asset::etag).collect();
        assert_eq!(tags.len(), 3);
        assert!(tags[0] != tags[1] && tags[1] != tags[2]);
        assert!(tags.iter().all(|t| t.len() == 18));
        // docs/console.md states the figures; keep the console light for
        // an old PC on a slow line.
        let (plain, gzipped) = first_load_bytes();
        println!("first load: {plain} bytes, {gzipped} gzipped");
        assert!(plain < 120 * 1024, "first load is {plain} bytes");
        assert!(gzipped < 30 * 1024, "first load is {gzipped} bytes gzipped");
        for asset in &ASSETS {
            let mut plain = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::GzDecoder::new(asset.gzipped()),
                &mut plain,
            )
            .unwrap();
            assert_eq!(plain, asset.body);
            assert_ne!(asset.gzip_etag(), asset.etag());
        }
    }
}
