// Package lineage is the lineage index: it follows the log, leaf by leaf,
// and answers where a record came from (Trace upstream), where it went
// (Trace downstream), what touched an asset (History), what a run did
// (RunEvents) and which events match a filter (Find), with every node and
// edge of an answer naming the leaf that asserts it, so that a service can
// attach inclusion proofs and a client can check the whole answer offline.
//
// # A pure function of the log
//
// The index reads the log only through a Source (tessera's LogReader, or
// anything that serves tlog-tiles entry bundles), never the request path, so
// it holds exactly what the log holds. An indexing pass reads leaves from
// the watermark (the tree size indexed) on, and commits what they add,
// together with the new watermark and digest, in one Store batch; a crash
// loses at most the pass in progress, which the next CatchUp redoes. Every
// stored pair is derived from the leaves below the watermark, in log order,
// leaf by leaf, and from nothing else (no clock, no randomness, no pass
// boundary): Rebuild, which wipes the store and indexes the log from leaf
// 0, reaches the same state, pair for pair, at every size. A leaf that
// event.DecodeLeaf refuses is logged at ERROR, counted, listed (an
// undecodable_leaf gap, UndecodableLeaves) and skipped.
//
//	ix, err := lineage.Open(ctx, store, ledger.Reader(), lineage.Options{})
//	go ix.Run(ctx)                      // follow the log
//	g, err := ix.Trace(ctx, lineage.TraceQuery{Tenant: "acme",
//		AssetURI: "s3://exports/x.csv", AssetVersion: "v7",
//		Direction: lineage.Upstream, TreeSize: checkpointSize})
//	// prove g.Leaves against the checkpoint of size g.TreeSize
//
// The Source's IntegratedSize may run ahead of the published checkpoint.
// Queries take a TreeSize (the size of the checkpoint the answer will be
// proven against) and then cite only leaves below it.
//
// # Store
//
// Store is a small ordered key-value interface (Get, Scan over a range in
// either direction, atomic Commit of a Batch, Close) that an
// embedded and a MySQL implementation share; lineagetest.StoreConformance
// checks both. The embedded store is pebble: the index writes a dozen or
// more keys per event, with random keys (URIs, runs, actors, event ids of
// many tenants interleave), which an LSM tree absorbs as sequential writes
// where a B-tree store (bbolt, SQLite) rewrites pages all over its file on
// each commit. Its memory is bounded (a block cache of pebbleCacheSize, which
// pebble also charges its memtables to) whatever the size of the log; so is
// the index's own (one pass of writes, a bounded set of known locations, and
// per query the answer, at most MaxNodes).
//
// Indexing reads as well as writes: whether a run, a workflow run, a
// location or a producer is known yet. Pebble answers those from memory
// through one iterator a pass; the MySQL store would pay a round trip for
// each, several per event. So before each entry bundle a pass reads ahead
// what the bundle's records will read, in two batched queries (keys, then
// the prefix probes that depend on them), and a read it did not foresee
// falls back to a query of its own.
//
// # Keys
//
// A key is a keyspace byte and components: strings escaped so that they
// keep their byte order and end unambiguously (0x00 is written 0x00 0xFF,
// the end is 0x00 0x01), and leaf indexes and times as 8 bytes big-endian,
// so that a prefix scan lists a key's entries in log order. Every key but
// the event record begins with the tenant: a query can only reach what its
// tenant's keys lead to, and a record read through them is checked to be
// the tenant's.
//
//	E leaf                                  event record (what queries show)
//	i tenant uri version record_key leaf    the event consumed the asset
//	o tenant uri version record_key leaf    the event produced the asset
//	q tenant run uri version record_key leaf  ...consumed, by an event of run
//	                                        that produced nothing (a check)
//	h tenant uri leaf                       the event's uses of the uri
//	x tenant event_id leaf                  event by id (the first leaf wins)
//	y tenant subject_event_id leaf          approval or override of an event
//	Y tenant subject_event_id               marker: the event has some
//	N tenant uri                            marker: some event named the uri
//	                                        without a version
//	r tenant run leaf                       run membership, log order
//	R tenant run                            run state: first leaf, started,
//	                                        completed, failed, parent run
//	w tenant workflow_id leaf               Find by workflow
//	v tenant workflow_id run_id -> leaf     the runs of a workflow, with the
//	                                        first leaf naming both (WorkflowRuns)
//	a tenant actor_id leaf                  Find by actor
//	p tenant operation leaf                 Find by operation
//	c tenant classification leaf            Find by classification
//	s tenant step_id leaf                   Find by step
//	t tenant event_time leaf                Find by time window
//	L tenant location                       something at the location was
//	                                        produced
//	K tenant location uri version record_key leaf  an input no event produced,
//	                                        from a location nothing was
//	                                        produced at (yet)
//	G tenant run kind detail                an open gap
//	W kind tenant subject                   open gaps waiting for a parent
//	                                        run, an event id, a producer
//	C kind                                  open gaps of a kind
//	U leaf                                  the leaf did not decode
//	m ...                                   watermark, digest, digests by
//	                                        size, format (not in the digest)
//
// # Digest
//
// The index digest is a multiset hash of the stored index. Each pair (k, v)
// outside the m keyspace has the element hash SHA-256("provlog lineage
// element v1\n" || uvarint(len(k)) || k || v), read as a 256-bit integer;
// the running sum is the sum of the element hashes of all stored pairs
// modulo 2^256. Writing a pair adds its hash (after subtracting that of the
// value it replaces), deleting one subtracts it, so the sum is kept in the
// same batch as the data at one hash per write, and it depends on the set of
// pairs only, not on the order or the passes that wrote them. The digest at
// tree size n is SHA-256("provlog lineage index v1\n" || n as 8 bytes
// big-endian || sum). Two indexes of one log at the same size have equal
// digests when their stored pairs are equal; unequal pairs give unequal
// digests except with negligible probability for pairs that are not chosen
// adversarially (an additive multiset hash resists accidental collisions;
// a deliberate one needs sets of impractical size, and the index's trust
// comes from the inclusion proofs of its answers anyway, not from the
// digest). VerifyDigest recomputes the sum from a full scan. The digest is
// recorded at every multiple of 256 and at the end of every pass (DigestAt),
// so that a live index and a rebuild can be compared at any such size.
//
// # Matching assets
//
// An event names an asset by URI, and optionally a version and a record
// key. Two references match when their URIs are equal and their versions,
// and their record keys, are each equal or one of them empty: a reference
// without a version means every version of the asset, one without a record
// key the whole asset (every record of it). So every revision of a record,
// "crm://contacts" version 42 key "C-7", is traceable to the events that
// produced exactly it, that produced version 42 as a whole, or that
// produced the asset without saying which version. Where the producer's and
// the consumer's references differ, a trace joins them with an EdgeMatches.
//
// # Trace
//
// A trace starts from an asset reference, an event, or every event of a run
// (those passing the filters), and moves in activity hops, at most Depth of
// them. Upstream, one hop goes from an asset to the events that produced a
// matching asset; from each such event to its inputs; and on. Downstream,
// from an asset to the events that consumed a matching one; to their
// outputs; and on. Each activity in the graph comes with all its leaf
// asserts: its inputs and outputs (EdgeInput, EdgeOutput), its field lineage
// (EdgeField between the input and output assets of the same event), its run
// (EdgeStepOfRun) and the run's parent (EdgeParentRun). Part of its step,
// without a hop and without filters, come:
//   - the approvals and overrides that name it (EdgeApproves,
//     EdgeOverrides), and
//   - upstream only, the checks of its inputs: the events of its own run
//     that consumed one of its inputs and produced nothing (reads, quality
//     checks, failed attempts), with their approvals and overrides: the
//     failed quality check on a staging table and the override that let it
//     through are part of the lineage of everything made from that table.
//
// Filters (event time window, actors, workflows, operations, and
// classifications, met when any of the event's assets carries one) apply to
// the events a hop reaches: a hop does not pass through an event that fails
// them, so the graph stays connected. A trace stops adding nodes at
// MaxNodes and sets Truncated. Node.Leaf and Edge.Leaf name the asserting
// leaf (see Node); Graph.Leaves lists every leaf cited, gaps included.
// Options.Mask, the redaction hook, sees every node before it is returned.
//
// # Gaps
//
// Completeness checks, kept up to date leaf by leaf: a gap opens when the
// leaf that exposes it is indexed and closes when a later leaf supplies
// what was missing, so the open gaps are a function of the log up to the
// watermark. Each belongs to the run of the event that exposes it; a Trace
// reports the open gaps of the runs in its graph, RunEvents those of the
// run, OpenGaps all of a tenant's; GapCounts and Options.OnGap feed
// metrics, and each opened gap is logged at WARN.
//   - missing_parent_run: a run names a parent_run_id of which the tenant's
//     log holds no event (another tenant's run of that id does not count).
//   - missing_subject: an approval or override names a subject event id the
//     tenant's log does not hold.
//   - unproduced_input: an event consumed an asset that no event of the
//     tenant produced (under the matching rule), from a location (the URI up
//     to the first "/" after "://": "postgres://warehouse",
//     "s3://acme-staging"; the whole URI when it has no "://") where events
//     of the log do produce assets. Data read from a location nothing in the
//     log writes to (a CRM, a partner API, any external source) legitimately
//     has no producer and is never flagged; data in a store the logged
//     pipelines write to should have a logged producer, and an auditor needs
//     to hear when one is missing: a step that was not reported, or data
//     that was put there behind the log's back. An input read before its
//     location's first producer is judged when that producer arrives.
//   - run_without_start: a run has events but no RUN_START.
//   - run_failed: a run has a RUN_FAIL and no RUN_COMPLETE (a failed task
//     that was retried to completion is not a gap).
//   - undecodable_leaf: the leaf does not decode; it belongs to no tenant.
//
// # Listings
//
// History lists the events that used an asset, newest first by leaf index;
// RunEvents a run's events in log order, with its gaps; Find the events
// that pass a Filter, driven by its most selective index. Page tokens are
// opaque positions in the scanned index; a page may stop short at a scan
// bound and still have a next page.
package lineage
