//! The wire codecs on their own: a VLESS request header and a Mux.Cool frame, decoded
//! and encoded, as every connection and every 8 KiB of a tunnel costs them. Run:
//! `cargo bench -p wasmray --bench codecs`.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wasmray::proto::mux::{Frame, MuxNetwork};
use wasmray::proto::vless::{Addons, Command, RequestHeader};
use wasmray::proto::{Address, Destination};

fn header() -> RequestHeader {
    RequestHeader {
        uuid: *uuid::Uuid::parse_str("27848739-7e62-4138-9fd3-098a63964b6b")
            .unwrap()
            .as_bytes(),
        addons: Addons::default(),
        command: Command::Tcp(Destination::new(
            Address::Domain("www.example.com".into()),
            443,
        )),
    }
}

fn vless(c: &mut Criterion) {
    let mut wire = BytesMut::new();
    header().encode(&mut wire).unwrap();
    let wire = wire.freeze();
    c.bench_function("vless/decode request header", |b| {
        b.iter(|| black_box(RequestHeader::decode(black_box(&wire)).unwrap()))
    });
    let h = header();
    let mut out = BytesMut::with_capacity(64);
    c.bench_function("vless/encode request header", |b| {
        b.iter(|| {
            out.clear();
            black_box(&h).encode(&mut out).unwrap();
            black_box(out.len())
        })
    });
}

fn mux(c: &mut Criterion) {
    let payload = vec![0x5au8; 8192];
    let target = Destination::new(Address::Domain("www.example.com".into()), 443);
    let mut group = c.benchmark_group("mux");
    group.throughput(Throughput::Bytes(payload.len() as u64));
    let mut wire = BytesMut::new();
    Frame::keep(7, &payload).encode(&mut wire).unwrap();
    group.bench_function("decode 8 KiB Keep frame", |b| {
        b.iter(|| black_box(Frame::decode(black_box(&wire)).unwrap()))
    });
    let mut out = BytesMut::with_capacity(9000);
    group.bench_function("encode 8 KiB Keep frame", |b| {
        b.iter(|| {
            out.clear();
            Frame::keep(7, black_box(&payload))
                .encode(&mut out)
                .unwrap();
            black_box(out.len())
        })
    });
    group.finish();
    let mut new = BytesMut::new();
    Frame::new_session(
        1,
        MuxNetwork::Tcp,
        target.clone(),
        Some(b"GET / HTTP/1.1\r\n\r\n"),
    )
    .encode(&mut new)
    .unwrap();
    c.bench_function("mux/decode New frame", |b| {
        b.iter(|| black_box(Frame::decode(black_box(&new)).unwrap()))
    });
}

criterion_group!(benches, vless, mux);
criterion_main!(benches);
