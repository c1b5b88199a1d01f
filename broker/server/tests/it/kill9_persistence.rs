//! Goal: every record acknowledged with acks=all survives a SIGKILL of the broker.
//! Method: run the real `weir` binary on a temp data dir, produce acks=all batches, kill -9
//! it mid-stream (no shutdown code runs), restart on the same dir and fetch everything.

use crate::common;

use common::{batch, Process};

#[test]
fn acked_records_survive_kill_9() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let batch_count = 50;
    let records_per_batch = 20;
    {
        let server = Process::spawn(data_dir.path());
        let mut client = common::Client::connect(&server.address);
        assert_eq!(client.create_topic("durable", 1).topics[0].error.0, 0);
        for index in 0..batch_count {
            let (error, base_offset) = client.produce(
                "durable",
                -1,
                batch(&format!("b{index}"), records_per_batch),
            );
            assert_eq!(error, 0, "produce {index}");
            assert_eq!(base_offset, (index * records_per_batch) as i64);
        }
        server.kill_9();
    }
    let server = Process::spawn(data_dir.path());
    let mut client = common::Client::connect(&server.address);
    let expected = batch_count * records_per_batch;
    let records = client.fetch_all("durable", expected);
    assert_eq!(records.len(), expected, "acked records lost after kill -9");
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record.offset, index as i64);
        let value = format!(
            "b{}-{}",
            index / records_per_batch,
            index % records_per_batch
        );
        assert_eq!(record.value.as_deref(), Some(value.as_bytes()));
    }
    // The log continues after the recovered end.
    let (error, base_offset) = client.produce("durable", -1, batch("after", 1));
    assert_eq!((error, base_offset), (0, expected as i64));
}

#[test]
fn acked_prefix_survives_kill_9_mid_stream() {
    // Goal: a crash while produces are still in flight loses nothing that was acked, and
    // what survives is a gap-free prefix of the log. Method: pipeline 60 acks=all produce
    // requests, read only the first 30 responses, kill -9, restart, fetch everything.
    let data_dir = tempfile::tempdir().expect("temp dir");
    let records_per_batch = 10;
    let acked_batches = 30;
    {
        let server = Process::spawn(data_dir.path());
        let mut client = common::Client::connect(&server.address);
        assert_eq!(client.create_topic("midstream", 1).topics[0].error.0, 0);
        let mut headers = Vec::new();
        for index in 0..60 {
            let header = client.header(0, 9);
            let batch = batch(&format!("b{index}"), records_per_batch);
            client.send(&header, &common::produce_request("midstream", -1, batch));
            headers.push(header);
        }
        for header in headers.iter().take(acked_batches) {
            let frame = client.read_frame().expect("produce response");
            let response = weir_wire::codec::decode_response(header, frame).expect("decode");
            let weir_wire::domain::ApiResponse::Produce(produce) = response else {
                panic!("not a produce response")
            };
            assert_eq!(produce.topics[0].partitions[0].error.0, 0);
        }
        server.kill_9();
    }
    let server = Process::spawn(data_dir.path());
    let mut client = common::Client::connect(&server.address);
    let acked = acked_batches * records_per_batch;
    let (_, high_watermark, _) = client.fetch("midstream", 0);
    assert!(
        high_watermark >= acked as i64,
        "high watermark {high_watermark} < acked {acked}"
    );
    let records = client.fetch_all("midstream", high_watermark as usize);
    assert_eq!(records.len() as i64, high_watermark);
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record.offset, index as i64, "gap in the recovered log");
        let value = format!(
            "b{}-{}",
            index / records_per_batch,
            index % records_per_batch
        );
        assert_eq!(record.value.as_deref(), Some(value.as_bytes()));
    }
}
