//! The validity period of an X.509 certificate (RFC 5280 §4.1.2.5), read from its DER form,
//! for certificates accepted as themselves (see [`super::verify`]): webpki checks dates only
//! while building a chain, which a self-signed CA certificate used by a server never gets.

/// The `notBefore` and `notAfter` times of a certificate, in seconds since the epoch (UTC);
/// `None` if the DER is not a certificate this reader understands.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    // Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, ... }
    let (certificate, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(certificate, SEQUENCE)?;
    // TBSCertificate ::= SEQUENCE { version [0] EXPLICIT OPTIONAL, serialNumber, signature,
    //   issuer, validity, ... }
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs, VERSION)?.1;
    }
    let (_, rest) = element(tbs, INTEGER)?;
    let (_, rest) = element(rest, SEQUENCE)?;
    let (_, rest) = element(rest, SEQUENCE)?;
    // Validity ::= SEQUENCE { notBefore Time, notAfter Time }
    let (validity, _) = element(rest, SEQUENCE)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Some((not_before, not_after))
}

const INTEGER: u8 = 0x02;
const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The content of the DER element at the start of `input` if its tag is `tag`, and what
/// follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7f);
            let bytes = rest.get(..count)?;
            let length = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
            (length, &rest[count..])
        }
        _ => return None,
    };
    let content = rest.get(..length)?;
    Some((content, &rest[length..]))
}

/// A UTCTime or GeneralizedTime, in seconds since the epoch, and what follows it.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (text, year) = match *input.first()? {
        UTC_TIME => {
            let (text, rest) = element(input, UTC_TIME)?;
            let year = digits(text.get(..2)?)?;
            // RFC 5280: YY below 50 is 20YY, else 19YY.
            let year = if year < 50 { 2000 + year } else { 1900 + year };
            ((&text[2..], rest), year)
        }
        GENERALIZED_TIME => {
            let (text, rest) = element(input, GENERALIZED_TIME)?;
            ((&text[4..], rest), digits(text.get(..4)?)?)
        }
        _ => return None,
    };
    let (text, rest) = text;
    // MMDDHHMMSSZ
    if text.len() != 11 || text[10] != b'Z' {
        return None;
    }
    let field = |at: usize| digits(&text[at..at + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second, rest))
}

fn digits(text: &[u8]) -> Option<i64> {
    text.iter().try_fold(0i64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (the well-known
/// era-based conversion: 400-year eras of 146,097 days).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 5), 20_792);
    }

    #[test]
    fn reads_both_time_forms() {
        let utc = [
            UTC_TIME, 13, b'2', b'6', b'1', b'2', b'0', b'5', b'2', b'3', b'5', b'9',
        ]
        .iter()
        .chain(b"00Z")
        .copied()
        .collect::<Vec<u8>>();
        let (seconds, rest) = time(&utc).unwrap();
        assert_eq!(seconds, 20_792 * 86_400 + 23 * 3600 + 59 * 60);
        assert!(rest.is_empty());
        let mut generalized = vec![GENERALIZED_TIME, 15];
        generalized.extend_from_slice(b"20500101000000Z");
        assert_eq!(
            time(&generalized).unwrap().0,
            days_from_civil(2050, 1, 1) * 86_400
        );
        assert!(time(&[UTC_TIME, 3, b'9', b'9', b'Z']).is_none());
    }

    #[test]
    fn a_generated_certificate_has_its_dates() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 2, 29);
        params.not_after = rcgen::date_time_ymd(2061, 7, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (not_before, not_after) = validity(cert.der()).unwrap();
        assert_eq!(not_before, days_from_civil(2020, 2, 29) * 86_400);
        assert_eq!(not_after, days_from_civil(2061, 7, 1) * 86_400);
        assert!(validity(&cert.der()[..40]).is_none());
        assert!(validity(b"").is_none());
    }
}
