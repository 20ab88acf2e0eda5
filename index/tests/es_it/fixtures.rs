//! Realistic events with deterministic ids, shared by the tests and the `es_bulk` benchmark.

/// A realistic event with a deterministic id from `(file, offset)`.
pub fn event(file_id: u64, offset: u64) -> schemas::LogEvent {
    let ts = chrono::DateTime::from_timestamp(1_764_800_000 + offset as i64 % 86_400, 0)
        .unwrap_or_default();
    let mut ev = schemas::LogEvent::new(
        ts,
        format!("GET /api/orders/{offset} 200 in {}ms", offset % 97),
    );
    ev.event.id = schemas::event_id(file_id, offset);
    ev.log.level = Some(schemas::Level::Info);
    ev.service.name = Some("checkout".to_owned());
    ev.kubernetes.namespace = Some("shop".to_owned());
    ev.kubernetes.pod.name = Some("checkout-7d9f-abcde".to_owned());
    ev.http.request.method = Some("GET".to_owned());
    ev.http.response.status_code = Some(200);
    ev.url.path = Some(format!("/api/orders/{offset}"));
    ev.client.ip = Some(format!("10.0.{}.{}", offset / 256 % 256, offset % 256));
    ev.event.duration = Some((offset as i64 % 97) * 1_000_000);
    ev.sluice.source.file_id = file_id;
    ev.sluice.source.offset = offset;
    ev.sluice.source.end_offset = offset + 100;
    ev
}

/// `n` events from one file, 100 bytes apart.
pub fn events(file_id: u64, n: u64) -> Vec<schemas::LogEvent> {
    (0..n).map(|i| event(file_id, i * 100)).collect()
}
