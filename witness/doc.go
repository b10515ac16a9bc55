// Package witness is a C2SP tlog-witness: it checks that each checkpoint a
// transparency log submits is consistent with the last one it cosigned for
// that log, and only then cosigns it (https://c2sp.org/tlog-witness,
// https://c2sp.org/tlog-cosignature).
//
// # HTTP interface
//
// [Witness.Handler] serves, relative to where it is mounted:
//
//	POST /add-checkpoint
//	    The tlog-witness add-checkpoint call. The body is an "old N" line,
//	    at most 63 base64 consistency proof lines, an empty line and the
//	    signed checkpoint. Success is 200 with the witness's cosignature
//	    line(s) as the body. Errors: 400 malformed request or old size
//	    larger than the checkpoint size, 403 no trusted log signature
//	    verifies, 404 unknown origin, 409 old size is not the size the
//	    witness last cosigned (body: that size and a newline, Content-Type
//	    text/x.tlog.size), 413 body larger than [MaxRequestSize], 422
//	    consistency proof does not verify, same size with a different root
//	    hash, or a size 0 checkpoint whose root is not the empty tree's.
//
//	GET /<origin hash>/checkpoint
//	    The tlog-witness monitor retrieval mechanism: the latest checkpoint
//	    the witness cosigned for the log whose origin's SHA-256, in lowercase
//	    hex, is <origin hash>, with the log signature(s) the witness verified
//	    and the witness's cosignature. 404 if the log is unknown or was never
//	    cosigned.
//
// # Guarantees
//
// For each log, checking a request against the stored state, signing and
// persisting the new state happen under one per-log lock, and the
// cosignature is returned only after the [Store] has made the new state
// durable. A checkpoint validly signed by the log that contradicts the
// cosigned state is never cosigned; it is kept as [Evidence] in the store,
// logged at ERROR and counted in provwitness_forks_detected_total.
package witness
