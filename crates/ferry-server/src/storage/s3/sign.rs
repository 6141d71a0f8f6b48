//! AWS Signature Version 4 (header form) and the encodings and dates it needs.
//!
//! Written from the AWS documentation ("Authenticating Requests: Using the Authorization
//! Header", "Signature Calculations for the Authorization Header"): a canonical request, a
//! string to sign, a key derived from the secret by four HMACs, and an `Authorization` header.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The `x-amz-content-sha256` value of a request whose body is not hashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// What a request is signed with. The secret never leaves this module.
#[derive(Clone)]
pub struct Signer {
    pub access_key: String,
    secret_key: String,
    pub region: String,
}

impl Signer {
    /// Whether `other` signs with the same key, secret and region.
    pub fn same_as(&self, other: &Signer) -> bool {
        (&self.access_key, &self.secret_key, &self.region)
            == (&other.access_key, &other.secret_key, &other.region)
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("region", &self.region)
            .finish()
    }
}

/// One request as it is signed.
pub struct Canonical<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The path, already URI-encoded (see [`uri_encode`]).
    pub path: &'a str,
    /// The query string, already canonical (see [`canonical_query`]).
    pub query: &'a str,
    /// The signed headers: lowercase names, trimmed values, sorted by name, `host` included.
    pub headers: &'a [(String, String)],
    /// The `x-amz-content-sha256` value.
    pub payload_hash: &'a str,
}

impl Signer {
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> Signer {
        Signer {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            region: region.to_string(),
        }
    }

    /// The `Authorization` header of `request` sent at `amz_date` (`YYYYMMDDTHHMMSSZ`).
    pub fn authorization(&self, request: &Canonical<'_>, amz_date: &str) -> String {
        let day = &amz_date[..8];
        let scope = format!("{day}/{}/s3/aws4_request", self.region);
        let signed_headers = signed_header_names(request.headers);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical_request(request).as_bytes()))
        );
        let signature = hex(&hmac(&self.signing_key(day), string_to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed_headers},Signature={signature}",
            self.access_key
        )
    }

    /// The key of one day, region and service: four chained HMACs from the secret.
    fn signing_key(&self, day: &str) -> Vec<u8> {
        let key = hmac(
            format!("AWS4{}", self.secret_key).as_bytes(),
            day.as_bytes(),
        );
        let key = hmac(&key, self.region.as_bytes());
        let key = hmac(&key, b"s3");
        hmac(&key, b"aws4_request")
    }
}

/// The canonical request: method, path, query, headers, signed header names, payload hash.
fn canonical_request(request: &Canonical<'_>) -> String {
    let mut text = format!("{}\n{}\n{}\n", request.method, request.path, request.query);
    for (name, value) in request.headers {
        let _ = writeln!(text, "{name}:{value}");
    }
    let _ = write!(
        text,
        "\n{}\n{}",
        signed_header_names(request.headers),
        request.payload_hash
    );
    text
}

/// `host;range;x-amz-date`: the header names, in order, joined by `;`.
fn signed_header_names(headers: &[(String, String)]) -> String {
    let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
    names.join(";")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// SigV4's URI encoding: the unreserved `A-Za-z0-9-._~` kept, every other byte of the UTF-8
/// as `%XX` (uppercase hex), and `/` kept when `keep_slash` (object key paths) or `%2F` (query
/// values).
pub fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                encoded.push(byte as char)
            }
            b'/' if keep_slash => encoded.push('/'),
            _ => {
                let _ = write!(encoded, "%{byte:02X}");
            }
        }
    }
    encoded
}

/// Decodes `%XX` escapes and, as S3's `encoding-type=url` writes a space as `+` (AWS) or `%20`
/// (Garage), `+` as a space: a literal `+` is always sent as `%2B`. `None` when the escapes are
/// malformed or the result is not UTF-8.
pub fn url_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                decoded.push(b' ');
                i += 1;
            }
            byte => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// The canonical query string: each name and value URI-encoded, sorted by name then value,
/// `name=value` joined by `&` (a parameter without a value is `name=`).
pub fn canonical_query(params: &[(&str, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| (uri_encode(name, false), uri_encode(value, false)))
        .collect();
    encoded.sort();
    let pairs: Vec<String> = encoded
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    pairs.join("&")
}

/// `YYYYMMDDTHHMMSSZ`, the `x-amz-date` form of a time (UTC, whole seconds).
pub fn amz_date(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let second_of_day = seconds % 86_400;
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Parses an ISO-8601 UTC time as S3 writes it in XML: `2026-12-05T21:15:00.000Z` (the
/// fraction optional, milliseconds kept).
pub fn parse_iso8601(text: &str) -> Option<SystemTime> {
    let text = text.trim().strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.splitn(3, ':');
    let hour: u64 = clock_parts.next()?.parse().ok()?;
    let minute: u64 = clock_parts.next()?.parse().ok()?;
    let second: u64 = clock_parts.next()?.parse().ok()?;
    if hour > 23 || minute > 59 || second > 60 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = format!("{fraction:0<9}").get(..9)?.parse::<u32>().ok()?;
    let seconds = day_seconds(year, month, day)? + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// Parses an HTTP date (RFC 7231 IMF-fixdate, as in `Last-Modified`):
/// `Sat, 05 Dec 2026 21:15:00 GMT`.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let (_, rest) = text.trim().split_once(", ")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, clock, "GMT"] = fields.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let iso = format!("{year}-{month:02}-{day}T{clock}Z");
    parse_iso8601(&iso)
}

/// Seconds from the epoch to midnight of a date; `None` for an impossible or pre-1970 date.
fn day_seconds(year: i64, month: u32, day: u32) -> Option<u64> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days).ok().map(|days| days * 86_400)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// well-known civil-calendar arithmetic: years counted from March, in 400-year eras).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day counted from 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SHA-256 of an empty body, hex.
    const EMPTY_PAYLOAD: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// "Example: GET Object" of the AWS S3 SigV4 documentation (header-based authentication).
    #[test]
    fn signs_the_documented_get_object_example() {
        let signer = Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        );
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_PAYLOAD),
            ("x-amz-date", "20130524T000000Z"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string()));
        let request = Canonical {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &headers,
            payload_hash: EMPTY_PAYLOAD,
        };
        assert_eq!(
            signer.authorization(&request, "20130524T000000Z"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn the_secret_is_not_in_debug_output() {
        let signer = Signer::new("AKID", "very-secret", "garage");
        assert!(!format!("{signer:?}").contains("very-secret"));
    }

    #[test]
    fn encodes_odd_keys() {
        assert_eq!(
            uri_encode("a b/c%d#e[f]+g?h", true),
            "a%20b/c%25d%23e%5Bf%5D%2Bg%3Fh"
        );
        assert_eq!(uri_encode("dir/", true), "dir/");
        assert_eq!(uri_encode("ü-._~", true), "%C3%BC-._~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(uri_encode("=&*", false), "%3D%26%2A");
    }

    #[test]
    fn decodes_what_it_encodes() {
        for key in ["a b/c%d#e[f]+g?h", "dir/", "ü € 😀", "100%", ""] {
            assert_eq!(url_decode(&uri_encode(key, false)).as_deref(), Some(key));
            assert_eq!(url_decode(&uri_encode(key, true)).as_deref(), Some(key));
        }
        assert_eq!(url_decode("a+b%2Bc").as_deref(), Some("a b+c"));
        assert_eq!(url_decode("bad%2"), None);
        assert_eq!(url_decode("bad%zz"), None);
        assert_eq!(url_decode("%FF"), None);
    }

    #[test]
    fn sorts_and_encodes_query_parameters() {
        let params = [
            ("prefix", "a b/".to_string()),
            ("list-type", "2".to_string()),
            ("uploads", String::new()),
            ("max-keys", "1000".to_string()),
        ];
        assert_eq!(
            canonical_query(&params),
            "list-type=2&max-keys=1000&prefix=a%20b%2F&uploads="
        );
    }

    #[test]
    fn formats_amz_dates() {
        assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(
            amz_date(UNIX_EPOCH + Duration::from_secs(1_369_353_600)),
            "20130524T000000Z"
        );
        // 2026-12-05 21:15:07 UTC, and a leap day.
        assert_eq!(
            amz_date(UNIX_EPOCH + Duration::from_secs(1_796_505_307)),
            "20261205T211507Z"
        );
        assert_eq!(
            amz_date(UNIX_EPOCH + Duration::from_secs(951_782_400 + 86_399)),
            "20000229T235959Z"
        );
    }

    #[test]
    fn parses_iso8601_times() {
        let expected = UNIX_EPOCH + Duration::from_secs(1_796_505_300);
        assert_eq!(parse_iso8601("2026-12-05T21:15:00.000Z"), Some(expected));
        assert_eq!(parse_iso8601("2026-12-05T21:15:00Z"), Some(expected));
        assert_eq!(
            parse_iso8601("2026-12-05T21:15:00.25Z"),
            Some(expected + Duration::from_millis(250))
        );
        assert_eq!(
            parse_iso8601("2000-02-29T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(951_782_400))
        );
        for bad in [
            "2026-12-05T21:15:00",
            "2026-13-05T21:15:00Z",
            "2026-02-29T00:00:00Z",
            "2026-12-05 21:15:00Z",
            "2026-12-05T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_dates_over_the_years() {
        for days in (0..100_000).step_by(37) {
            let time = UNIX_EPOCH + Duration::from_secs(days * 86_400 + 3_723);
            let text = amz_date(time);
            let iso = format!(
                "{}-{}-{}T{}:{}:{}Z",
                &text[0..4],
                &text[4..6],
                &text[6..8],
                &text[9..11],
                &text[11..13],
                &text[13..15]
            );
            assert_eq!(parse_iso8601(&iso), Some(time), "{iso}");
        }
    }

    #[test]
    fn parses_http_dates() {
        assert_eq!(
            parse_http_date("Sat, 05 Dec 2026 21:15:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_796_505_300))
        );
        assert_eq!(parse_http_date("Sat, 05 Dec 2026 21:15:00 UTC"), None);
        assert_eq!(parse_http_date("Sat, 05 Foo 2026 21:15:00 GMT"), None);
    }
}
