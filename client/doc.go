// Package client is the provlog SDK for workflow engines, auditors and
// monitors. It verifies everything a log hands out with no trust in the
// server, and imports no server or storage code: an auditor links only
// what verifies.
//
//   - Client (client.go) talks to provlogd over gRPC and reads /log/ (C2SP
//     tlog-tiles) over HTTP. Append and AppendBatch retry Unavailable and
//     ResourceExhausted with jittered exponential backoff, never sooner
//     than the server's RetryInfo: appends are idempotent, so a retried
//     event comes back with duplicate = true and its first index. With
//     WAIT_FOR_PUBLISHED each receipt is verified and must hold the event.
//     GetEntry, Checkpoint, Trace, RunEvents and ProveConsistency verify
//     what they return.
//   - AppendStreamer (stream.go): many appends in flight on one
//     LogService.AppendStream, matched to their answers by correlation id;
//     receipts verified as in Append, pushback left to the caller.
//   - Config (config.go): flags > PROVLOG_* environment > config file >
//     the defaults of a local provlogd (./provlog-data/admin.token, log.pub).
//   - Policy (policy.go): the log key and a witness quorum in tessera's
//     witness policy format. VerifyReceipt (receipt.go), VerifyTrace and
//     VerifyRunEvents (trace.go, client.go), VerifyConsistency.
//   - Bundle (bundle.go): a self-contained evidence file that VerifyBundle
//     checks offline; its format is documented on the type.
//   - Monitor (monitor.go): follows /log/checkpoint, keeps the last verified
//     checkpoint in a file, checks consistency of each new one and against
//     the witnesses, and reports an Alert with both checkpoints as evidence.
//   - TileFetcher.Replay (tiles.go, replay.go): reads the whole log from its
//     tiles, each verified against the checkpoint with x/mod/sumdb/tlog,
//     and names the first leaf that is not what the checkpoint commits to.
//
// Every error that means "this does not verify" wraps ErrVerification;
// other errors are input, I/O or connection failures.
package client
