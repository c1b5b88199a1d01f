//! Goal: a server started in-process answers the bootstrap-to-consume path of a Kafka client.
//! Method: start on 127.0.0.1:0 with a temp data dir, then speak raw frames built with
//! weir-wire's client codec: ApiVersions v3, Metadata, CreateTopics, Produce acks=1, Fetch.

use crate::common;

use common::{batch, InProcess};

#[test]
fn api_versions_metadata_create_produce_fetch() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = InProcess::start(data_dir.path());
    let mut client = server.connect();

    let apis = client.api_versions(3);
    assert!(
        apis.iter().any(|&(key, _, _)| key == 0),
        "Produce advertised: {apis:?}"
    );
    assert!(
        apis.iter().any(|&(key, _, _)| key == 1),
        "Fetch advertised: {apis:?}"
    );

    let metadata = client.metadata();
    assert_eq!(metadata.brokers.len(), 1);
    let broker = &metadata.brokers[0];
    // The advertised address is the bound one, so clients can reconnect to it.
    assert_eq!(format!("{}:{}", broker.host, broker.port), server.address);

    let created = client.create_topic("smoke", 1);
    assert_eq!(created.topics[0].error.0, 0, "{created:?}");

    let (error, base_offset) = client.produce("smoke", 1, batch("a", 5));
    assert_eq!((error, base_offset), (0, 0));
    let (error, base_offset) = client.produce("smoke", 1, batch("b", 3));
    assert_eq!((error, base_offset), (0, 5));

    let (error, high_watermark, records) = client.fetch("smoke", 0);
    assert_eq!(error, 0);
    assert_eq!(high_watermark, 8);
    let values: Vec<String> = records
        .iter()
        .map(|record| String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into())
        .collect();
    assert_eq!(
        values,
        ["a-0", "a-1", "a-2", "a-3", "a-4", "b-0", "b-1", "b-2"]
    );
    let offsets: Vec<i64> = records.iter().map(|record| record.offset).collect();
    assert_eq!(offsets, (0..8).collect::<Vec<i64>>());

    // Fetching from the middle of a batch returns that whole batch (the client skips).
    let (_, _, records) = client.fetch("smoke", 6);
    assert_eq!(records.first().map(|record| record.offset), Some(5));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    // Goal: responses come back in request order even when several are in flight.
    // Method: write ten produce requests back to back, then read ten responses and check
    // their correlation ids and increasing base offsets.
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = InProcess::start(data_dir.path());
    let mut client = server.connect();
    assert_eq!(client.create_topic("pipeline", 1).topics[0].error.0, 0);
    let mut headers = Vec::new();
    for index in 0..10 {
        let header = client.header(0, 9);
        client.send(
            &header,
            &common::produce_request("pipeline", -1, batch(&index.to_string(), 2)),
        );
        headers.push(header);
    }
    for (index, header) in headers.iter().enumerate() {
        let frame = client.read_frame().expect("response");
        let response = weir_wire::codec::decode_response(header, frame).expect("in order");
        let weir_wire::domain::ApiResponse::Produce(produce) = response else {
            panic!("not a produce response")
        };
        assert_eq!(
            produce.topics[0].partitions[0].base_offset,
            2 * index as i64
        );
    }
}

#[test]
fn acks_zero_produce_gets_no_response() {
    // Goal: acks=0 produce is never answered on the wire, yet is stored.
    // Method: send an acks=0 produce followed by a Metadata request; the first frame read
    // back must be the Metadata response; a fetch then sees the records.
    let data_dir = tempfile::tempdir().expect("temp dir");
    let server = InProcess::start(data_dir.path());
    let mut client = server.connect();
    assert_eq!(client.create_topic("fire", 1).topics[0].error.0, 0);
    let produce_header = client.header(0, 9);
    client.send(
        &produce_header,
        &common::produce_request("fire", 0, batch("x", 4)),
    );
    let metadata = client.metadata();
    assert!(metadata
        .topics
        .iter()
        .any(|topic| topic.name.as_deref() == Some("fire")));
    let records = client.fetch_all("fire", 4);
    assert_eq!(records.len(), 4);
}
