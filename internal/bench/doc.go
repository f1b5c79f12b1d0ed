// Package bench is the library behind chronik-bench: the command line
// (ParseArgs), the load runs (Run: produce, consume, round-trip, metadata on
// franz-go kgo), the latency histogram (Histogram, log-linear like HDR), the
// reports (text, CSV, JSON) and the produce-profile matrix (RunMatrix:
// chronik-server per profile, Markdown table, SVG charts).
//
// Measurement rules, so numbers mean the same thing in every report:
//   - A producer ("sender") has one record in flight: it produces, waits for
//     the acknowledgement, records send-to-ack latency, and only then sends
//     the next. Senders share one kgo client (or --clients N), so records of
//     different senders ride in the same produce request, as the threads of
//     a real application share one producer.
//   - A record is measured when its operation starts in the measured phase
//     (after --warmup). Throughput is measured records over the time from the
//     start of that phase to the later of its end and the completion of the
//     last measured operation, so every counted record completed inside it.
//   - Failures are counted (and grouped by error) whatever the phase; they
//     are printed, written to every output, and make the command exit 1.
//   - Latency percentiles use the nearest-rank rule on a histogram whose
//     relative error is below 1/128; the reported value is never below the
//     true one. Max is exact.
//   - Values start with a 36-byte header (run id, sender, sequence, send
//     time, CRC-32C of the whole value) when they are large enough, so
//     --validate can check every record's content and per-sender order and
//     round-trip mode can time end-to-end latency.
//
// Invariants: every wait has a bound (delivery timeout, drain timeout,
// setup timeout, the matrix's per-run timeout); every run is bounded in
// records by --messages and, in the matrix, in bytes by --max-bytes.
package bench
