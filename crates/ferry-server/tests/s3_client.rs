//! The S3 client against a real 3-node Garage cluster on loopback: objects, ranged reads,
//! listings with paging and delimiters, odd keys, folder markers, multipart uploads (with
//! UploadPartCopy, abort, and the listing of pending uploads), copies, the errors `check`
//! tells apart, and a node lost under the client.
//!
//! The tests share one cluster (started by the first, stopped at exit); each works under a
//! prefix of its own. The node-loss test runs a cluster of its own.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ferry_server::storage::s3::{S3Client, S3Error};
use support::garage::GarageCluster;

const MIB: usize = 1 << 20;

/// The shared cluster, `None` (and the test skipped) when Garage is not installed.
fn cluster() -> Option<&'static GarageCluster> {
    static CLUSTER: OnceLock<Option<GarageCluster>> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| GarageCluster::start(3)).as_ref();
    if cluster.is_none() {
        support::skip("garage is not installed (GARAGE_BIN, PATH or /root/.cargo/bin)");
    }
    cluster
}

/// `len` bytes that differ from offset to offset (and from `seed` to `seed`).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// The whole body of a GET from `start`.
async fn read(client: &S3Client, key: &str, start: u64) -> Vec<u8> {
    let mut body = client.get(key, start).await.unwrap();
    let mut data = Vec::new();
    while let Some(chunk) = body.chunk().await.unwrap() {
        data.extend_from_slice(&chunk);
    }
    assert_eq!(data.len() as u64, body.size, "{key} from {start}");
    data
}

/// Every key and prefix under `prefix`, page after page.
async fn list_all(
    client: &S3Client,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: u32,
) -> (Vec<String>, Vec<String>, usize) {
    let (mut keys, mut prefixes, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut next: Option<String> = None;
    loop {
        let page = client
            .list(prefix, delimiter, next.as_deref(), max_keys)
            .await
            .unwrap();
        pages += 1;
        keys.extend(page.objects.into_iter().map(|o| o.key));
        prefixes.extend(page.prefixes);
        next = page.next;
        if next.is_none() || pages > 100 {
            return (keys, prefixes, pages);
        }
    }
}

/// `open` from each offset: the size and ETag HEAD gives, and the bytes from the offset, in
/// one GET (a HEAD only at or past the end).
#[tokio::test]
async fn open_gives_what_head_and_get_give() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client(0);
    let data = pattern(300_000, 3);
    client
        .put("open/data.bin", Bytes::from(data.clone()))
        .await
        .unwrap();
    client.put("open/empty", Bytes::new()).await.unwrap();
    let head = client.head("open/data.bin").await.unwrap().unwrap();
    for start in [0usize, 1, 123_457, 299_999, 300_000, 400_000] {
        let opened = client.open("open/data.bin", start as u64).await.unwrap();
        let opened = opened.unwrap();
        assert_eq!(
            (opened.size, &opened.etag),
            (head.size, &head.etag),
            "from {start}"
        );
        let mut body = opened.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.chunk().await.unwrap() {
            bytes.extend_from_slice(&chunk);
        }
        assert_eq!(bytes, data[start.min(data.len())..], "from {start}");
    }
    let empty = client.open("open/empty", 0).await.unwrap().unwrap();
    assert_eq!(empty.size, 0);
    assert!(client.open("open/missing", 0).await.unwrap().is_none());
    assert!(client.open("open/missing", 10).await.unwrap().is_none());
}

#[tokio::test]
async fn put_head_get_delete() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client(0);
    let data = pattern(300_000, 1);
    let before = SystemTime::now() - Duration::from_secs(5);
    client
        .put("objects/data.bin", Bytes::from(data.clone()))
        .await
        .unwrap();
    let head = client.head("objects/data.bin").await.unwrap().unwrap();
    assert_eq!(head.size, data.len() as u64);
    assert!(head.modified > before && head.modified < SystemTime::now() + Duration::from_secs(5));
    assert!(head.etag.len() >= 32, "{head:?}");

    assert_eq!(read(&client, "objects/data.bin", 0).await, data);
    assert_eq!(
        read(&client, "objects/data.bin", 123_457).await,
        &data[123_457..]
    );
    assert_eq!(
        read(&client, "objects/data.bin", 299_999).await,
        &data[299_999..]
    );
    // At or past the end: an empty body, as a resumed download of a whole file gets.
    assert!(read(&client, "objects/data.bin", 300_000).await.is_empty());
    assert!(read(&client, "objects/data.bin", 400_000).await.is_empty());

    // Another node sees the same object.
    assert_eq!(read(&cluster.client(1), "objects/data.bin", 0).await, data);

    // Replacing, and the empty object.
    client
        .put("objects/data.bin", Bytes::from_static(b"short"))
        .await
        .unwrap();
    assert_eq!(read(&client, "objects/data.bin", 0).await, b"short");
    client.put("objects/empty", Bytes::new()).await.unwrap();
    assert_eq!(client.head("objects/empty").await.unwrap().unwrap().size, 0);
    assert!(read(&client, "objects/empty", 0).await.is_empty());

    client.delete("objects/data.bin").await.unwrap();
    assert_eq!(client.head("objects/data.bin").await.unwrap(), None);
    assert_eq!(
        client.get("objects/data.bin", 0).await.unwrap_err(),
        S3Error::NotFound
    );
    // Deleting what is not there succeeds, as on S3.
    client.delete("objects/data.bin").await.unwrap();
    client.delete("objects/empty").await.unwrap();
}

#[tokio::test]
async fn listings_come_in_pages_with_every_key_once() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client(1);
    let keys: BTreeSet<String> = (0..2_500).map(|i| format!("paging/key-{i:05}")).collect();
    let limit = Arc::new(tokio::sync::Semaphore::new(32));
    let mut puts = tokio::task::JoinSet::new();
    for key in &keys {
        let (client, limit, key) = (client.clone(), Arc::clone(&limit), key.clone());
        puts.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            client.put(&key, Bytes::from(key.clone())).await.unwrap();
        });
    }
    while let Some(done) = puts.join_next().await {
        done.unwrap();
    }

    let page = client.list("paging/", None, None, 1000).await.unwrap();
    assert_eq!(page.objects.len(), 1000);
    assert_eq!(page.objects[0].key, "paging/key-00000");
    assert_eq!(page.objects[0].size, "paging/key-00000".len() as u64);
    assert!(page.next.is_some());

    let (listed, prefixes, pages) = list_all(&client, "paging/", None, 1000).await;
    assert_eq!(pages, 3);
    assert!(prefixes.is_empty());
    assert_eq!(listed.len(), 2_500, "every key once");
    assert_eq!(listed.iter().cloned().collect::<BTreeSet<_>>(), keys);

    // With a delimiter the whole set is one prefix.
    let (listed, prefixes, pages) = list_all(&client, "", Some("/"), 1000).await;
    assert!(prefixes.contains(&"paging/".to_string()), "{prefixes:?}");
    assert!(!listed.iter().any(|k| k.starts_with("paging/")));
    assert!(pages < 3);
}

#[tokio::test]
async fn folder_markers_and_delimiters() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client(2);
    for key in [
        "tree/a.txt",
        "tree/sub/b.txt",
        "tree/sub/deeper/c.txt",
        "tree/other/d.txt",
    ] {
        client.put(key, Bytes::from_static(b"x")).await.unwrap();
    }
    // A folder marker: a zero-byte object whose key ends with '/'.
    client.put("tree/empty/", Bytes::new()).await.unwrap();
    let marker = client.head("tree/empty/").await.unwrap().unwrap();
    assert_eq!(marker.size, 0);

    let page = client.list("tree/", Some("/"), None, 1000).await.unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["tree/a.txt"]);
    assert_eq!(page.prefixes, ["tree/empty/", "tree/other/", "tree/sub/"]);
    assert_eq!(page.next, None);

    // Inside the marked folder, the marker itself is the one object.
    let page = client
        .list("tree/empty/", Some("/"), None, 1000)
        .await
        .unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["tree/empty/"]);
    assert!(page.prefixes.is_empty());

    let page = client
        .list("tree/sub/", Some("/"), None, 1000)
        .await
        .unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["tree/sub/b.txt"]);
    assert_eq!(page.prefixes, ["tree/sub/deeper/"]);

    let (all, _, _) = list_all(&client, "tree/", None, 2).await;
    assert_eq!(all.len(), 5);
}

#[tokio::test]
async fn odd_keys_round_trip() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client(0);
    let keys = [
        "odd/a b.txt",
        "odd/two  spaces ",
        "odd/100%.txt",
        "odd/%20literal",
        "odd/#hash",
        "odd/[brackets]",
        "odd/plus+sign",
        "odd/what?x=1&y=2",
        "odd/ü€😀 日本",
        "odd/a&b<c>'\"",
        "odd/semi;colon,comma=eq",
        "odd/~tilde*star(paren)!",
        "odd/back\\slash",
        "odd/tab\tand\u{1}control",
        "odd/.hidden",
        "odd/dir with space/inner+file",
    ];
    for key in keys {
        client.put(key, Bytes::from(key.to_string())).await.unwrap();
    }
    let (listed, _, _) = list_all(&client, "odd/", None, 1000).await;
    let expected: BTreeSet<&str> = keys.into_iter().collect();
    assert_eq!(
        listed.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        expected
    );
    for key in keys {
        assert_eq!(read(&client, key, 0).await, key.as_bytes(), "{key:?}");
        assert!(client.head(key).await.unwrap().is_some(), "{key:?}");
    }
    // Prefixes and delimiters with odd characters too.
    let page = client
        .list("odd/dir with space/", Some("/"), None, 1000)
        .await
        .unwrap();
    assert_eq!(page.objects[0].key, "odd/dir with space/inner+file");
    let page = client.list("odd/", Some("/"), None, 1000).await.unwrap();
    assert_eq!(page.prefixes, ["odd/dir with space/"]);
    // Keys a URL cannot carry are refused before anything is sent.
    assert!(matches!(
        client.put("odd/../escape", Bytes::new()).await,
        Err(S3Error::Invalid(_))
    ));
}

#[tokio::test]
async fn multipart_upload_reads_back_byte_exact() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client(1);
    let key = "multipart/big file.bin";
    let parts = [
        pattern(5 * MIB, 10),
        pattern(5 * MIB, 20),
        pattern(MIB + 7, 30),
    ];
    let upload_id = client.create_multipart(key).await.unwrap();
    let mut etags = Vec::new();
    for (number, part) in (1..).zip(&parts) {
        let etag = client
            .upload_part(key, &upload_id, number, Bytes::from(part.clone()))
            .await
            .unwrap();
        etags.push((number, etag));
    }
    // Nothing shows before completion.
    assert_eq!(client.head(key).await.unwrap(), None);
    client
        .complete_multipart(key, &upload_id, &etags)
        .await
        .unwrap();

    let whole = parts.concat();
    let head = client.head(key).await.unwrap().unwrap();
    assert_eq!(head.size, whole.len() as u64);
    assert!(head.etag.trim_matches('"').ends_with("-3"), "{head:?}");
    assert!(read(&client, key, 0).await == whole);
    assert!(read(&client, key, 5 * MIB as u64 + 3).await == whole[5 * MIB + 3..]);
    let pending = client
        .list_multipart_uploads("multipart/", None)
        .await
        .unwrap();
    assert!(pending.uploads.is_empty(), "{pending:?}");
    // Completing again: the upload is gone.
    assert_eq!(
        client.complete_multipart(key, &upload_id, &etags).await,
        Err(S3Error::NoSuchUpload)
    );
}

#[tokio::test]
async fn upload_part_copy_appends_to_an_object() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client(2);
    let source = "append/src ä+#.bin";
    let original = pattern(6 * MIB, 40);
    client
        .put(source, Bytes::from(original.clone()))
        .await
        .unwrap();

    // REST 5 MiB + STOR: keep the first 5 MiB, then new bytes, under the same key.
    let tail = pattern(MIB / 2, 50);
    let upload_id = client.create_multipart(source).await.unwrap();
    let head = client
        .upload_part_copy(source, &upload_id, 1, source, 0..5 * MIB as u64)
        .await
        .unwrap();
    let new = client
        .upload_part(source, &upload_id, 2, Bytes::from(tail.clone()))
        .await
        .unwrap();
    client
        .complete_multipart(source, &upload_id, &[(1, head), (2, new)])
        .await
        .unwrap();
    let expected = [&original[..5 * MIB], &tail[..]].concat();
    assert!(read(&client, source, 0).await == expected);

    // A copied range from the middle, into another key.
    let upload_id = client.create_multipart("append/middle").await.unwrap();
    let etag = client
        .upload_part_copy("append/middle", &upload_id, 1, source, 1000..3000)
        .await
        .unwrap();
    client
        .complete_multipart("append/middle", &upload_id, &[(1, etag)])
        .await
        .unwrap();
    assert_eq!(
        read(&client, "append/middle", 0).await,
        &expected[1000..3000]
    );

    // A missing source, and an empty range.
    let upload_id = client.create_multipart("append/none").await.unwrap();
    assert_eq!(
        client
            .upload_part_copy("append/none", &upload_id, 1, "append/missing", 0..10)
            .await,
        Err(S3Error::NotFound)
    );
    assert!(matches!(
        client
            .upload_part_copy("append/none", &upload_id, 1, source, 5..5)
            .await,
        Err(S3Error::Invalid(_))
    ));
    client
        .abort_multipart("append/none", &upload_id)
        .await
        .unwrap();
}

#[tokio::test]
async fn abort_leaves_nothing_and_pending_uploads_are_listed() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client(0);
    let key = "pending/up load+1";
    let before = SystemTime::now() - Duration::from_secs(5);
    let upload_id = client.create_multipart(key).await.unwrap();
    client
        .upload_part(key, &upload_id, 1, Bytes::from(pattern(1000, 60)))
        .await
        .unwrap();

    let page = client
        .list_multipart_uploads("pending/", None)
        .await
        .unwrap();
    assert_eq!(page.uploads.len(), 1, "{page:?}");
    let pending = &page.uploads[0];
    assert_eq!(
        (pending.key.as_str(), pending.upload_id.as_str()),
        (key, upload_id.as_str())
    );
    assert!(pending.initiated > before);
    assert!(pending.initiated < SystemTime::now() + Duration::from_secs(5));
    assert_eq!(page.next, None);
    // Another node knows it too.
    let elsewhere = cluster.client(1);
    let page = elsewhere
        .list_multipart_uploads("pending/", None)
        .await
        .unwrap();
    assert_eq!(page.uploads.len(), 1);

    client.abort_multipart(key, &upload_id).await.unwrap();
    // The listing may lag the abort by a moment (a range read of the cluster's tables, which
    // a node that took the abort late can answer): bounded wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = client
            .list_multipart_uploads("pending/", None)
            .await
            .unwrap();
        if page.uploads.is_empty() || std::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.uploads.is_empty(), "{page:?}");
    assert_eq!(client.head(key).await.unwrap(), None);
    let (listed, _, _) = list_all(&client, "pending/", None, 1000).await;
    assert!(listed.is_empty());
    assert_eq!(
        client.abort_multipart(key, &upload_id).await,
        Err(S3Error::NoSuchUpload)
    );
    assert_eq!(
        client
            .upload_part(key, &upload_id, 2, Bytes::from_static(b"late"))
            .await,
        Err(S3Error::NoSuchUpload)
    );
}

#[tokio::test]
async fn pending_uploads_come_in_pages() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client(2);
    // Garage answers at most 1000 uploads a page: 3 fit in one, and the marker resumes.
    let mut ids = BTreeSet::new();
    for i in 0..3 {
        let key = format!("uploads-paging/k{i}");
        ids.insert((key.clone(), client.create_multipart(&key).await.unwrap()));
    }
    let page = client
        .list_multipart_uploads("uploads-paging/", None)
        .await
        .unwrap();
    let listed: BTreeSet<(String, String)> = page
        .uploads
        .iter()
        .map(|u| (u.key.clone(), u.upload_id.clone()))
        .collect();
    assert_eq!(listed, ids);
    let (first_key, first_id) = ids.first().unwrap();
    let after_first = client
        .list_multipart_uploads("uploads-paging/", Some((first_key, first_id)))
        .await
        .unwrap();
    assert_eq!(after_first.uploads.len(), 2, "{after_first:?}");
    for (key, id) in &ids {
        client.abort_multipart(key, id).await.unwrap();
    }
}

#[tokio::test]
async fn copy_within_the_bucket() {
    let Some(cluster) = cluster() else { return };
    let client = cluster.client(1);
    let data = pattern(70_000, 70);
    client
        .put("copy/from [1].bin", Bytes::from(data.clone()))
        .await
        .unwrap();
    client
        .copy("copy/from [1].bin", "copy/to ü+%.bin")
        .await
        .unwrap();
    assert!(read(&client, "copy/to ü+%.bin", 0).await == data);
    assert!(read(&client, "copy/from [1].bin", 0).await == data);
    assert_eq!(
        client.copy("copy/missing", "copy/nowhere").await,
        Err(S3Error::NotFound)
    );
    assert_eq!(client.head("copy/nowhere").await.unwrap(), None);
}

#[tokio::test]
async fn check_tells_the_errors_apart() {
    let Some(cluster) = cluster() else { return };
    cluster.client(0).check().await.unwrap();

    let mut wrong_secret = cluster.s3_config(0);
    wrong_secret.secret_key = "0".repeat(64);
    let error = S3Client::new(wrong_secret)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(matches!(error, S3Error::AccessDenied(_)), "{error:?}");

    let mut wrong_key = cluster.s3_config(0);
    wrong_key.access_key = "GK000000000000000000000000".into();
    let error = S3Client::new(wrong_key).unwrap().check().await.unwrap_err();
    assert!(matches!(error, S3Error::AccessDenied(_)), "{error:?}");

    let mut no_bucket = cluster.s3_config(1);
    no_bucket.bucket = "no-such-bucket".into();
    let error = S3Client::new(no_bucket).unwrap().check().await.unwrap_err();
    assert_eq!(error, S3Error::NoSuchBucket);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut unreachable = cluster.s3_config(0);
    unreachable.endpoint = format!("http://127.0.0.1:{port}");
    unreachable.retries = 1;
    let error = S3Client::new(unreachable)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(matches!(error, S3Error::Unreachable(_)), "{error:?}");
    assert!(error.is_transient());
}

#[tokio::test]
async fn the_cluster_survives_a_dead_node() {
    let Some(mut cluster) = GarageCluster::start(3) else {
        support::skip("garage is not installed (GARAGE_BIN, PATH or /root/.cargo/bin)");
        return;
    };
    let data = pattern(2 * MIB, 80);
    cluster
        .client(0)
        .put("survive/before", Bytes::from(data.clone()))
        .await
        .unwrap();

    cluster.kill(0);
    let (one, two) = (cluster.client(1), cluster.client(2));
    assert!(read(&one, "survive/before", 0).await == data);
    two.put(
        "survive/during",
        Bytes::from_static(b"written with a node down"),
    )
    .await
    .unwrap();
    assert_eq!(
        read(&one, "survive/during", 0).await,
        b"written with a node down"
    );
    let (listed, _, _) = list_all(&two, "survive/", None, 1000).await;
    assert_eq!(listed, ["survive/before", "survive/during"]);
    // The dead node's endpoint: refused at once, retried, then reported.
    let mut dead = cluster.s3_config(0);
    dead.retries = 1;
    let error = S3Client::new(dead).unwrap().check().await.unwrap_err();
    assert!(matches!(error, S3Error::Unreachable(_)), "{error:?}");

    // Back up: it serves what was written while it was away.
    cluster.restart(0);
    let zero = cluster.client(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match zero.get("survive/during", 0).await {
            Ok(_) => break,
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        read(&zero, "survive/during", 0).await,
        b"written with a node down"
    );
}
