//! The XML documents of the S3 API the client reads and writes.
//!
//! Listings are asked for with `encoding-type=url`, so that any key (even one with characters
//! XML 1.0 cannot hold) comes back intact; keys, prefixes and markers are decoded here.

use std::time::SystemTime;

use quick_xml::events::Event;
use serde::Deserialize;

use super::sign::{parse_iso8601, url_decode};
use super::S3Error;

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    /// The full key.
    pub key: String,
    pub size: u64,
    pub modified: SystemTime,
}

/// One page of a ListObjectsV2 listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<ObjectEntry>,
    /// With a delimiter: the common prefixes (each ending with the delimiter).
    pub prefixes: Vec<String>,
    /// The continuation token of the next page, when there is one.
    pub next: Option<String>,
}

/// A multipart upload created and neither completed nor aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated: SystemTime,
}

/// One page of ListMultipartUploads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadsPage {
    pub uploads: Vec<PendingUpload>,
    /// `(key marker, upload id marker)` of the next page, when there is one.
    pub next: Option<(String, String)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    contents: Vec<XmlObject>,
    #[serde(default)]
    common_prefixes: Vec<XmlPrefix>,
    #[serde(default)]
    is_truncated: bool,
    next_continuation_token: Option<String>,
    encoding_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlObject {
    key: String,
    size: u64,
    last_modified: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlPrefix {
    prefix: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(default, rename = "Upload")]
    uploads: Vec<XmlUpload>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
    encoding_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlUpload {
    key: String,
    upload_id: String,
    initiated: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPartsResult {
    #[serde(default, rename = "Part")]
    parts: Vec<XmlPart>,
    #[serde(default)]
    is_truncated: bool,
    next_part_number_marker: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlPart {
    last_modified: String,
}

/// One page of ListParts, as far as a sweep needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartsPage {
    /// When the newest part on the page was uploaded.
    pub newest: Option<SystemTime>,
    /// The part-number marker of the next page, when there is one.
    pub next: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateMultipartUploadResult {
    upload_id: String,
}

/// `CopyObjectResult` and `CopyPartResult` both hold the new ETag.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CopyResult {
    #[serde(rename = "ETag")]
    etag: String,
}

fn parse<'a, T: Deserialize<'a>>(what: &str, body: &'a str) -> Result<T, S3Error> {
    quick_xml::de::from_str(body).map_err(|e| S3Error::BadResponse(format!("{what}: {e}")))
}

/// A key, prefix or marker as listed: decoded when the listing is URL-encoded.
fn listed_name(text: String, url_encoded: bool) -> Result<String, S3Error> {
    if !url_encoded {
        return Ok(text);
    }
    url_decode(&text).ok_or_else(|| S3Error::BadResponse(format!("badly encoded key {text:?}")))
}

fn time(text: &str) -> Result<SystemTime, S3Error> {
    parse_iso8601(text).ok_or_else(|| S3Error::BadResponse(format!("bad time {text:?}")))
}

/// A ListObjectsV2 answer.
pub fn list_page(body: &str) -> Result<ListPage, S3Error> {
    let result: ListBucketResult = parse("ListBucketResult", body)?;
    let encoded = result.encoding_type.as_deref() == Some("url");
    let objects = result
        .contents
        .into_iter()
        .map(|o| {
            Ok(ObjectEntry {
                key: listed_name(o.key, encoded)?,
                size: o.size,
                modified: time(&o.last_modified)?,
            })
        })
        .collect::<Result<_, S3Error>>()?;
    let prefixes = result
        .common_prefixes
        .into_iter()
        .map(|p| listed_name(p.prefix, encoded))
        .collect::<Result<_, S3Error>>()?;
    let next = match (result.is_truncated, result.next_continuation_token) {
        (true, Some(token)) if !token.is_empty() => Some(token),
        (true, _) => {
            return Err(S3Error::BadResponse(
                "truncated listing without a token".into(),
            ))
        }
        (false, _) => None,
    };
    Ok(ListPage {
        objects,
        prefixes,
        next,
    })
}

/// A ListMultipartUploads answer.
pub fn uploads_page(body: &str) -> Result<UploadsPage, S3Error> {
    let result: ListMultipartUploadsResult = parse("ListMultipartUploadsResult", body)?;
    let encoded = result.encoding_type.as_deref() == Some("url");
    let uploads = result
        .uploads
        .into_iter()
        .map(|u| {
            Ok(PendingUpload {
                key: listed_name(u.key, encoded)?,
                upload_id: u.upload_id,
                initiated: time(&u.initiated)?,
            })
        })
        .collect::<Result<_, S3Error>>()?;
    let next = match (result.is_truncated, result.next_key_marker) {
        (true, Some(key)) => Some((
            listed_name(key, encoded)?,
            result.next_upload_id_marker.unwrap_or_default(),
        )),
        (true, None) => {
            return Err(S3Error::BadResponse(
                "truncated upload listing without a marker".into(),
            ))
        }
        (false, _) => None,
    };
    Ok(UploadsPage { uploads, next })
}

/// A ListParts answer.
pub fn parts_page(body: &str) -> Result<PartsPage, S3Error> {
    let result: ListPartsResult = parse("ListPartsResult", body)?;
    let newest = result
        .parts
        .iter()
        .map(|part| time(&part.last_modified))
        .collect::<Result<Vec<_>, S3Error>>()?
        .into_iter()
        .max();
    let next = match (result.is_truncated, result.next_part_number_marker) {
        (true, Some(marker)) => Some(marker),
        (true, None) => {
            return Err(S3Error::BadResponse(
                "truncated part listing without a marker".into(),
            ))
        }
        (false, _) => None,
    };
    Ok(PartsPage { newest, next })
}

/// The upload id of an InitiateMultipartUploadResult.
pub fn upload_id(body: &str) -> Result<String, S3Error> {
    let result: InitiateMultipartUploadResult = parse("InitiateMultipartUploadResult", body)?;
    Ok(result.upload_id)
}

/// The ETag of a CopyObjectResult or CopyPartResult.
pub fn copy_etag(body: &str) -> Result<String, S3Error> {
    let result: CopyResult = parse("copy result", body)?;
    Ok(result.etag)
}

/// `(Code, Message)` of an `<Error>` document.
pub fn error(body: &str) -> Option<(String, String)> {
    let error: XmlError = quick_xml::de::from_str(body).ok()?;
    Some((error.code, error.message))
}

/// The name of the document's root element (`Error`, `CompleteMultipartUploadResult`, ...):
/// S3 may answer 200 to a copy or a completion and still report an error in the body.
pub fn root_name(body: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(body);
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) | Event::Empty(start) => {
                return Some(String::from_utf8_lossy(start.local_name().as_ref()).into_owned())
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// The CompleteMultipartUpload request body.
pub fn complete_body(parts: &[(u32, String)]) -> String {
    let mut body = String::from("<CompleteMultipartUpload>");
    for (number, etag) in parts {
        body.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            quick_xml::escape::escape(etag.as_str())
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn parses_a_parts_page() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>
  <PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>
  <MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2026-12-06T10:00:00.000Z</LastModified>
    <ETag>"a"</ETag><Size>5242880</Size></Part>
  <Part><PartNumber>2</PartNumber><LastModified>2026-12-06T11:00:00.000Z</LastModified>
    <ETag>"b"</ETag><Size>5242880</Size></Part>
</ListPartsResult>"#;
        let page = parts_page(body).unwrap();
        assert_eq!(page.next, Some(2));
        assert_eq!(page.newest, parse_iso8601("2026-12-06T11:00:00.000Z"));
        let empty = r#"<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>"#;
        assert_eq!(parts_page(empty).unwrap(), PartsPage::default());
    }

    #[test]
    fn parses_a_url_encoded_listing() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>ferry</Name><Prefix>a%20b/</Prefix><KeyCount>3</KeyCount><MaxKeys>2</MaxKeys>
  <Delimiter>/</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <ContinuationToken>abc</ContinuationToken><NextContinuationToken>x+y/z=</NextContinuationToken>
  <Contents><Key>a%20b/%C3%BC%2B1%25.txt</Key><LastModified>2026-12-05T21:15:00.000Z</LastModified>
    <ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>a+b/dir/</Key><LastModified>2026-12-05T21:15:01.500Z</LastModified>
    <ETag>"x"</ETag><Size>0</Size></Contents>
  <CommonPrefixes><Prefix>a%20b/sub%23/</Prefix></CommonPrefixes>
</ListBucketResult>"#;
        let page = list_page(body).unwrap();
        let base = UNIX_EPOCH + Duration::from_secs(1_796_505_300);
        assert_eq!(
            page.objects,
            vec![
                ObjectEntry {
                    key: "a b/ü+1%.txt".into(),
                    size: 12,
                    modified: base
                },
                ObjectEntry {
                    key: "a b/dir/".into(),
                    size: 0,
                    modified: base + Duration::from_millis(1500)
                },
            ]
        );
        assert_eq!(page.prefixes, vec!["a b/sub#/".to_string()]);
        // The token is opaque: never decoded.
        assert_eq!(page.next.as_deref(), Some("x+y/z="));
    }

    #[test]
    fn parses_a_plain_last_page() {
        let body = "<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated>\
                    <Contents><Key>a&amp;b</Key><LastModified>2026-12-05T21:15:00Z</LastModified>\
                    <Size>3</Size></Contents></ListBucketResult>";
        let page = list_page(body).unwrap();
        assert_eq!(page.objects[0].key, "a&b");
        assert!(page.prefixes.is_empty());
        assert_eq!(page.next, None);
        let empty =
            list_page("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
        assert_eq!(empty.unwrap(), ListPage::default());
    }

    #[test]
    fn refuses_broken_listings() {
        for body in [
            "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
            "<ListBucketResult><Contents><Key>k</Key><Size>x</Size>\
             <LastModified>2026-12-05T21:15:00Z</LastModified></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>k</Key><Size>1</Size>\
             <LastModified>yesterday</LastModified></Contents></ListBucketResult>",
            "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>%zz</Key>\
             <Size>1</Size><LastModified>2026-12-05T21:15:00Z</LastModified></Contents></ListBucketResult>",
            "not xml",
        ] {
            assert!(
                matches!(list_page(body), Err(S3Error::BadResponse(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn parses_multipart_upload_listings() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>ferry</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>big%20file</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>
  <EncodingType>url</EncodingType><MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>a%2Bb</Key><UploadId>u1</UploadId>
    <Initiator><ID>k</ID><DisplayName>k</DisplayName></Initiator>
    <StorageClass>STANDARD</StorageClass><Initiated>2026-12-05T21:15:00.000Z</Initiated></Upload>
  <Upload><Key>big%20file</Key><UploadId>u2</UploadId><Initiated>2026-12-05T21:16:00.000Z</Initiated></Upload>
</ListMultipartUploadsResult>"#;
        let page = uploads_page(body).unwrap();
        let base = UNIX_EPOCH + Duration::from_secs(1_796_505_300);
        assert_eq!(
            page.uploads,
            vec![
                PendingUpload {
                    key: "a+b".into(),
                    upload_id: "u1".into(),
                    initiated: base
                },
                PendingUpload {
                    key: "big file".into(),
                    upload_id: "u2".into(),
                    initiated: base + Duration::from_secs(60)
                },
            ]
        );
        assert_eq!(page.next, Some(("big file".into(), "u2".into())));
        let none = uploads_page(
            "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
        );
        assert_eq!(none.unwrap(), UploadsPage::default());
    }

    #[test]
    fn parses_errors_and_results() {
        let error_body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>
<Resource>/ferry/x</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>"#;
        assert_eq!(
            error(error_body),
            Some((
                "NoSuchKey".into(),
                "The specified key does not exist.".into()
            ))
        );
        assert_eq!(root_name(error_body).as_deref(), Some("Error"));
        assert_eq!(error("garbage <"), None);

        let initiate = r#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Bucket>ferry</Bucket><Key>big</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(upload_id(initiate).unwrap(), "VXBsb2FkIElE");
        assert_eq!(
            root_name(initiate).as_deref(),
            Some("InitiateMultipartUploadResult")
        );
        assert!(matches!(
            upload_id("<InitiateMultipartUploadResult/>"),
            Err(S3Error::BadResponse(_))
        ));

        let copy = "<CopyPartResult><LastModified>2026-12-05T21:15:00.000Z</LastModified>\
                    <ETag>&quot;abc&quot;</ETag></CopyPartResult>";
        assert_eq!(copy_etag(copy).unwrap(), "\"abc\"");
    }

    #[test]
    fn writes_the_completion_body() {
        assert_eq!(
            complete_body(&[(1, "\"a\"".into()), (2, "b&c".into())]),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>b&amp;c</ETag></Part></CompleteMultipartUpload>"
        );
    }
}
