//! Goal: hostile or broken bytes affect only the connection that sent them.
//! Method: for each kind of bad input, send it on one connection, check that connection is
//! closed or answered with an error, then check a fresh connection still works.

use crate::common;

use std::io::Write;
use std::net::Shutdown;

use common::{Client, InProcess};

fn assert_server_healthy(server: &InProcess) {
    let mut client = server.connect();
    let apis = client.api_versions(3);
    assert!(!apis.is_empty());
    assert_eq!(client.metadata().brokers.len(), 1);
}

/// A request frame: header v1 (key, version, correlation id, null client id) + body.
fn raw_request(api_key: i16, api_version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&api_key.to_be_bytes());
    frame.extend_from_slice(&api_version.to_be_bytes());
    frame.extend_from_slice(&correlation_id.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes());
    frame.extend_from_slice(body);
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    out
}

/// Closed, or answered with a frame echoing `correlation_id`.
fn closed_or_answered(client: &mut Client, correlation_id: i32) {
    match client.read_frame() {
        None => {}
        Some(frame) => {
            assert!(frame.len() >= 4, "short response");
            let echoed = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            assert_eq!(
                echoed, correlation_id,
                "error response must echo the correlation id"
            );
        }
    }
}

#[test]
fn two_gib_length_prefix_closes_only_that_connection() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = InProcess::start(data_dir.path());
    let mut idle = server.connect();
    let mut client = server.connect();
    client
        .stream
        .write_all(&[0x7f, 0xff, 0xff, 0xff])
        .expect("write");
    assert!(client.is_closed_by_server());
    let mut negative = server.connect();
    negative
        .stream
        .write_all(&[0x80, 0x00, 0x00, 0x00])
        .expect("write");
    assert!(negative.is_closed_by_server());
    // Another, already open connection is unaffected.
    assert!(!idle.api_versions(3).is_empty());
    assert_server_healthy(&server);
}

#[test]
fn truncated_frame_closes_the_connection() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = InProcess::start(data_dir.path());
    let mut client = server.connect();
    client
        .stream
        .write_all(&100i32.to_be_bytes())
        .expect("write");
    client.stream.write_all(&[0u8; 10]).expect("write");
    client.stream.shutdown(Shutdown::Write).expect("half close");
    assert!(client.is_closed_by_server());
    assert_server_healthy(&server);
}

#[test]
fn garbage_bytes_close_or_error() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = InProcess::start(data_dir.path());
    let mut client = server.connect();
    let garbage: Vec<u8> = (0..64u32).map(|index| (index * 97 + 13) as u8).collect();
    let mut out = (garbage.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&garbage);
    client.stream.write_all(&out).expect("write");
    // Whatever the server makes of it, it must not hang or crash: closed or some answer.
    let _ = client.read_frame();
    // A valid Metadata header with a garbage body must also be refused cleanly.
    let mut client = server.connect();
    client
        .stream
        .write_all(&raw_request(3, 12, 41, &[0xff; 7]))
        .expect("write");
    closed_or_answered(&mut client, 41);
    assert_server_healthy(&server);
}

#[test]
fn unknown_api_key_closes_or_errors() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = InProcess::start(data_dir.path());
    let mut client = server.connect();
    client
        .stream
        .write_all(&raw_request(9999, 0, 7, &[]))
        .expect("write");
    closed_or_answered(&mut client, 7);
    assert_server_healthy(&server);
}

#[test]
fn unimplemented_api_is_answered_or_closed() {
    // JoinGroup (11) v5 is a real API Weir does not serve yet.
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = InProcess::start(data_dir.path());
    let mut client = server.connect();
    client
        .stream
        .write_all(&raw_request(11, 5, 8, &[0u8; 32]))
        .expect("write");
    closed_or_answered(&mut client, 8);
    assert_server_healthy(&server);
}

#[test]
fn produce_v2_is_refused_with_unsupported_version() {
    // Produce v0-2 are advertised (KAFKA-18659) but rejected; the connection stays usable
    // when an error response can be encoded.
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = InProcess::start(data_dir.path());
    let mut client = server.connect();
    // acks=1, timeout, empty topic array.
    let body = [0x00, 0x01, 0x00, 0x00, 0x13, 0x88, 0x00, 0x00, 0x00, 0x00];
    client
        .stream
        .write_all(&raw_request(0, 2, 9, &body))
        .expect("write");
    closed_or_answered(&mut client, 9);
    assert_server_healthy(&server);
}
